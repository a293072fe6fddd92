"""Entity-level scores for BIO tags: an entity counts as found only if its type and both
boundaries match exactly (the CoNLL evaluation's rule)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def bio_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities ``(type, start, end)`` (``end`` exclusive) of one BIO-tagged sentence.

    As in the CoNLL scorer, an ``I-X`` that does not continue an ``X`` entity starts a new one.
    """
    spans: list[tuple[str, int, int]] = []
    kind, start = None, 0
    for i, tag in enumerate([*tags, "O"]):
        if tag != "O" and (len(tag) < 3 or tag[:2] not in ("B-", "I-")):
            raise ValueError(f"tag {i} is {tag!r}; BIO tags are O, B-TYPE or I-TYPE")
        continues = tag.startswith("I-") and tag[2:] == kind
        if kind is not None and not continues:
            spans.append((kind, start, i))
            kind = None
        if tag != "O" and not continues:
            kind, start = tag[2:], i
    return spans


def span_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of entities over sentences, overall (``"all"``) and per type.

    Each value is ``{"precision", "recall", "f1", "support"}`` (support: gold entities); a score
    with nothing to divide by is 0.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    hits, found, true = Counter(), Counter(), Counter()
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
        gold_spans, predicted_spans = set(bio_spans(g)), set(bio_spans(p))
        for spans, counter in ((gold_spans, true), (predicted_spans, found), (gold_spans & predicted_spans, hits)):
            for kind, _, _ in spans:
                counter[kind] += 1
                counter["all"] += 1
    scores = {}
    for kind in ["all", *sorted((true | found).keys() - {"all"})]:
        precision = hits[kind] / found[kind] if found[kind] else 0.0
        recall = hits[kind] / true[kind] if true[kind] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[kind] = {"precision": precision, "recall": recall, "f1": f1, "support": true[kind]}
    return scores
