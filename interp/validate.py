"""Check that a tensor read from a module *is* attention before it is recorded.

Attention weights are floating, finite, non-negative, shaped ``[batch, (heads,) queries, keys]``
and every row (one query over the keys) sums to 1, within a tolerance set by the dtype. A row may
sum to less, never more: keys masked after normalising, a query with every key masked (all 0), or
a window factor applied after the softmax (Luong's local-p Gaussian) all give such rows, and the
mask is not known here. A hidden state, a position bias, raw scores or weights rescaled by
dropout fail at least one rule, so an extractor that reads the wrong element of an output is
caught instead of being stored as attention. ``normalized=False`` drops only the row-sum rule,
for modules whose weights are deliberately unnormalised (sigmoid gates, scores).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .errors import InterpError

#: Row-sum tolerance per dtype: softmax in float32 sums to 1 within ~1e-6; half precision rounds
#: every weight to ~3 significant digits.
_TOLERANCE = {torch.float64: 1e-6, torch.float32: 1e-4, torch.float16: 1e-2, torch.bfloat16: 2e-2}


class ExtractionError(InterpError, RuntimeError):
    """A selected module's call yielded no attention weights that could be recorded."""


class InvalidWeightsError(ExtractionError):
    """A tensor read as attention weights is not attention (see :func:`problems`)."""


@dataclass(frozen=True)
class Finding:
    """What a check found wrong with one tensor: a short reason and the evidence."""

    reason: str
    evidence: str


def row_tolerance(dtype: torch.dtype) -> float:
    """How far a row sum may be from 1 for weights stored in ``dtype``."""
    return _TOLERANCE.get(dtype, 1e-4)


def problems(weights: Tensor, *, normalized: bool = True) -> Finding | None:
    """The first rule ``weights [batch, (heads,) queries, keys]`` breaks, or ``None``.

    One reduction pass and a single device synchronisation per call.
    """
    shape = tuple(weights.shape)
    if weights.dim() not in (3, 4):
        return Finding("wrong rank", f"shape {shape}; expected [batch, (heads,) queries, keys]")
    if not weights.is_floating_point():
        return Finding("not floating point", f"dtype {weights.dtype}, shape {shape}")
    if weights.numel() == 0:
        return Finding("empty", f"shape {shape}")
    w = weights.detach().float()
    sums = w.sum(-1)
    tol = row_tolerance(weights.dtype)
    finite = torch.isfinite(w).all()
    negative = (w < 0).any()
    if normalized:
        bad_rows = (sums > 1 + tol).sum()
    else:
        bad_rows = torch.zeros((), dtype=torch.long, device=w.device)
    flags = torch.stack([(~finite).long(), negative.long(), bad_rows.long()]).tolist()
    if flags[0]:
        nan, inf = int(torch.isnan(w).sum()), int(torch.isinf(w).sum())
        return Finding(
            "not finite",
            f"shape {shape}: {nan} NaN and {inf} infinite values (a row whose keys are all "
            f"masked softmaxes to NaN: check the mask)",
        )
    if flags[1]:
        return Finding(
            "negative values",
            f"shape {shape}: minimum {float(w.min()):.4g}, {int((w < 0).sum())} negative values",
        )
    if flags[2]:
        flat = sums.flatten()
        return Finding(
            "rows sum to more than 1",
            f"shape {shape}: {flags[2]} of {flat.numel()} rows off (row sums from "
            f"{float(flat.min()):.4g} to {float(flat.max()):.4g}; first: "
            f"{', '.join(f'{float(s):.3g}' for s in flat[:4])})",
        )
    return None


__all__ = ["ExtractionError", "Finding", "InvalidWeightsError", "problems", "row_tolerance"]
