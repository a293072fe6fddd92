"""Multi-head scaled dot attention over LSTM states (Vaswani et al. 2017), one score of many.

Each of ``heads`` heads projects queries, keys and values to ``model_size / heads`` dimensions,
scores with a scaled dot product and mixes its own values; the heads' contexts are concatenated
and projected back. Weights keep their heads: ``[batch, heads, queries, keys]``. With the same
weights it computes exactly what ``torch.nn.MultiheadAttention`` computes (a test proves it), so
lesson 04 can show the familiar module is this composition.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from course.attention import Attention, SoftmaxNormalizer


class HeadProjections(NamedTuple):
    """Keys and values projected and split per head, ``[B, H, K, d]`` each (reused every step)."""

    keys: Tensor
    values: Tensor


class MultiHeadScore(nn.Module):
    """Per-head scaled dot energies ``[B, H, Q, K]`` and the per-head mix of values (``combine``)."""

    projects_values = True

    def __init__(self, query_size: int, key_size: int, heads: int, model_size: int | None = None,
                 value_size: int | None = None, bias: bool = True):
        super().__init__()
        model_size = key_size if model_size is None else model_size
        value_size = key_size if value_size is None else value_size
        if heads < 1:
            raise ValueError(f"heads must be at least 1, got {heads}")
        if model_size % heads != 0:
            raise ValueError(
                f"heads={heads} must divide the attention size {model_size} so every head gets the same "
                f"width; choose heads among {[h for h in range(1, model_size + 1) if model_size % h == 0]}"
            )
        self.heads = heads
        self.head_size = model_size // heads
        self.output_size = model_size
        self.query_proj = nn.Linear(query_size, model_size, bias=bias)
        self.key_proj = nn.Linear(key_size, model_size, bias=bias)
        self.value_proj = nn.Linear(value_size, model_size, bias=bias)
        self.out_proj = nn.Linear(model_size, model_size, bias=bias)

    def split_heads(self, x: Tensor) -> Tensor:
        """``[B, N, H*d]`` to ``[B, H, N, d]``."""
        return x.view(x.size(0), x.size(1), self.heads, self.head_size).transpose(1, 2)

    def prepare(self, keys: Tensor, values: Tensor | None = None) -> HeadProjections:
        values = keys if values is None else values
        return HeadProjections(self.split_heads(self.key_proj(keys)), self.split_heads(self.value_proj(values)))

    def forward(self, query: Tensor, keys: Tensor, prepared: HeadProjections | None = None) -> Tensor:
        projected = self.prepare(keys) if prepared is None else prepared
        q = self.split_heads(self.query_proj(query))                                  # [B, H, Q, d]
        return torch.matmul(q, projected.keys.transpose(-1, -2)) / math.sqrt(self.head_size)

    def combine(self, weights: Tensor, values: Tensor, prepared: HeadProjections | None = None) -> Tensor:
        """Weights ``[B, H, Q, K]`` mix each head's values; heads are concatenated and projected."""
        head_values = self.split_heads(self.value_proj(values)) if prepared is None else prepared.values
        mixed = torch.matmul(weights, head_values)                                    # [B, H, Q, d]
        merged = mixed.transpose(1, 2).reshape(weights.size(0), weights.size(2), self.output_size)
        return self.out_proj(merged)


def multihead_attention(query_size: int, key_size: int, heads: int, model_size: int | None = None,
                        value_size: int | None = None) -> Attention:
    """Multi-head scaled dot score + softmax: ``nn.MultiheadAttention`` as a course composition."""
    return Attention(MultiHeadScore(query_size, key_size, heads, model_size, value_size), SoftmaxNormalizer())
