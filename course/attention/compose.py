"""Attention as a composition: a score, a normaliser and a window, one output type for all.

Every variant in the course is ``score(query, keys) -> normalise -> weighted sum of values``,
optionally restricted to a window of keys. Each axis lives in its own module of this package
(``scores``, ``normalizers``, ``windows``; ``multihead`` and ``coverage`` extend the score);
this module only composes them.
The output is always ``AttentionOutput(context, weights)`` with weights shaped
``[batch, queries, keys]`` (or ``[batch, heads, queries, keys]``) and masked keys exactly zero:
that single convention lets ``interp`` capture any variant without special cases.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from course.attention.normalizers import SoftmaxNormalizer
from course.attention.state import AttentionOutput, AttentionState, Prepared
from course.masks import require_allowed_key

WINDOW_HINT = (
    ": the local window [p_t - D, p_t + D] covers only masked keys. Local windows assume "
    "right-padded sources (real tokens first); pad on the right, widen window_half_width or use "
    "window='global'"
)


def check_attention_inputs(query: Tensor, keys: Tensor, mask: Tensor | None) -> None:
    """Raise a clear error for shapes that would otherwise fail deep inside a matmul."""
    if query.dim() != 3 or keys.dim() != 3:
        raise ValueError(
            f"attention expects query [batch, queries, dim] and keys [batch, keys, dim], "
            f"got query {tuple(query.shape)} and keys {tuple(keys.shape)}"
        )
    if query.size(0) != keys.size(0):
        raise ValueError(
            f"mismatched batch sizes: query has {query.size(0)} rows, keys have {keys.size(0)}"
        )
    if keys.size(1) == 0:
        raise ValueError("attention over an empty sequence: every example needs at least one key")
    if mask is not None:
        if mask.shape != (keys.size(0), keys.size(1)):
            raise ValueError(
                f"key mask must be [batch, keys] = {(keys.size(0), keys.size(1))}, "
                f"got {tuple(mask.shape)}"
            )
        if not bool(mask.any(dim=1).all()):
            empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
            raise ValueError(f"examples {empty[:10]} have no unmasked key; empty sequences cannot be attended")


def context_without_masked_values(weights: Tensor, values: Tensor, context: Tensor,
                                  combine: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    """``context`` again, with keys of zero weight contributing exactly nothing even where their
    values are NaN or infinite (``0 * NaN`` is NaN). Queries that give such a key some weight
    still get NaN: a broken value they read is never hidden. Only called when ``context`` is not
    finite, so finite inputs keep the plain computation bit for bit."""
    bad = ~torch.isfinite(values).all(-1)  # [B, K]: keys whose values are not finite
    if not bool(bad.any()):
        return context  # the weights themselves are not finite: let that show
    context = combine(weights, values.masked_fill(bad.unsqueeze(-1), 0.0))
    reads = (weights != 0) & (bad[:, None, :] if weights.dim() == 3 else bad[:, None, None, :])
    touched = reads.any(-1) if weights.dim() == 3 else reads.any(-1).any(1)  # [B, Q]
    return context.masked_fill(touched.unsqueeze(-1), float("nan"))


class Attention(nn.Module):
    """Score, normalise, restrict to a window, and take the weighted sum of the values.

    ``Attention(AdditiveScore(...), SoftmaxNormalizer())`` is Bahdanau attention; other lessons
    swap the score, the normaliser or the window and keep everything else. A score may work per
    head (energies ``[B, H, Q, K]``) and bring its own ``combine`` of weights and values
    (multi-head attention); a window returns which keys each query may see and, optionally, a
    factor on the weights (local-p's Gaussian).
    """

    def __init__(self, score: nn.Module, normalizer: nn.Module | None = None,
                 window: nn.Module | None = None):
        super().__init__()
        self.score = score
        self.normalizer = normalizer if normalizer is not None else SoftmaxNormalizer()
        self.window = window

    @property
    def reads_previous_weights(self) -> bool:
        """True when step t needs step t-1's weights (location-aware, coverage): no parallel path."""
        return bool(getattr(self.score, "uses_state", False))

    @property
    def needs_state(self) -> bool:
        """True when a decoder must carry an :class:`AttentionState` between steps."""
        return self.reads_previous_weights or bool(getattr(self.window, "needs_positions", False))

    def init_state(self, keys: Tensor, mask: Tensor | None = None) -> AttentionState:
        """Step 0: no weights yet; the 'previous' weights start uniform over the real keys."""
        batch, length = keys.shape[:2]
        real = torch.ones(batch, length, dtype=keys.dtype, device=keys.device) if mask is None else mask.to(keys.dtype)
        return AttentionState(torch.zeros(batch, dtype=torch.long, device=keys.device),
                              real / real.sum(-1, keepdim=True), torch.zeros_like(real))

    @staticmethod
    def advance(state: AttentionState, weights: Tensor) -> AttentionState:
        """The state after one step whose weights were ``[B, (H,) 1, K]`` (heads are averaged)."""
        if weights.dim() == 4:
            weights = weights.mean(1)
        weights = weights.squeeze(-2)
        return AttentionState(state.step + 1, weights, state.coverage + weights)

    def prepare(self, keys: Tensor, values: Tensor | None = None) -> Prepared:
        """Per-source work that every query reuses (e.g. the key projection)."""
        prepare = getattr(self.score, "prepare", None)
        if prepare is None:
            return None
        if getattr(self.score, "projects_values", False):
            return prepare(keys, keys if values is None else values)
        return prepare(keys)

    def sample_log_prob(self) -> Tensor | None:
        """Log-probability ``[B, Q]`` of the positions a sampling normaliser drew in the last call."""
        log_prob = getattr(self.normalizer, "last_log_prob", None)
        if log_prob is not None and log_prob.dim() == 3:  # per head: the heads sample independently
            log_prob = log_prob.sum(1)
        return log_prob

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None,
                mask: Tensor | None = None, prepared: Prepared = None, state: AttentionState | None = None,
                positions: Tensor | None = None) -> AttentionOutput:
        """Attend from ``query [B, Q, Dq]`` over ``keys [B, K, Dk]``; ``mask [B, K]`` is True on real keys.

        ``state`` is needed by scores that read earlier weights; ``positions [B, Q]`` are the
        decoding steps of the queries (local-m), by default ``state.step`` or ``0 .. Q-1``.
        """
        check_attention_inputs(query, keys, mask)
        values = keys if values is None else values
        kwargs = {}
        if prepared is not None:
            kwargs["prepared"] = prepared
        if getattr(self.score, "uses_state", False):
            kwargs["state"] = state
        energies = self.score(query, keys, **kwargs)
        allowed, factor = mask, None
        if self.window is not None:
            if positions is None and state is not None:
                positions = state.step.unsqueeze(1).expand(-1, query.size(1))
            inside, factor = self.window(query, keys.size(1), mask, positions)
            allowed = inside if mask is None else inside & mask.bool().unsqueeze(1)
            require_allowed_key(allowed, WINDOW_HINT)
        weights = self.normalizer(energies, allowed)
        if factor is not None:
            weights = weights * (factor.unsqueeze(1) if weights.dim() == 4 else factor)
        combine = getattr(self.score, "combine", None)
        if combine is not None:
            context = combine(weights, values, prepared)
        else:
            context = torch.matmul(weights, values)
        if allowed is not None and not bool(torch.isfinite(context).all()):
            mix = torch.matmul if combine is None else (lambda w, v: combine(w, v, None))
            context = context_without_masked_values(weights, values, context, mix)
        return AttentionOutput(context, weights)
