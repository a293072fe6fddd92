"""Coverage (See et al. 2017; Tu et al. 2016): remember where attention has already been.

The coverage vector ``c_t = sum_{t' < t} a_{t'}`` is the attention mass each source token has
received before step t. Fed to the score (``AdditiveScore(coverage=True)``) it lets the model
see what it already translated; the coverage loss ``sum_i min(a_{t,i}, c_{t,i})`` penalises
attending again to covered tokens, which cuts repetitions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def coverage_vectors(attention: Tensor) -> Tensor:
    """``c_t`` for every step: the exclusive running sum of weights ``[B, (H,) T, S]`` over T."""
    return torch.cumsum(attention, dim=-2) - attention


def coverage_loss(attention: Tensor, target_mask: Tensor | None = None) -> Tensor:
    """Mean over real target steps of ``sum_i min(a_{t,i}, c_{t,i})``.

    ``attention`` is ``[B, T, S]`` (or ``[B, H, T, S]``, heads averaged); ``target_mask [B, T]``
    is True on real target steps, so padded steps add nothing.
    """
    if attention.dim() == 4:
        attention = attention.mean(1)
    if attention.dim() != 3:
        raise ValueError(f"attention must be [batch, steps, source] (or with heads), got {tuple(attention.shape)}")
    per_step = torch.minimum(attention, coverage_vectors(attention)).sum(-1)   # [B, T]
    if target_mask is None:
        return per_step.mean()
    if target_mask.shape != per_step.shape:
        raise ValueError(f"target_mask must be [batch, steps] = {tuple(per_step.shape)}, got {tuple(target_mask.shape)}")
    return per_step[target_mask].mean()
