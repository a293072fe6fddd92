"""Short news items summarised in one sentence that names who did what, how many, and where.

Each source is a paragraph of four sentences: the **key** event ("first surname , a role from
place , verb number object on day ."), a quote that repeats the surname, a **distractor** event
of the same shape that happened "last year" (another person, another number), and a closing
sentence. The key and distractor sentences come in either order, so the summariser must find the
event of this week, not the first one. The summary is one sentence::

    first surname verb number object in place

Surnames are invented (three consonant-vowel syllables, drawn afresh for every example), numbers
are drawn from 100 to 9999 and half the places are invented too, so nearly every surname and
number of the test set never occurs in training: a vocabulary built from the training split maps
them to ``<unk>``, and only a model that copies from the source can write them. First names,
roles, verbs, objects and the common places recur and are in any vocabulary.

Gold ``alignment`` pairs ``[i, j]`` link summary word ``j`` to the source position ``i`` it is
copied from (in the key sentence); the summary's ``in`` is generated, not copied, and has no pair.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

FIRST_NAMES = ("anna", "maria", "peter", "james", "sofia", "lucas", "emma", "david", "laura", "omar",
               "nina", "paul", "sara", "ivan", "clara", "hugo", "elena", "marco", "julia", "tom")
ROLES = ("teacher", "farmer", "nurse", "baker", "doctor", "student", "pilot", "painter", "builder",
         "librarian", "fisher", "mechanic")
EVENTS = (("planted", "trees"), ("donated", "books"), ("collected", "coins"), ("baked", "loaves"),
          ("repaired", "bicycles"), ("sold", "tickets"), ("painted", "houses"), ("raised", "dollars"),
          ("rescued", "dogs"), ("knitted", "scarves"), ("delivered", "letters"), ("recycled", "bottles"))
PLACES = ("london", "paris", "berlin", "madrid", "rome", "vienna", "oslo", "dublin", "lisbon", "prague",
          "warsaw", "athens")
PLACE_SUFFIXES = ("burg", "ton", "ville", "field")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
BENEFITS = (("help", "local", "families"), ("support", "the", "school"), ("reach", "the", "hospital"),
            ("go", "to", "charity"))
CLOSINGS = (("the", "mayor", "thanked", "everyone", "involved", "."),
            ("more", "events", "are", "planned", "next", "month", "."),
            ("residents", "welcomed", "the", "news", "."),
            ("the", "council", "will", "meet", "again", "soon", "."))
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"
KEY_LENGTH = 14  # tokens in the key sentence


def invent(rng: random.Random, syllables: int) -> str:
    """A pronounceable made-up word of consonant-vowel syllables."""
    return "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))


def surname(rng: random.Random) -> str:
    """An invented surname: three syllables, about 300,000 possibilities."""
    return invent(rng, 3)


def place(rng: random.Random) -> str:
    """A common city (half the time) or an invented town ('two syllables + suffix')."""
    if rng.random() < 0.5:
        return rng.choice(PLACES)
    return invent(rng, 2) + rng.choice(PLACE_SUFFIXES)


def number(rng: random.Random) -> str:
    return str(rng.randint(100, 9999))


def distractor_sentence(rng: random.Random, avoid: Sequence[str]) -> list[str]:
    """An event of last year: another first name, a new surname and a number not in ``avoid``."""
    first = rng.choice([f for f in FIRST_NAMES if f not in avoid])
    last, count = surname(rng), number(rng)
    while count in avoid:
        count = number(rng)
    verb, obj = rng.choice(EVENTS)
    return [first, last, ",", "a", rng.choice(ROLES), ",", verb, count, obj, "last", "year", "."]


def add_distractors(example: dict, extra: int, seed: int) -> dict:
    """The example with ``extra`` more last-year sentences inserted between its sentences (a
    harder, longer paragraph than any in training); summary and alignment still hold."""
    rng = random.Random(seed)
    src = list(example["src"])
    key_start = example["key_start"]
    key = src[key_start:key_start + KEY_LENGTH]
    for _ in range(extra):
        boundaries = [0] + [i + 1 for i, token in enumerate(src) if token == "."]
        at = rng.choice(boundaries)
        sentence = distractor_sentence(rng, avoid=key)
        src[at:at] = sentence
        if at <= key_start:
            key_start += len(sentence)
    shift = key_start - example["key_start"]
    alignment = [[i + shift, j] for i, j in example["alignment"]]
    for i, j in alignment:
        assert src[i] == example["tgt"][j]
    return {**example, "src": src, "alignment": alignment, "key_start": key_start}


def passive_key(example: dict) -> dict:
    """The example with its key sentence in the passive, a form no training paragraph has::

        number object were verb on day by first surname , a role from place .

    The same words, so the summary and its copy sources are unchanged; only their order moved."""
    src, start = list(example["src"]), example["key_start"]
    first, last, _, _, role, _, where, _, verb, count, obj, _, day, _ = src[start:start + KEY_LENGTH]
    passive = [count, obj, "were", verb, "on", day, "by", first, last, ",", "a", role, "from", where, "."]
    src[start:start + KEY_LENGTH] = passive
    offsets = {0: 7, 1: 8, 2: 3, 3: 0, 4: 1, 6: 13}   # summary slot -> position in the passive sentence
    alignment = [[start + offsets[j], j] for _, j in example["alignment"]]
    assert all(src[i] == example["tgt"][j] for i, j in alignment)
    return {**example, "src": src, "alignment": alignment}


def make_example(rng: random.Random) -> dict:
    """One paragraph, its summary and the copy alignment."""
    first, last, role, where = rng.choice(FIRST_NAMES), surname(rng), rng.choice(ROLES), place(rng)
    verb, obj = rng.choice(EVENTS)
    count = number(rng)
    key = [first, last, ",", "a", role, "from", where, ",", verb, count, obj, "on", rng.choice(DAYS), "."]
    distractor = distractor_sentence(rng, avoid=key)
    quote = [last, "said", "the", obj, "would", *rng.choice(BENEFITS), "."]
    key_first = rng.random() < 0.5
    src = (key + distractor if key_first else distractor + key) + quote + list(rng.choice(CLOSINGS))
    start = 0 if key_first else len(distractor)
    # summary word -> its position in the key sentence (None: generated, not copied)
    summary = [(first, 0), (last, 1), (verb, 8), (count, 9), (obj, 10), ("in", None), (where, 6)]
    tgt = [word for word, _ in summary]
    alignment = [[start + offset, j] for j, (_, offset) in enumerate(summary) if offset is not None]
    assert len(key) == KEY_LENGTH and all(src[i] == tgt[j] for i, j in alignment)
    return {"src": src, "tgt": tgt, "alignment": alignment, "key_start": start}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` examples with distinct sources, the same for the same seed."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        example = make_example(rng)
        key = tuple(example["src"])
        if key not in seen:
            seen.add(key)
            out.append(example)
    return out
