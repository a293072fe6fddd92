"""A translation-like task with reordering and many-to-one alignments, 5 to 50 tokens long.

The source is English-like (subject-verb-object, adjectives before nouns, prepositions); the
target is a made-up verb-final language (subject, place, object, verb; adjectives after nouns;
postpositions). "the dog" becomes one token, "does not see" becomes one token. Sentences chain
one to four clauses, so the longest need 40+ tokens to be carried through a decoder: long enough
that one fixed-size vector cannot hold them, which is what lesson 01 shows.

Every target token is aligned to the source tokens it translates, exactly, by construction.
"""

from __future__ import annotations

import random

NOUNS = ("dog", "cat", "bird", "fish", "horse", "child", "teacher", "farmer", "doctor", "king",
         "queen", "sailor", "house", "garden", "river", "tree", "boat", "road", "city", "market",
         "forest", "bridge", "table", "window", "baker", "pilot", "singer", "painter", "student",
         "nurse", "lion", "tiger", "rabbit", "mouse", "goat", "sheep", "castle", "village", "lake",
         "mountain", "island", "tower", "school", "church", "station", "kitchen", "library", "harbor")
ADJECTIVES = ("big", "small", "red", "old", "young", "happy", "quiet", "green", "tall", "brave",
              "dark", "bright", "blue", "angry", "clever", "gentle", "noisy", "proud", "rich",
              "poor", "strong", "tired", "white", "yellow")
VERBS = ("see", "like", "follow", "find", "help", "call", "watch", "carry", "paint", "visit",
         "feed", "chase", "meet", "push", "pull", "wash", "greet", "teach", "catch", "draw",
         "hear", "thank", "lift", "guard")
PREPOSITIONS = ("in", "near", "behind")
CONJUNCTIONS = ("and", "but", "because")
MAX_LEN = 50


def third_person(verb: str) -> str:
    if verb.endswith(("ch", "sh", "s", "x")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def invent_words(count: int, seed: int, taken: set[str]) -> list[str]:
    """Pronounceable made-up stems (consonant-vowel syllables), unique and seeded."""
    rng = random.Random(seed)
    consonants, vowels = "kmnprstwgbdh", "aeiou"
    words: list[str] = []
    while len(words) < count:
        stem = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.choice((2, 2, 3))))
        if stem not in taken:
            taken.add(stem)
            words.append(stem)
    return words


def build_lexicon() -> dict[str, dict[str, str]]:
    taken: set[str] = set()
    nouns = dict(zip(NOUNS, invent_words(len(NOUNS), 1, taken)))
    adjectives = dict(zip(ADJECTIVES, invent_words(len(ADJECTIVES), 2, taken)))
    verbs = dict(zip(VERBS, invent_words(len(VERBS), 3, taken)))
    postpositions = dict(zip(PREPOSITIONS, ("de", "ni", "yo")))
    conjunctions = dict(zip(CONJUNCTIONS, ("to", "ga", "kara")))
    return {"noun": nouns, "adj": adjectives, "verb": verbs, "post": postpositions, "conj": conjunctions}


LEXICON = build_lexicon()


class Builder:
    """Appends source and target tokens together and records which align."""

    def __init__(self) -> None:
        self.src: list[str] = []
        self.tgt: list[str] = []
        self.alignment: list[list[int]] = []

    def add_src(self, *tokens: str) -> list[int]:
        start = len(self.src)
        self.src.extend(tokens)
        return list(range(start, len(self.src)))

    def emit(self, token: str, src_positions: list[int]) -> None:
        j = len(self.tgt)
        self.tgt.append(token)
        self.alignment.extend([i, j] for i in src_positions)


def noun_phrase(rng: random.Random, b: Builder) -> list[tuple[str, list[int]]]:
    """Source 'det adj* noun'; returns the target tokens (with their sources) to emit later."""
    det = rng.choice(("the", "a"))
    adjectives = rng.sample(ADJECTIVES, rng.choices((0, 1, 2), weights=(5, 3, 2))[0])
    noun = rng.choice(NOUNS)
    det_pos = b.add_src(det)
    adj_pos = [b.add_src(a) for a in adjectives]
    noun_pos = b.add_src(noun)
    stem = LEXICON["noun"][noun]
    out = [(stem + ("ta" if det == "the" else ""), det_pos + noun_pos)]  # "the dog" -> one token
    out += [(LEXICON["adj"][a], pos) for a, pos in zip(adjectives, adj_pos)]  # adjectives follow
    return out


def clause(rng: random.Random, b: Builder) -> None:
    subject = noun_phrase(rng, b)
    verb = rng.choice(VERBS)
    if rng.random() < 0.3:
        verb_pos = b.add_src("does", "not", verb)
        verb_out = (LEXICON["verb"][verb] + "nai", verb_pos)  # three tokens -> one
    else:
        verb_pos = b.add_src(third_person(verb))
        verb_out = (LEXICON["verb"][verb] + "ru", verb_pos)
    obj = noun_phrase(rng, b)
    place: list[tuple[str, list[int]]] = []
    if rng.random() < 0.5:
        prep = rng.choice(PREPOSITIONS)
        prep_pos = b.add_src(prep)
        place = noun_phrase(rng, b) + [(LEXICON["post"][prep], prep_pos)]
    for token, positions in subject + place + obj + [verb_out]:  # S place O V
        b.emit(token, positions)


def make_sentence(rng: random.Random, clauses: int) -> dict:
    b = Builder()
    for k in range(clauses):
        if k:
            conj = rng.choice(CONJUNCTIONS)
            b.emit(LEXICON["conj"][conj], b.add_src(conj))
        clause(rng, b)
    return {"src": b.src, "tgt": b.tgt, "alignment": sorted(b.alignment, key=lambda p: (p[1], p[0]))}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` sentences of 1-4 clauses (uniform), each at most ``MAX_LEN`` source tokens."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        example = make_sentence(rng, rng.randint(1, 4))
        if len(example["src"]) <= MAX_LEN:
            out.append(example)
    return out
