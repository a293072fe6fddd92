"""Attention as a composition: a score, a normaliser and a mask, one output type for all.

Every variant in the course is ``score(query, keys) -> normalise -> weighted sum of values``.
The output is always ``AttentionOutput(context, weights)`` with weights shaped
``[batch, queries, keys]`` (or ``[batch, heads, queries, keys]``) and masked keys exactly zero:
that single convention lets ``interp`` capture any variant without special cases.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class AttentionOutput(NamedTuple):
    """What every attention module returns: the context vectors and the weights that built them."""

    context: Tensor
    weights: Tensor


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
    """Bahdanau's score ``v^T tanh(W_q q + W_k k)``.

    It materialises ``[batch, queries, keys, units]``; ``chunk_size`` bounds how many queries are
    scored at once so long inputs do not run out of memory. The key projection can be computed
    once per source with :meth:`prepare` and reused at every decoding step.
    """

    def __init__(self, query_size: int, key_size: int, units: int, chunk_size: int | None = None):
        super().__init__()
        if units < 1:
            raise ValueError(f"units must be at least 1, got {units}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive number of queries or None, got {chunk_size}")
        self.query_proj = nn.Linear(query_size, units, bias=False)
        self.key_proj = nn.Linear(key_size, units, bias=True)
        self.v = nn.Linear(units, 1, bias=False)
        self.chunk_size = chunk_size

    def prepare(self, keys: Tensor) -> Tensor:
        """Project the keys once: ``W_k k`` does not depend on the query."""
        return self.key_proj(keys)

    def forward(self, query: Tensor, keys: Tensor, prepared: Tensor | None = None) -> Tensor:
        projected_keys = self.prepare(keys) if prepared is None else prepared
        projected_query = self.query_proj(query)  # [B, Q, U]
        step = self.chunk_size or projected_query.size(1)
        chunks = []
        for start in range(0, projected_query.size(1), step):
            q = projected_query[:, start:start + step]
            hidden = torch.tanh(q.unsqueeze(2) + projected_keys.unsqueeze(1))  # [B, q, K, U]
            chunks.append(self.v(hidden).squeeze(-1))
        return torch.cat(chunks, dim=1)


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
            energies = energies.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energies, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask, 0.0)
        return weights


def expand_key_mask(mask: Tensor, energies: Tensor) -> Tensor:
    """Broadcast a ``[batch, keys]`` mask to energies ``[batch, (heads,) queries, keys]``."""
    mask = mask.bool()
    while mask.dim() < energies.dim():
        mask = mask.unsqueeze(1)
    return mask


class Attention(nn.Module):
    """Score, normalise, and take the weighted sum of the values.

    ``Attention(AdditiveScore(...), SoftmaxNormalizer())`` is Bahdanau attention; other lessons
    swap the score or the normaliser and keep everything else.
    """

    def __init__(self, score: nn.Module, normalizer: nn.Module | None = None):
        super().__init__()
        self.score = score
        self.normalizer = normalizer if normalizer is not None else SoftmaxNormalizer()

    def prepare(self, keys: Tensor) -> Tensor | None:
        """Per-source work that every query reuses (e.g. the key projection)."""
        prepare = getattr(self.score, "prepare", None)
        return prepare(keys) if prepare is not None else None

    def forward(self, query: Tensor, keys: Tensor, values: Tensor | None = None,
                mask: Tensor | None = None, prepared: Tensor | None = None) -> AttentionOutput:
        """Attend from ``query [B, Q, Dq]`` over ``keys [B, K, Dk]``; ``mask [B, K]`` is True on real keys."""
        check_attention_inputs(query, keys, mask)
        values = keys if values is None else values
        if prepared is None:
            energies = self.score(query, keys)
        else:
            energies = self.score(query, keys, prepared=prepared)
        weights = self.normalizer(energies, mask)
        context = torch.matmul(weights, values)
        return AttentionOutput(context, weights)


def bahdanau_attention(query_size: int, key_size: int, units: int,
                       chunk_size: int | None = None) -> Attention:
    """Additive score + softmax: the attention of Bahdanau, Cho & Bengio (2015)."""
    return Attention(AdditiveScore(query_size, key_size, units, chunk_size), SoftmaxNormalizer())
