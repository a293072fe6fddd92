"""Named entities whose type is set by a distant cue: the same kind of name is PER or ORG.

Each example is a short news item. Its first sentence names what the item is about, a person or a
company ("profile of the singer ." / "news about the bank ."): that cue word decides the type. Two
to five neutral filler sentences follow (places in them are tagged LOC from their local context,
"travelled from Lisbon"), then one sentence (in about 8% of the items two) mentions a surname
in words that fit a person and a company alike ("Garza declined to comment ."). The surnames
come from one ``faker`` pool for both types, so neither the name nor its neighbours say PER or
ORG: only the cue, 15 to 40 tokens before every mention, does. About a third of the items (half
are drawn with one; longer items are redrawn more often) carry a distractor sentence with a cue
word of a random type in another role ("the bank next door was not involved ."), which decides
nothing.

Gold evidence per example: ``cue`` (index of the deciding cue word), ``cue_sentence`` (``[start,
end)`` of the first sentence, the cue phrase) and ``distractors`` (indices of cue words that decide
nothing). Every PER or ORG entity is cue-dependent; LOC entities are decided locally.
"""

from __future__ import annotations

import random
import re

from faker import Faker

from course.tasks.ner import entity, split_words

TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
PERSON_CUES = ("singer", "senator", "novelist")
COMPANY_CUES = ("company", "bank", "retailer")
HEADERS = ("profile of the {CUE} .", "news about the {CUE} .", "an interview with the {CUE} .",
           "a report on the {CUE} .")
FILLERS = (
    "the weather in {LOC} was mild on Monday .",
    "local officials expected more visitors this year .",
    "prices rose slightly over the summer months .",
    "the report was published in {LOC} last week .",
    "traffic was heavy on the main roads .",
    "many people travelled from {LOC} for the event .",
    "the season started later than usual .",
    "tickets sold out within a few hours .",
    "the streets of {LOC} were busy all day .",
    "a new bridge opened near the old harbour .",
)
DISTRACTORS = ("a {ANY} from {LOC} was also there .", "the {ANY} next door was not involved .")
MENTIONS = (
    "{NAME} said the results were better than expected .",
    "a statement from {NAME} was released on Friday .",
    "according to {NAME} , the plans will go ahead .",
    "{NAME} declined to comment on the rumours .",
    "critics praised {NAME} for the new project .",
    "{NAME} is expected to announce more news soon .",
)
MIN_DISTANCE, MAX_DISTANCE = 15, 40  # tokens from the cue word to each mention


def _fill(template: str, fake: Faker, rng: random.Random, slots: dict[str, str],
          example: dict, marks: dict[str, list[int]]) -> None:
    """Append one sentence's tokens and tags; ``marks`` collects where each slot landed."""
    tokens, tags = example["tokens"], example["tags"]
    for piece in re.split(r"(\{[A-Z]+\})", template):
        if not piece.startswith("{"):
            words = piece.split()
            tokens += words
            tags += ["O"] * len(words)
            continue
        slot = piece[1:-1]
        marks.setdefault(slot, []).append(len(tokens))
        if slot in ("LOC", "NAME"):
            kind = "LOC" if slot == "LOC" else slots["TYPE"]
            words = split_words(entity(fake, rng, "LOC") if slot == "LOC" else slots["NAME"])
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        else:
            tokens.append(slots["CUE"] if slot == "CUE" else rng.choice(PERSON_CUES + COMPANY_CUES))
            tags.append("O")


def make_item(fake: Faker, rng: random.Random) -> dict:
    """One news item whose every mention lies 15-40 tokens after the cue word (redrawn until so)."""
    while True:
        kind = rng.choice(("PER", "ORG"))
        slots = {"TYPE": kind, "NAME": fake.last_name(),
                 "CUE": rng.choice(PERSON_CUES if kind == "PER" else COMPANY_CUES)}
        sentences = [rng.choice(FILLERS) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.5:
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(DISTRACTORS))
        sentences.append(rng.choice(MENTIONS))
        if rng.random() < 0.3:
            sentences += [rng.choice(FILLERS), rng.choice(MENTIONS)]
        example: dict = {"tokens": [], "tags": []}
        marks: dict[str, list[int]] = {}
        _fill(rng.choice(HEADERS), fake, rng, slots, example, marks)
        header_end = len(example["tokens"])
        for sentence in sentences:
            _fill(sentence, fake, rng, slots, example, marks)
        cue = marks["CUE"][0]
        distances = [m - cue for m in marks["NAME"]]
        if MIN_DISTANCE <= min(distances) and max(distances) <= MAX_DISTANCE:
            return {**example, "cue": cue, "cue_sentence": [0, header_end],
                    "distractors": marks.get("ANY", [])}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` tagged news items; the same seed gives the same items for one faker version."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return [make_item(fake, rng) for _ in range(n)]
