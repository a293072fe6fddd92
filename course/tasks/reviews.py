"""Long movie reviews whose sentiment is set by a few planted cue phrases.

A review is 12 to 40 sentences (about 100 to 400 tokens) of plot, cast and production filler. Into
it go one to three *cue phrases* that decide the label: a positive word ("superb"), or a negated
negative word ("not dreadful"), for a positive review; the mirror image for a negative one. The
filler holds distractors that look like evidence and are not: "not" in neutral sentences ("it was
not shot in colour"), intensifiers, and mood words about the story ("a dark story") that carry no
verdict. The gold rationale is the cue tokens (negator included), so "did the model look at the
evidence?" has an exact answer; a uniform attention puts about 1% of its mass there.
"""

from __future__ import annotations

import random

LABELS = ("negative", "positive")
POSITIVE = ("superb", "brilliant", "wonderful", "moving", "gripping", "delightful", "masterful",
            "charming")
NEGATIVE = ("dreadful", "boring", "awful", "clumsy", "tedious", "dull", "painful", "forgettable")
NEGATORS = ("not", "never")
INTENSIFIERS = ("truly", "rather", "quite", "really")

# Cue frames: "{cue}" is replaced by an optional negator, an optional intensifier and the word.
CUE_FRAMES = (
    "the acting was {cue} .",
    "overall the film is {cue} .",
    "i found the ending {cue} .",
    "the script felt {cue} from start to finish .",
    "honestly a {cue} experience .",
    "the performances are {cue} .",
)

NAMES = ("anna", "marco", "lena", "omar", "ruth", "jonas", "mei", "pablo", "ines", "victor")
PLACES = ("paris", "lagos", "oslo", "lima", "cairo", "seoul", "dublin", "quebec")
THINGS = ("a sailor", "a detective", "two sisters", "an old farmer", "a young teacher",
          "a lost dog", "a travelling band", "a retired judge")
MOODS = ("dark", "quiet", "strange", "sad", "violent", "gentle", "cold", "bright")
YEARS = ("1970s", "1980s", "1990s", "war", "winter", "summer")

FILLER = (
    "the story follows {thing} in {place} .",
    "{name} plays {thing} who returns to {place} .",
    "it was shot in {place} during the {year} .",
    "the film runs for about two hours .",
    "the director worked with {name} on the music .",
    "it is a {mood} story about family and money .",
    "the second half moves to {place} .",
    "{name} and {name2} share most of the scenes .",
    "it was not shot in colour .",
    "the soundtrack was never released on its own .",
    "we {really} see the city through the eyes of {thing} .",
    "there is a {mood} subplot about {thing} .",
    "the camera stays close to {name} .",
    "i watched it on a {mood} evening in {place} .",
    "the book it is based on is not long .",
    "the credits list {name} as a producer .",
)


def cue_tokens(rng: random.Random, positive: bool) -> tuple[list[str], int]:
    """A cue phrase of the wanted polarity; returns its tokens and how many lead the cue word."""
    negated = rng.random() < 0.35
    word_is_positive = positive != negated
    word = rng.choice(POSITIVE if word_is_positive else NEGATIVE)
    tokens = []
    if negated:
        tokens.append(rng.choice(NEGATORS))
    if rng.random() < 0.3:
        tokens.append(rng.choice(INTENSIFIERS))
    return tokens + [word], len(tokens)


def fill(rng: random.Random, frame: str) -> list[str]:
    name, name2 = rng.sample(NAMES, 2)
    text = frame.format(thing=rng.choice(THINGS), place=rng.choice(PLACES), name=name, name2=name2,
                        year=rng.choice(YEARS), mood=rng.choice(MOODS),
                        really=rng.choice(INTENSIFIERS))
    return text.split()


def make_review(rng: random.Random, positive: bool, sentences: int, cues: int) -> dict:
    """One review: ``sentences`` filler sentences with ``cues`` cue sentences among them."""
    cue_slots = set(rng.sample(range(sentences + cues), cues))
    tokens: list[str] = []
    rationale: list[int] = []
    for slot in range(sentences + cues):
        if slot not in cue_slots:
            tokens += fill(rng, rng.choice(FILLER))
            continue
        frame = rng.choice(CUE_FRAMES)
        before, after = frame.split("{cue}")
        cue, _ = cue_tokens(rng, positive)
        start = len(tokens) + len(before.split())
        negator = [start] if cue[0] in NEGATORS else []
        tokens += before.split() + cue + after.split()
        rationale += negator + [start + len(cue) - 1]  # the negator and the sentiment word
    return {"tokens": tokens, "label": LABELS[int(positive)], "rationale": sorted(rationale)}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` reviews, balanced labels, 12-40 filler sentences and 1-3 cues each."""
    rng = random.Random(seed)
    return [make_review(rng, positive=bool(i % 2), sentences=rng.randint(12, 40), cues=rng.randint(1, 3))
            for i in range(n)]
