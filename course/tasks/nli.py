"""Premise / hypothesis pairs from templates, labelled by one lexical relation, with word alignments.

A premise describes one to three scenes, each in its own place ("a young man is playing a guitar
in the park and a dog is sleeping by the river"). The hypothesis is one of those scenes with one
edit whose lexical relation sets the label, as annotators of SNLI would: a hypernym ("man" -> "person") or a dropped adjective *entails*; an antonym ("young" ->
"old"), an incompatible action ("sitting" -> "running") or a sibling noun ("guitar" -> "violin")
*contradicts*; a hyponym ("instrument" -> "guitar") or an added adjective is *neutral* (it may be
true, the premise does not say). Premises use hypernyms too, so "person" in a hypothesis is no
giveaway: the label depends on which premise word a hypothesis word lines up with, and with
several scenes a model must first find the right one (the place names it).

Gold: ``alignment`` pairs ``[i, j]`` (premise token i, hypothesis token j: the same word or its
related word), and ``edit`` = ``[i, j]`` of the edited pair (``i`` or ``j`` is -1 when a word was
dropped or added).
"""

from __future__ import annotations

import random

LABELS = ("entailment", "neutral", "contradiction")
# hypernym -> hyponyms; hyponyms under one hypernym contradict each other (same scene, one actor)
SUBJECTS = {"person": ("man", "woman", "boy", "girl"), "animal": ("dog", "cat", "horse")}
INSTRUMENTS = {"instrument": ("guitar", "violin", "piano", "drum")}
ADJECTIVE_ANTONYMS = {"young": "old", "old": "young", "tall": "short", "short": "tall",
                      "happy": "sad", "sad": "happy", "strong": "weak", "weak": "strong"}
ACTIONS = ("sitting", "standing", "sleeping", "running", "dancing")  # pairwise incompatible
PLACES = {"park": "in", "garden": "in", "kitchen": "in", "field": "in", "street": "on",
          "beach": "on", "stage": "on", "river": "by", "window": "by"}


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_with_relations(rng: random.Random, table: dict[str, tuple[str, ...]]) -> tuple[str, str]:
    """A noun for the premise (a hyponym, or sometimes the hypernym) and its hypernym."""
    hypernym = rng.choice(sorted(table))
    if rng.random() < 0.2:
        return hypernym, hypernym
    return rng.choice(table[hypernym]), hypernym


class Slots:
    """A sentence as (role, word) slots; the hypothesis copies them and edits one."""

    def __init__(self, slots: list[tuple[str, str]]):
        self.slots = slots

    def tokens(self) -> list[str]:
        out = []
        for k, (role, word) in enumerate(self.slots):
            if role == "det":  # "a"/"an" agrees with the word that follows
                word = article(self.slots[k + 1][1]) if word in ("a", "an") else word
            out.append(word)
        return out


def make_premise(rng: random.Random) -> tuple[list[tuple[str, str]], dict[str, str]]:
    subject, subject_hypernym = noun_with_relations(rng, SUBJECTS)
    slots: list[tuple[str, str]] = [("det", "a")]
    if rng.random() < 0.6 and subject not in SUBJECTS["animal"] + ("animal",):
        slots.append(("adj", rng.choice(sorted(ADJECTIVE_ANTONYMS))))
    slots += [("subject", subject), ("aux", "is")]
    info = {"subject_hypernym": subject_hypernym}
    if subject in SUBJECTS["animal"] + ("animal",) or rng.random() < 0.4:
        slots.append(("action", rng.choice(ACTIONS)))
    else:
        instrument, hypernym = noun_with_relations(rng, INSTRUMENTS)
        slots += [("action", "playing"), ("det", "a"), ("object", instrument)]
        info["object_hypernym"] = hypernym
    place = rng.choice(sorted(PLACES))
    slots += [("prep", PLACES[place]), ("det", "the"), ("place", place)]
    return slots, info


def possible_edits(slots: list[tuple[str, str]], info: dict[str, str]) -> list[tuple[str, str, str]]:
    """(label, role, kind) edits that apply to this premise."""
    roles = {role: word for role, word in slots}
    edits = []
    for role, key in (("subject", "subject_hypernym"), ("object", "object_hypernym")):
        if role not in roles:
            continue
        if roles[role] == info[key]:
            edits.append(("neutral", role, "hyponym"))
        else:
            edits += [("entailment", role, "hypernym"), ("contradiction", role, "sibling")]
    if "adj" in roles:
        edits += [("entailment", "adj", "drop"), ("contradiction", "adj", "antonym")]
    elif "subject" in roles and roles["subject"] in SUBJECTS["person"] + ("person",):
        edits.append(("neutral", "adj", "add"))
    if roles.get("action") in ACTIONS:
        edits.append(("contradiction", "action", "incompatible"))
    return edits


def replacement(rng: random.Random, kind: str, word: str, info: dict[str, str], role: str) -> str:
    table = SUBJECTS if role == "subject" else INSTRUMENTS
    hypernym = info.get(f"{role}_hypernym", "")
    if kind == "hypernym":
        return hypernym
    if kind == "hyponym":
        return rng.choice(table[hypernym])
    if kind == "sibling":
        return rng.choice([w for w in table[hypernym] if w != word])
    if kind == "antonym":
        return ADJECTIVE_ANTONYMS[word]
    if kind == "incompatible":
        return rng.choice([w for w in ACTIONS if w != word])
    raise ValueError(f"unknown edit {kind!r}")


def edit_clause(rng: random.Random, slots: list[tuple[str, str]], info: dict[str, str],
                role: str, kind: str) -> tuple[list[tuple[str, str]], list[int], list[int]]:
    """Apply one edit; return the hypothesis slots, each slot's premise position (-1: added), the edit."""
    hypothesis_slots: list[tuple[str, str]] = []
    source: list[int] = []
    edit = [-1, -1]
    for i, (slot_role, word) in enumerate(slots):
        if kind == "add" and slot_role == "subject":
            edit = [-1, len(hypothesis_slots)]
            hypothesis_slots.append(("adj", rng.choice(sorted(ADJECTIVE_ANTONYMS))))
            source.append(-1)
        if slot_role == role and kind == "drop":
            edit = [i, -1]
            continue
        if slot_role == role and kind != "add":
            edit = [i, len(hypothesis_slots)]
            word = replacement(rng, kind, word, info, role)
        hypothesis_slots.append((slot_role, word))
        source.append(i)
    return hypothesis_slots, source, edit


def make_pair(rng: random.Random, label: str, clauses: int = 1) -> dict:
    """A premise of ``clauses`` scenes joined by "and" (each in its own place) and a one-scene
    hypothesis about one of them, edited to have the wanted label."""
    while True:
        scenes = [make_premise(rng) for _ in range(clauses)]
        places = [slots[-1][1] for slots, _ in scenes]
        target = rng.randrange(clauses)
        edits = [e for e in possible_edits(*scenes[target]) if e[0] == label]
        if edits and len(set(places)) == clauses:
            break
    _, role, kind = rng.choice(edits)
    premise: list[str] = []
    offset = 0
    for k, (slots, _) in enumerate(scenes):
        if k:
            premise.append("and")
        if k == target:
            offset = len(premise)
        premise += Slots(slots).tokens()
    hypothesis_slots, source, edit = edit_clause(rng, *scenes[target], role, kind)
    alignment = [[offset + i, j] for j, i in enumerate(source) if i >= 0]
    edit = [offset + edit[0] if edit[0] >= 0 else -1, edit[1]]
    return {"premise": premise, "hypothesis": Slots(hypothesis_slots).tokens(), "label": label,
            "alignment": alignment, "edit": edit, "relation": kind}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` pairs with 1-3 scene premises, labels cycling through entailment, neutral, contradiction."""
    rng = random.Random(seed)
    return [make_pair(rng, LABELS[i % len(LABELS)], rng.randint(1, 3)) for i in range(n)]
