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
| ``multihead`` | scaled dot per head over projections | Vaswani et al. 2017 (course.multihead) |
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.attention import AdditiveScore, AttentionState

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


def make_score(name: str, query_size: int, key_size: int, units: int, *, heads: int = 1,
               max_keys: int | None = None, chunk_size: int | None = None,
               coverage: bool = False) -> nn.Module:
    """Build a score by name (see the module's table); bad combinations say what to change."""
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}; choose one of {SCORES}")
    if coverage and name not in SCORES_WITH_COVERAGE:
        raise ValueError(
            f"coverage feeds the coverage vector into an additive score, which score={name!r} does not "
            f"have; choose score in {SCORES_WITH_COVERAGE} or set coverage=False"
        )
    if heads != 1 and name != "multihead":
        raise ValueError(f"heads={heads} needs score='multihead'; score={name!r} has one head (set heads=1)")
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
        if max_keys is None:
            raise ValueError("score='location' has one weight per source position: set the longest "
                             "source length (Seq2SeqConfig.max_src_len)")
        return LocationScore(query_size, max_keys)
    from course.multihead import MultiHeadScore

    return MultiHeadScore(query_size, key_size, heads, model_size=key_size)
