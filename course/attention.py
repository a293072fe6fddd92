"""Attention as a composition: a score, a normaliser and a mask, one output type for all.

Every variant in the course is ``score(query, keys) -> normalise -> weighted sum of values``,
optionally restricted to a window of keys (``course.windows``); the other choices live in
``course.scores``, ``course.normalizers``, ``course.multihead`` and ``course.coverage``.
The output is always ``AttentionOutput(context, weights)`` with weights shaped
``[batch, queries, keys]`` (or ``[batch, heads, queries, keys]``) and masked keys exactly zero:
that single convention lets ``interp`` capture any variant without special cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import Tensor, nn

WINDOW_HINT = (
    ": the local window [p_t - D, p_t + D] covers only masked keys. Local windows assume "
    "right-padded sources (real tokens first); pad on the right, widen window_half_width or use "
    "window='global'"
)


class AttentionOutput(NamedTuple):
    """What every attention module returns: the context vectors and the weights that built them."""

    context: Tensor
    weights: Tensor


Prepared = Tensor | tuple[Tensor, ...] | None  # what a score's prepare(keys) returns


class AttentionState(NamedTuple):
    """What a stateful attention carries from one decoding step to the next (one query a step).

    ``step`` counts the steps already taken (local-m's aligned position p_t = t),
    ``previous_weights`` are the last step's weights (location-aware scores read them) and
    ``coverage`` is the sum of all earlier weights (See et al. 2017). All have batch first, so
    beam search reorders them like any other state.
    """

    step: Tensor              # [B] long
    previous_weights: Tensor  # [B, K]
    coverage: Tensor          # [B, K]


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


class AdditiveScore(nn.Module):
    """Bahdanau's score ``v^T tanh(W_q q + W_k k)`` (Luong's "concat").

    It materialises ``[batch, queries, keys, units]``; ``chunk_size`` bounds how many queries are
    scored at once so long inputs do not run out of memory. Under autograd a chunk keeps only its
    inputs and is rebuilt in the backward pass (:class:`ChunkedAdditiveEnergies`), so training
    is bounded too, also for a decoder that calls it with one query per step. The key
    projection can be computed once per source with :meth:`prepare` and reused at every step.

    With ``coverage=True`` the score also reads the coverage vector (the sum of earlier weights),
    ``v^T tanh(W_q q + W_k k + w_c c)``, as in See et al. (2017); it then needs an
    :class:`AttentionState` and one query at a time.
    """

    def __init__(self, query_size: int, key_size: int, units: int, chunk_size: int | None = None,
                 coverage: bool = False):
        super().__init__()
        if units < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of queries or None, got {chunk_size}")
        self.query_proj = nn.Linear(query_size, units, bias=False)
        self.key_proj = nn.Linear(key_size, units, bias=True)
        self.v = nn.Linear(units, 1, bias=False)
        self.chunk_size = chunk_size
        self.coverage_proj = nn.Linear(1, units, bias=False) if coverage else None

    @property
    def uses_state(self) -> bool:
        """True when the score reads an :class:`AttentionState` (here: the coverage vector)."""
        return self.coverage_proj is not None

    def prepare(self, keys: Tensor) -> Tensor:
        """Project the keys once: ``W_k k`` does not depend on the query."""
        return self.key_proj(keys)

    def state_features(self, state: AttentionState) -> Tensor:
        """Per-key terms added inside the tanh, ``[B, K, units]``, from the attention state."""
        return self.coverage_proj(state.coverage.unsqueeze(-1))

    def forward(self, query: Tensor, keys: Tensor, prepared: Tensor | None = None,
                state: AttentionState | None = None) -> Tensor:
        projected_keys = self.prepare(keys) if prepared is None else prepared
        if self.uses_state:
            if state is None:
                raise ValueError(f"{type(self).__name__} with state features needs the attention state: "
                                 "call it step by step with state=Attention.init_state(keys, mask)")
            if query.size(1) != 1:
                raise ValueError("a score that reads the previous step's weights takes one query at a time, "
                                 f"got {query.size(1)} queries")
            projected_keys = projected_keys + self.state_features(state)
        projected_query = self.query_proj(query)  # [B, Q, U]
        if self.chunk_size is None:
            return additive_energies(projected_query, projected_keys, self.v.weight[0])
        # even a single chunk (a decoder stepping one query at a time) keeps only its inputs: plain
        # autograd would keep every step's [B, 1, K, U], the whole tensor over a teacher-forced loop
        return ChunkedAdditiveEnergies.apply(projected_query, projected_keys, self.v.weight[0], self.chunk_size)


def additive_energies(projected_query: Tensor, projected_keys: Tensor, v: Tensor) -> Tensor:
    """``v^T tanh(q + k)`` for every query-key pair: ``[B, Q, U]``, ``[B, K, U]`` and ``v [U]`` to ``[B, Q, K]``.

    The one ``[B, Q, K, U]`` tensor is built once and squashed in place, so its peak is one copy.
    """
    hidden = torch.tanh_(projected_query.unsqueeze(2) + projected_keys.unsqueeze(1))
    return torch.matmul(hidden, v)


class ChunkedAdditiveEnergies(torch.autograd.Function):
    """:func:`additive_energies` in chunks of ``chunk_size`` queries, keeping only its inputs for backward.

    ``apply(projected_query, projected_keys, v, chunk_size=None)``; ``None`` is one chunk of all
    queries. Plain autograd would keep every chunk's ``[B, q, K, U]`` tanh output (and make two
    more such tensors in the backward pass). Here the backward pass rebuilds each chunk and turns
    it into the gradient in place. Every chunk, forward and backward, is built in **one** reused
    workspace: allocating a fresh ``[B, q, K, U]`` tensor per chunk lets glibc's malloc keep
    the freed ones in its heap (between its 128 kB and 32 MB mmap thresholds, interleaved with the
    small per-chunk outputs), so resident memory grew by one chunk per chunk and chunking saved
    almost nothing in a real process.
    """

    @staticmethod
    def forward(ctx, projected_query: Tensor, projected_keys: Tensor, v: Tensor,
                chunk_size: int | None = None) -> Tensor:
        step = projected_query.size(1) if chunk_size is None else chunk_size
        ctx.save_for_backward(projected_query, projected_keys, v)
        ctx.chunk_size = step
        batch, queries = projected_query.shape[:2]
        energies = projected_query.new_empty(batch, queries, projected_keys.size(1))
        for start, hidden in _chunk_pre_activations(projected_query, projected_keys, step):
            energies[:, start:start + hidden.size(1)] = torch.matmul(hidden.tanh_(), v)
        return energies

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_energies: Tensor) -> tuple[Tensor | None, ...]:
        projected_query, projected_keys, v = ctx.saved_tensors
        units = v.size(0)
        grad_query = torch.zeros_like(projected_query) if ctx.needs_input_grad[0] else None
        grad_keys = torch.zeros_like(projected_keys) if ctx.needs_input_grad[1] else None
        grad_v = torch.zeros_like(v)
        for start, hidden in _chunk_pre_activations(projected_query, projected_keys, ctx.chunk_size):
            grad_chunk = grad_energies[:, start:start + hidden.size(1)]  # [B, q, K]
            hidden.tanh_()
            grad_v += (grad_chunk.reshape(1, -1) @ hidden.reshape(-1, units)).view_as(v)
            # d/d(pre-activation) = grad_E * v * (1 - tanh^2), computed in the same buffer
            hidden.square_().neg_().add_(1.0).mul_(v).mul_(grad_chunk.unsqueeze(-1))
            if grad_query is not None:
                grad_query[:, start:start + hidden.size(1)] = hidden.sum(2)
            if grad_keys is not None:
                grad_keys += hidden.sum(1)
        return grad_query, grad_keys, grad_v, None


def _chunk_pre_activations(projected_query: Tensor, projected_keys: Tensor,
                           step: int) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(start, q + k)`` for each chunk of queries, every chunk written into one reused buffer."""
    batch, queries, units = projected_query.shape
    keys = projected_keys.size(1)
    step = max(1, min(step, queries))
    workspace = projected_query.new_empty(batch * step * keys * units)
    for start in range(0, queries, step):
        size = min(step, queries - start)
        hidden = workspace[:batch * size * keys * units].view(batch, size, keys, units)
        torch.add(projected_query[:, start:start + size].unsqueeze(2), projected_keys.unsqueeze(1), out=hidden)
        yield start, hidden


class SoftmaxNormalizer(nn.Module):
    """Softmax over keys with masked keys at exactly zero; ``temperature`` < 1 sharpens."""

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        energies = energies / self.temperature
        if mask is not None:
            mask = expand_key_mask(mask, energies)
            require_allowed_key(mask)
            energies = energies.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energies, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask, 0.0)
        return weights


def require_allowed_key(allowed: Tensor, why: str = "") -> None:
    """Raise when a query may attend no key at all: its weights could not sum to one, and the
    normalisers would return zeros, crash, or pick a masked key."""
    if bool(allowed.any(-1).all()):
        return
    rows = (~allowed.any(-1)).nonzero().tolist()
    raise ValueError(
        f"{len(rows)} query row(s) have no allowed key (first, as [batch, (head,) query]: "
        f"{rows[:5]}); every query needs at least one unmasked key{why}"
    )


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


def expand_key_mask(mask: Tensor, energies: Tensor) -> Tensor:
    """Broadcast a ``[batch, keys]`` (or ``[batch, queries, keys]``) mask to the energies' shape.

    Energies are ``[batch, (heads,) queries, keys]``; the mask gains the missing axes after batch.
    """
    mask = mask.bool()
    while mask.dim() < energies.dim():
        mask = mask.unsqueeze(1)
    return mask


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


def bahdanau_attention(query_size: int, key_size: int, units: int,
                       chunk_size: int | None = None) -> Attention:
    """Additive score + softmax: the attention of Bahdanau, Cho & Bengio (2015)."""
    return Attention(AdditiveScore(query_size, key_size, units, chunk_size), SoftmaxNormalizer())
