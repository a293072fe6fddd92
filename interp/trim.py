"""Cut one example's padded weights to its token lengths: one rule for the store and the explorer.

Keys are cut to the source's length. Queries are cut to the tokens they belong to, chosen by
``mode``: ``"source"`` (self-attention over the source), ``"target"`` (a decoder's steps),
``"none"`` (keep them), or ``"auto"``: the target when target tokens are given and there is more
than one query, the source for square weights without a target, otherwise none (a classifier's
single pooling query is kept).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .errors import InterpError

QueryAxis = Literal["auto", "source", "target", "none"]


class ShapeMismatchError(InterpError, ValueError):
    """Captured weights disagree with the example's tokens or the batch's ids."""


def _max_abs(x: Any) -> float:
    if hasattr(x, "detach"):
        return float(x.detach().float().abs().max()) if x.numel() else 0.0
    return float(np.abs(x).max()) if np.size(x) else 0.0


def query_axis(mode: QueryAxis, n_queries: int, n_keys: int, has_source: bool, has_target: bool) -> str:
    """Which tokens the queries belong to (``"source"``, ``"target"`` or ``"none"``)."""
    if mode != "auto":
        return mode
    if has_target and n_queries > 1:
        return "target"
    if has_source and n_queries == n_keys and n_queries > 1:
        return "source"
    return "none"


def trim_to_tokens(
    w: Any, source: Sequence[Any] | None, target: Sequence[Any] | None, *,
    mode: QueryAxis = "auto", has_queries: bool = True, where: str = "weights",
) -> Any:
    """``w`` (``[(heads,) Q, K]``, or ``[K]`` with ``has_queries=False``; tensor or array) cut to
    ``len(source)`` keys and its queries to their tokens' length (see the module docstring).

    More tokens than positions is an error; weight left on cut-off keys (padding that was not
    masked) is cut with a warning.
    """
    k_len = w.shape[-1]
    if source is not None:
        n = len(source)
        if n > k_len:
            raise ShapeMismatchError(
                f"{where}: weights have {k_len} keys but the source has {n} tokens; the source "
                f"tokens must be the keys this module attends over"
            )
        if n < k_len:
            beyond = _max_abs(w[..., n:])
            if beyond > 1e-6:
                warnings.warn(
                    f"interp: {where}: weight {beyond:.3g} on keys past the source's {n} tokens "
                    f"(padding not masked?); they are cut off", RuntimeWarning, stacklevel=3,
                )
            w = w[..., :n]
    if not has_queries or w.ndim < 2:
        return w
    q_len = w.shape[-2]
    axis = query_axis(mode, q_len, k_len, source is not None, target is not None)
    if axis in ("source", "target"):
        tokens = source if axis == "source" else target
        if tokens is None:
            raise ShapeMismatchError(f"{where}: queries={axis!r} but the batch has no {axis!r} tokens")
        n = len(tokens)
        if n > q_len:
            raise ShapeMismatchError(f"{where}: weights have {q_len} queries but the {axis} has {n} tokens")
        w = w[..., :n, :]
    return w


__all__ = ["QueryAxis", "ShapeMismatchError", "query_axis", "trim_to_tokens"]
