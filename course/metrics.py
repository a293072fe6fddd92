"""Scores for decoded sequences, overall and broken down by source length.

BLEU and chrF come from sacrebleu, the reference implementation, so our numbers are comparable
with published ones; inputs are already tokenised, so sacrebleu's own tokeniser is switched off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandas as pd
import sacrebleu

Tokens = Sequence[str]


def check_pairs(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references: give one each")
    if len(references) == 0:
        raise ValueError("no references to score")
    if any(isinstance(p, str) for p in predictions) or any(isinstance(r, str) for r in references):
        raise TypeError("predictions and references must be token lists, not strings")


def exact_match(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> float:
    """Percentage of predictions identical to their reference."""
    check_pairs(predictions, references)
    return 100.0 * sum(list(p) == list(r) for p, r in zip(predictions, references)) / len(references)


def token_accuracy(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> float:
    """Percentage of reference positions predicted correctly; length errors count as misses."""
    check_pairs(predictions, references)
    correct = total = 0
    for p, r in zip(predictions, references):
        correct += sum(a == b for a, b in zip(p, r))
        total += max(len(p), len(r))
    return 100.0 * correct / max(total, 1)


def bleu(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> float:
    """Corpus BLEU (sacrebleu, no extra tokenisation), 0-100."""
    check_pairs(predictions, references)
    return sacrebleu.corpus_bleu([" ".join(p) for p in predictions],
                                 [[" ".join(r) for r in references]], tokenize="none",
                                 force=True).score  # tokenised on purpose: no "detokenize" warning


def chrf(predictions: Sequence[Tokens], references: Sequence[Tokens]) -> float:
    """Corpus chrF (sacrebleu), 0-100: character n-grams, kinder than BLEU to near misses."""
    check_pairs(predictions, references)
    return sacrebleu.corpus_chrf([" ".join(p) for p in predictions],
                                 [[" ".join(r) for r in references]]).score


METRICS: dict[str, Callable[[Sequence[Tokens], Sequence[Tokens]], float]] = {
    "exact_match": exact_match,
    "token_accuracy": token_accuracy,
    "bleu": bleu,
    "chrf": chrf,
}


def bucket_label(length: int, edges: Sequence[int]) -> str:
    """The bucket ``lo-hi`` a length falls in; the last bucket is open-ended (``lo+``)."""
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= length < hi:
            return f"{lo}-{hi - 1}"
    if length >= edges[-1]:
        return f"{edges[-1]}+"
    raise ValueError(f"length {length} is below the first bucket edge {edges[0]}")


def by_length_bucket(sources: Sequence[Tokens], predictions: Sequence[Tokens],
                     references: Sequence[Tokens], edges: Sequence[int] = (1, 10, 20, 30, 40),
                     metrics: Sequence[str] = ("exact_match", "bleu")) -> pd.DataFrame:
    """Every metric per source-length bucket: one row per bucket, with its example count."""
    check_pairs(predictions, references)
    if len(sources) != len(references):
        raise ValueError(f"{len(sources)} sources for {len(references)} references")
    if list(edges) != sorted(set(edges)) or len(edges) < 1:
        raise ValueError(f"bucket edges must be strictly increasing, got {list(edges)}")
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}")
    labels = [bucket_label(len(s), edges) for s in sources]
    order = [bucket_label(e, edges) for e in edges]
    rows = []
    for label in order:
        idx = [i for i, lab in enumerate(labels) if lab == label]
        if not idx:
            continue
        row = {"bucket": label, "examples": len(idx)}
        for m in metrics:
            row[m] = METRICS[m]([predictions[i] for i in idx], [references[i] for i in idx])
        rows.append(row)
    return pd.DataFrame(rows).set_index("bucket")
