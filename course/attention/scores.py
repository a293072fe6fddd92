"""The score axis of attention: how well each key matches a query.

Every score maps ``query [B, Q, Dq]`` and ``keys [B, K, Dk]`` to energies ``[B, Q, K]``; the
normaliser turns energies into weights. Scores that can reuse per-source work offer
``prepare(keys)``; scores that read earlier weights say so with ``uses_state``.

| name | energy | paper |
|---|---|---|
| ``dot`` | ``q . k`` | Luong et al. 2015 |
| ``general`` | ``q^T W k`` | Luong et al. 2015 |
| ``concat`` / ``additive`` | ``v^T tanh(W_q q + W_k k)`` | Bahdanau et al. 2015 |
| ``scaled_dot`` | ``q . k / sqrt(d)`` | Vaswani et al. 2017 |
| ``cosine`` | ``beta(q) cos(W q, k)`` | Graves et al. 2014 (content-based) |
| ``location`` | ``(W q)_j``, no keys at all | Luong et al. 2015 |
| ``location_aware`` | ``v^T tanh(W_q q + W_k k + U (F * a_{t-1}))`` | Chorowski et al. 2015 |
| ``multihead`` | scaled dot per head over projections | Vaswani et al. 2017 (course.attention.multihead) |
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.attention.state import AttentionState

SCORES = ("dot", "general", "concat", "additive", "scaled_dot", "cosine", "location",
          "location_aware", "multihead")
SCORES_WITH_COVERAGE = ("concat", "additive", "location_aware")


def check_same_size(name: str, query: Tensor, keys: Tensor) -> None:
    if query.size(-1) != keys.size(-1):
        raise ValueError(
            f"the {name} score compares query and key vectors directly, so they need the same size; "
            f"got query size {query.size(-1)} and key size {keys.size(-1)}. Use the 'general' score "
            "(which learns a map between the two) or make the sizes equal"
        )


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


class DotScore(nn.Module):
    """Luong's ``dot``: ``q . k``. No parameters; query and keys must have the same size."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        check_same_size("dot", query, keys)
        return torch.matmul(query, keys.transpose(1, 2))


class ScaledDotScore(nn.Module):
    """Vaswani's ``q . k / sqrt(d)``: the scaling keeps the softmax out of saturation as d grows."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        check_same_size("scaled dot", query, keys)
        return torch.matmul(query, keys.transpose(1, 2)) / math.sqrt(query.size(-1))


class GeneralScore(nn.Module):
    """Luong's ``general``: ``q^T W k``; ``W k`` is computed once per source by :meth:`prepare`."""

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.key_proj = nn.Linear(key_size, query_size, bias=False)

    def prepare(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, prepared: Tensor | None = None) -> Tensor:
        projected = self.prepare(keys) if prepared is None else prepared
        return torch.matmul(query, projected.transpose(1, 2))


class CosineScore(nn.Module):
    """Graves' content-based addressing: ``beta(q) * cos(W q, k)``.

    Cosine similarity ignores the vectors' lengths, so a learned key strength
    ``beta = 1 + softplus(w . q)`` decides how sharp the focus is.
    """

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.query_proj = nn.Linear(query_size, key_size, bias=False)
        self.strength = nn.Linear(query_size, 1)

    def prepare(self, keys: Tensor) -> Tensor:
        return F.normalize(keys, dim=-1, eps=1e-8)

    def forward(self, query: Tensor, keys: Tensor, prepared: Tensor | None = None) -> Tensor:
        unit_keys = self.prepare(keys) if prepared is None else prepared
        unit_query = F.normalize(self.query_proj(query), dim=-1, eps=1e-8)
        beta = 1.0 + F.softplus(self.strength(query))                    # [B, Q, 1]
        return beta * torch.matmul(unit_query, unit_keys.transpose(1, 2))


class LocationScore(nn.Module):
    """Luong's ``location``: ``a_t = softmax(W_a h_t)``, energies from the query alone.

    The weights are a learned function of the decoder state, one per source *position*, so the
    score needs the longest source it will ever see (``max_keys``).
    """

    def __init__(self, query_size: int, max_keys: int):
        super().__init__()
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.max_keys = max_keys
        self.position_proj = nn.Linear(query_size, max_keys)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        if keys.size(1) > self.max_keys:
            raise ValueError(
                f"the location score has one weight per source position up to {self.max_keys}, "
                f"got {keys.size(1)} keys; build it with a larger max_keys (Seq2SeqConfig.max_src_len)"
            )
        return self.position_proj(query)[..., : keys.size(1)]


class LocationAwareScore(AdditiveScore):
    """Chorowski et al. (2015): the additive score plus convolutional features of the last weights.

    ``f = F * a_{t-1}`` (``channels`` filters of width ``kernel_size``) tells the score where it
    looked a step ago, so it can learn to move forward: attention that stays monotone on inputs
    longer than any seen in training. Reads :class:`AttentionState`, one query per step.
    """

    def __init__(self, query_size: int, key_size: int, units: int, channels: int = 10,
                 kernel_size: int = 5, chunk_size: int | None = None, coverage: bool = False):
        super().__init__(query_size, key_size, units, chunk_size=chunk_size, coverage=coverage)
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number (centred filters), got {kernel_size}")
        self.location_conv = nn.Conv1d(1, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.location_proj = nn.Linear(channels, units, bias=False)

    @property
    def uses_state(self) -> bool:
        return True

    def state_features(self, state: AttentionState) -> Tensor:
        features = self.location_conv(state.previous_weights.unsqueeze(1)).transpose(1, 2)  # [B, K, C]
        projected = self.location_proj(features)
        if self.coverage_proj is not None:
            projected = projected + super().state_features(state)
        return projected


def check_score_options(name: str, *, coverage: bool = False, heads: int = 1,
                        max_keys: int | None = None) -> None:
    """Reject a score choice that cannot work, saying what to change.

    The one place these rules live: :func:`make_score` and ``Seq2SeqConfig`` both call it.
    """
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; choose one of {SCORES}")
    if coverage and name not in SCORES_WITH_COVERAGE:
        raise ValueError(
            f"coverage feeds the coverage vector into an additive score, which score={name!r} does not "
            f"have; choose score in {SCORES_WITH_COVERAGE} or set coverage=False"
        )
    if heads < 1:
        raise ValueError(f"heads must be at least 1, got {heads}")
    if heads != 1 and name != "multihead":
        raise ValueError(f"heads={heads} needs score='multihead'; score={name!r} has one head (set heads=1)")
    if name == "location" and max_keys is None:
        raise ValueError("score='location' has one weight per source position: set the longest "
                         "source length (max_keys; Seq2SeqConfig.max_src_len)")


def make_score(name: str, query_size: int, key_size: int, units: int, *, heads: int = 1,
               max_keys: int | None = None, chunk_size: int | None = None,
               coverage: bool = False) -> nn.Module:
    """Build a score by name (see the module's table); bad combinations say what to change."""
    check_score_options(name, coverage=coverage, heads=heads, max_keys=max_keys)
    if name in ("concat", "additive"):
        return AdditiveScore(query_size, key_size, units, chunk_size=chunk_size, coverage=coverage)
    if name == "location_aware":
        return LocationAwareScore(query_size, key_size, units, chunk_size=chunk_size, coverage=coverage)
    if name == "dot":
        return DotScore()
    if name == "scaled_dot":
        return ScaledDotScore()
    if name == "general":
        return GeneralScore(query_size, key_size)
    if name == "cosine":
        return CosineScore(query_size, key_size)
    if name == "location":
        return LocationScore(query_size, max_keys)
    from course.attention.multihead import MultiHeadScore

    return MultiHeadScore(query_size, key_size, heads, model_size=key_size)
