"""Does the attention land on the gold evidence? Mass on gold, against what chance would give."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def gold_mask(gold: Sequence[Sequence[int]], shape: tuple[int, int]) -> Tensor:
    """``[batch, keys]`` bool mask, True at each example's gold positions (indices into its keys)."""
    batch, keys = shape
    if len(gold) != batch:
        raise ValueError(f"gold evidence for {len(gold)} examples, but the batch has {batch}")
    mask = torch.zeros(shape, dtype=torch.bool)
    for row, positions in enumerate(gold):
        for position in positions:
            if not 0 <= position < keys:
                raise IndexError(f"example {row}: gold position {position} outside 0..{keys - 1}")
            mask[row, position] = True
    return mask


def attention_mass(weights: Tensor, gold: Tensor) -> Tensor:
    """Per example, the attention weight on gold keys: ``weights [B, keys]`` or ``[B, Q, keys]``
    (then averaged over the queries)."""
    if weights.dim() == 3:
        weights = weights.mean(1)
    if weights.shape != gold.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and gold mask {tuple(gold.shape)} differ")
    return (weights * gold.to(weights.dtype)).sum(-1)


def chance_mass(gold: Tensor, mask: Tensor) -> Tensor:
    """What uniform attention over the real keys would put on the gold keys: ``|gold| / length``."""
    return (gold & mask).sum(-1).to(torch.float32) / mask.sum(-1).clamp_min(1).to(torch.float32)
