"""Gold word alignments as matrices, ready for alignment error rate against attention.

A gold link list ``[[i, j], ...]`` (source ``i``, target ``j``) becomes two boolean ``[tgt, src]``
matrices in the Och & Ney sense: *possible* holds every gold link; *sure* holds the links of
target tokens that translate exactly one source token. A target token made of several source
tokens ("the dog" -> one word) may attend to any of them without penalty, and an attention that
points every target token at one of its gold sources scores an AER of exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def gold_matrices(alignment: Sequence[Sequence[int]], src_len: int, tgt_len: int,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(sure, possible)`` boolean matrices of shape ``[tgt_len, src_len]``."""
    possible = np.zeros((tgt_len, src_len), dtype=bool)
    for link in alignment:
        if len(link) != 2:
            raise ValueError(f"an alignment link is a pair [source, target], got {list(link)}")
        i, j = int(link[0]), int(link[1])
        if not (0 <= i < src_len and 0 <= j < tgt_len):
            raise ValueError(f"link {[i, j]} lies outside a {src_len}-token source and {tgt_len}-token target")
        possible[j, i] = True
    single = possible.sum(axis=1) == 1
    sure = possible & single[:, None]
    return sure, possible


def batch_gold_matrices(examples: Sequence[dict], src_width: int, tgt_width: int,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Stack :func:`gold_matrices` for a batch, padded to ``[batch, tgt_width, src_width]``."""
    sure = np.zeros((len(examples), tgt_width, src_width), dtype=bool)
    possible = np.zeros_like(sure)
    for b, ex in enumerate(examples):
        s, p = gold_matrices(ex["alignment"], len(ex["src"]), len(ex["tgt"]))
        t, n = min(s.shape[0], tgt_width), min(s.shape[1], src_width)
        sure[b, :t, :n] = s[:t, :n]
        possible[b, :t, :n] = p[:t, :n]
    return sure, possible
