"""Named-entity sentences from gazetteers, tagged in the BIO scheme (PER, ORG, LOC).

Names, cities, countries and companies come from ``faker`` (en_US, seeded), slotted into news-like
templates ("{PER} joined {ORG} in {LOC} ."), then split into tokens (punctuation apart) and
tagged: ``B-PER I-PER O B-ORG ...``. A few gazetteer words are deliberately ambiguous (Jordan,
Florence, Washington: a person in one sentence, a place in another), so the right tag depends
on the context words ("moved to", "said"), which is what a tagger's context, and its
self-attention, are for.
"""

from __future__ import annotations

import random
import re

from faker import Faker

TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
AMBIGUOUS = ("Jordan", "Florence", "Washington", "Chelsea", "Austin", "Lincoln", "Georgia")
TEMPLATES = (
    "{PER} joined {ORG} in {LOC} .",
    "{ORG} opened a new office in {LOC} last year .",
    "{PER} met {PER} in {LOC} on Monday .",
    "according to {PER} , {ORG} will hire more staff .",
    "{PER} moved from {LOC} to {LOC} .",
    "the mayor of {LOC} thanked {PER} for the visit .",
    "shares of {ORG} rose after {PER} resigned .",
    "{PER} said the talks in {LOC} went well .",
    "{ORG} and {ORG} agreed to merge .",
    "a spokesman for {ORG} declined to comment .",
    "flights to {LOC} were cancelled because of the storm .",
    "{PER} , who grew up in {LOC} , now works for {ORG} .",
)
TOKEN = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]")


def split_words(text: str) -> list[str]:
    """Words (keeping inner hyphens, apostrophes and dots) and punctuation as separate tokens."""
    return TOKEN.findall(text)


def entity(fake: Faker, rng: random.Random, kind: str) -> str:
    if kind == "PER":
        if rng.random() < 0.15:
            return f"{rng.choice(AMBIGUOUS)} {fake.last_name()}"
        return fake.name() if rng.random() < 0.7 else fake.last_name()
    if kind == "LOC":
        if rng.random() < 0.15:
            return rng.choice(AMBIGUOUS)
        if rng.random() < 0.6:
            return fake.city()
        country = fake.country()
        while "(" in country or "," in country:  # "Antarctica (the territory South of 60 deg S)"
            country = fake.country()
        return country
    return fake.company()


def make_sentence(fake: Faker, rng: random.Random) -> dict:
    tokens: list[str] = []
    tags: list[str] = []
    for piece in re.split(r"(\{[A-Z]+\})", rng.choice(TEMPLATES)):
        if piece.startswith("{"):
            kind = piece[1:-1]
            words = split_words(entity(fake, rng, kind))
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            words = piece.split()
            tokens += words
            tags += ["O"] * len(words)
    return {"tokens": tokens, "tags": tags}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` tagged sentences; the same seed gives the same sentences for one faker version."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return [make_sentence(fake, rng) for _ in range(n)]
