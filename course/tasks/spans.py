"""Count a token inside a named span: the evidence is a whole contiguous span (lesson 17).

Each example is a sequence of filler words holding two or three bracketed spans, each opened and
closed by markers that name it (``<A ... A>``, names A to D, distinct within a sequence) and holding
2 to 9 content words. The query names one span; the label is the **number** of ``x`` tokens inside
that span (0 to 4). ``x`` also occurs in the other spans and between them, so only the ones inside
the queried span count, and every x inside it counts: no single token decides the label.

Gold evidence per example: ``span`` (``[start, end)`` of the queried span, both markers included),
``spans`` (that interval for every span, by name) and ``x_positions`` (indices of the counted x).
"""

from __future__ import annotations

import random

NAMES = ("A", "B", "C", "D")
FILLERS = ("ka", "lo", "mi", "nu", "pe", "ri", "su", "ta", "vo", "ze")
COUNTED = "x"
MIN_CONTENT, MAX_CONTENT = 2, 9
MAX_COUNT = 4
LABELS = tuple(str(c) for c in range(MAX_COUNT + 1))


def opener(name: str) -> str:
    """The token that opens span ``name``."""
    return f"<{name}"


def closer(name: str) -> str:
    """The token that closes span ``name``."""
    return f"{name}>"


def gap(rng: random.Random, low: int, high: int) -> list[str]:
    """Filler words between spans; about one in six is an x that counts for nothing."""
    return [COUNTED if rng.random() < 1 / 6 else rng.choice(FILLERS) for _ in range(rng.randint(low, high))]


def content(rng: random.Random, length: int, count: int) -> list[str]:
    words = [rng.choice(FILLERS) for _ in range(length)]
    for i in rng.sample(range(length), count):
        words[i] = COUNTED
    return words


def make_example(rng: random.Random) -> dict:
    names = rng.sample(NAMES, rng.randint(2, 3))
    query = rng.choice(names)
    label = rng.randint(0, MAX_COUNT)
    tokens, spans = gap(rng, 1, 5), {}
    for name in names:
        count = label if name == query else rng.randint(0, MAX_COUNT)
        length = rng.randint(max(MIN_CONTENT, count), MAX_CONTENT)
        start = len(tokens)
        tokens += [opener(name), *content(rng, length, count), closer(name)]
        spans[name] = [start, len(tokens)]
        tokens += gap(rng, 1, 5)
    start, end = spans[query]
    x_positions = [i for i in range(start, end) if tokens[i] == COUNTED]
    assert len(x_positions) == label
    return {"tokens": tokens, "query": query, "label": str(label), "span": [start, end],
            "spans": spans, "x_positions": x_positions}


def generate(n: int, seed: int) -> list[dict]:
    """``n`` examples, deterministic in ``seed``, no two with the same tokens and query."""
    rng = random.Random(seed)
    examples, seen = [], set()
    while len(examples) < n:
        example = make_example(rng)
        key = (tuple(example["tokens"]), example["query"])
        if key not in seen:
            seen.add(key)
            examples.append(example)
    return examples
