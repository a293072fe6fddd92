"""Committee minutes: many sentences, one of which records the decision that sets the label.

Each document is 5 to 12 sentences of minutes. Exactly one *key sentence* records what the
committee decided ("in the end the board voted to reject the plan ."); the label is that verb:
approve, reject or postpone. The other sentences are distractors that use the same decision verbs
in opinions that decide nothing ("omar wanted to approve the budget ."), with verbs drawn from all
three classes, plus neutral filler. A bag of words cannot tell which "approve" counts; a model
must find the sentence whose frame is a decision, which is what sentence-level attention is for.
Gold: the key sentence's index, and the decision verb's position in it.
"""

from __future__ import annotations

import random

LABELS = ("approve", "reject", "postpone")
BODIES = ("board", "committee", "council", "panel")
OBJECTS = ("plan", "budget", "proposal", "merger", "contract", "design")
NAMES = ("anna", "marco", "lena", "omar", "ruth", "jonas", "mei", "pablo", "ines", "victor")

KEY_FRAMES = (
    "in the end the {body} voted to {verb} the {object} .",
    "after a long debate the {body} decided to {verb} the {object} .",
    "the {body} finally chose to {verb} the {object} .",
    "by a clear majority the {body} agreed to {verb} the {object} .",
)
OPINION_FRAMES = (
    "{name} wanted to {verb} the {object} .",
    "{name} argued that they should {verb} the {object} .",
    "some members hoped to {verb} the {object} .",
    "{name} said the {body} might {verb} the {object} later .",
    "a letter from {name} asked the {body} to {verb} the {object} .",
    "last year the {body} refused to {verb} a similar {object} .",
)
FILLER_FRAMES = (
    "the meeting started at nine in the main hall .",
    "{name} read the minutes of the last meeting .",
    "{name} and {name2} presented the figures for the {object} .",
    "the {body} discussed the schedule for the coming months .",
    "coffee was served during a short break .",
    "{name} asked several questions about the costs .",
    "the next meeting will be held in two weeks .",
    "{name} thanked everyone for coming .",
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


def make_document(rng: random.Random, label: str, sentences: int) -> dict:
    body, obj = rng.choice(BODIES), rng.choice(OBJECTS)
    key = rng.randrange(sentences)
    out: list[list[str]] = []
    key_word = -1
    for index in range(sentences):
        if index == key:
            tokens, key_word = render(rng, rng.choice(KEY_FRAMES), label, body, obj)
        elif rng.random() < 0.6:
            tokens, _ = render(rng, rng.choice(OPINION_FRAMES), rng.choice(LABELS), body, obj)
        else:
            tokens, _ = render(rng, rng.choice(FILLER_FRAMES), "", body, obj)
        out.append(tokens)
    return {"sentences": out, "label": label, "key_sentence": key, "key_word": key_word}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` documents of 5-12 sentences, labels cycling through the three decisions."""
    rng = random.Random(seed)
    return [make_document(rng, LABELS[i % len(LABELS)], rng.randint(5, 12)) for i in range(n)]
