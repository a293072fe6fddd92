"""Committee minutes: several bodies vote, and the vote of the highest body decides the label.

Each document is 8 to 16 sentences of minutes about one matter. Bodies of rising authority (a
working group, a panel, a committee, the board) vote on it; the label is what the highest body
that voted decided: approve, reject or postpone. That *key sentence* is the only vote of its
body; 3 to 6 lower bodies' votes (which it overrides) use the same frames with any of the three
verbs, leaning towards one wrong verb, and opinions and filler fill the rest. Which body decides
differs from document to document ("the committee voted to reject" decides a document without a
board vote, and is overridden in one with it), so no sentence is the key on its own: a model
has to compare the votes of one document, which is what the softmax of a sentence attention
does, and averaging the sentences does not.

Gold: ``key_sentence`` (its index), ``key_word`` (the verb's position in it), ``votes`` (the
indices of every vote sentence, the key included) and ``authority`` (the deciding body's rank,
0 for the working group to 3 for the board).

:func:`generate_conflicts` makes the failure case: the deciding body votes twice with different
verbs and the later vote stands ("in a second vote ..."), a pattern the training documents never
show.
"""

from __future__ import annotations

import random

LABELS = ("approve", "reject", "postpone")
BODIES = ("group", "panel", "committee", "board")  # rising authority: a higher body overrides a lower one
OBJECTS = ("plan", "budget", "proposal", "merger", "contract", "design")
NAMES = ("anna", "marco", "lena", "omar", "ruth", "jonas", "mei", "pablo", "ines", "victor")
SENTENCES = (8, 16)     # sentences per document
LOWER_VOTES = (3, 6)    # overridden votes of lower bodies (when the deciding body is not the lowest)
WRONG_LEAN = 0.3        # chance that an overridden vote uses the document's one wrong verb
OPINION_SHARE = 0.5     # of the remaining sentences: opinions (with decision verbs), else filler

VOTE_FRAMES = (
    "the {body} voted to {verb} the {object} .",
    "the {body} decided to {verb} the {object} .",
    "after a long debate the {body} agreed to {verb} the {object} .",
    "in the end the {body} chose to {verb} the {object} .",
)
SECOND_VOTE = "in a second vote the {body} decided to {verb} the {object} ."
OPINION_FRAMES = (
    "{name} wanted to {verb} the {object} .",
    "{name} argued that they should {verb} the {object} .",
    "some members hoped to {verb} the {object} .",
    "a letter from {name} asked the {body} to {verb} the {object} .",
)
FILLER_FRAMES = (
    "the meeting started at nine in the main hall .",
    "{name} read the minutes of the last meeting .",
    "{name} and {name2} presented the figures for the {object} .",
    "coffee was served during a short break .",
    "{name} asked several questions about the costs .",
    "the {body} discussed the schedule for the coming months .",
)


def render(rng: random.Random, frame: str, verb: str, body: str, obj: str) -> tuple[list[str], int]:
    """Fill a frame; returns the tokens and the position of the verb (or -1 when there is none)."""
    name, name2 = rng.sample(NAMES, 2)
    text = frame.format(body=body, object=obj, name=name, name2=name2, verb="\0")
    tokens = text.split()
    position = tokens.index("\0") if "\0" in tokens else -1
    if position >= 0:
        tokens[position] = verb
    return tokens, position


def make_document(rng: random.Random, label: str, sentences: int, conflict: bool = False) -> dict:
    """One document whose highest voting body decides ``label``.

    With ``conflict`` the deciding body votes twice, first for another verb, and the later vote
    (the key) stands.
    """
    obj = rng.choice(OBJECTS)
    authority = rng.randrange(len(BODIES))
    lower = min(rng.randint(*LOWER_VOTES), sentences - 2) if authority > 0 else 0
    slots = rng.sample(range(sentences), lower + 1 + conflict)
    if conflict:
        earlier, key = sorted(slots[:2])
        slots = slots[2:]
    else:
        earlier, key = -1, slots[0]
        slots = slots[1:]
    wrong = rng.choice([verb for verb in LABELS if verb != label])
    out: list[list[str]] = []
    key_word = -1
    for index in range(sentences):
        if index == key:
            frame = SECOND_VOTE if conflict else rng.choice(VOTE_FRAMES)
            tokens, key_word = render(rng, frame, label, BODIES[authority], obj)
        elif index == earlier:
            tokens, _ = render(rng, rng.choice(VOTE_FRAMES), wrong, BODIES[authority], obj)
        elif index in slots:
            verb = wrong if rng.random() < WRONG_LEAN else rng.choice(LABELS)
            tokens, _ = render(rng, rng.choice(VOTE_FRAMES), verb, BODIES[rng.randrange(authority)], obj)
        elif rng.random() < OPINION_SHARE:
            tokens, _ = render(rng, rng.choice(OPINION_FRAMES), rng.choice(LABELS), rng.choice(BODIES), obj)
        else:
            tokens, _ = render(rng, rng.choice(FILLER_FRAMES), "", rng.choice(BODIES), obj)
        out.append(tokens)
    votes = sorted([key, *slots] + ([earlier] if conflict else []))
    document = {"sentences": out, "label": label, "key_sentence": key, "key_word": key_word, "votes": votes,
                "authority": authority}
    if conflict:
        document["earlier_vote"] = earlier
    return document


def generate(n: int, seed: int) -> list[dict]:
    """``n`` documents of 8-16 sentences, labels cycling through the three decisions."""
    rng = random.Random(seed)
    return [make_document(rng, LABELS[i % len(LABELS)], rng.randint(*SENTENCES)) for i in range(n)]


def generate_conflicts(n: int, seed: int) -> list[dict]:
    """``n`` documents in which the deciding body votes twice and the later vote stands.

    ``earlier_vote`` is the index of its first vote, whose verb differs from the label.
    """
    rng = random.Random(seed)
    return [make_document(rng, LABELS[i % len(LABELS)], rng.randint(*SENTENCES), conflict=True)
            for i in range(n)]
