"""Reduce a Transformer's attention over heads and layers, pick a row, or roll it out.

Comparing a multi-layer, multi-head model's attention with one attribution per token needs one
``[batch, keys]`` (or ``[batch, queries, keys]``) table. :func:`aggregate` makes it:

* ``heads``: ``"mean"``, ``"max"``, one index or a list of indices (averaged);
* ``layers``: ``None`` (keep each layer), ``"mean"``, one index, a list (averaged), or
  ``"rollout"`` (Abnar & Zuidema 2020, :func:`attention_rollout`);
* ``row``: a query position to keep (``0`` for a ``[CLS]`` token), or ``"mean"`` over queries.

Layers are given as Hugging Face returns them (``outputs.attentions``: a tuple of ``[batch,
heads, q, k]``, first layer first), as a mapping in layer order (``dict(capture)``, a
:class:`interp.Capture`), or as one tensor ``[layers, batch, heads, q, k]``; a single layer is
one ``[batch, heads, q, k]`` tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["aggregate", "attention_rollout", "stack_layers"]

Heads = str | int | Sequence[int]
Layers = str | int | Sequence[int] | None


def stack_layers(attention: Any) -> Tensor:
    """Per-layer attention as one tensor ``[layers, batch, heads, q, k]``.

    A ``[batch, heads, q, k]`` tensor is one layer; ``[batch, q, k]`` tensors (one head) get a
    head axis of 1. Every layer must have the same shape.
    """
    if isinstance(attention, Tensor):
        if attention.dim() == 5:
            return attention
        if attention.dim() in (3, 4):
            attention = [attention]
        else:
            raise ValueError(
                f"attention must be [batch, heads, q, k] (one layer) or [layers, batch, heads, q, k], "
                f"got shape {tuple(attention.shape)}"
            )
    if isinstance(attention, Mapping):
        attention = list(attention.values())
    layers = [torch.as_tensor(a) for a in attention]
    if not layers:
        raise ValueError("no attention given: pass at least one layer")
    layers = [a.unsqueeze(1) if a.dim() == 3 else a for a in layers]
    shapes = {tuple(a.shape) for a in layers}
    if len(shapes) > 1 or layers[0].dim() != 4:
        raise ValueError(
            f"every layer must be [batch, heads, q, k] with the same shape, got {sorted(shapes)}"
        )
    return torch.stack(layers)


def _heads(att: Tensor, heads: Heads) -> Tensor:
    """``[layers, batch, heads, q, k]`` -> ``[layers, batch, q, k]``."""
    n = att.shape[2]
    if heads == "mean":
        return att.mean(2)
    if heads == "max":
        return att.max(2).values
    index = [heads] if isinstance(heads, int) else list(heads) if not isinstance(heads, str) else None
    if index is None or not index or any(not isinstance(i, int) or not -n <= i < n for i in index):
        raise ValueError(f"heads must be 'mean', 'max', or head indices in 0..{n - 1}, got {heads!r}")
    return att[:, :, index].mean(2)


def attention_rollout(attention: Any, *, heads: Heads = "mean", residual: bool = True) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each input token flows to each position.

    Per layer the heads are combined (``heads``), the residual connection is added as
    ``0.5 * A + 0.5 * I`` and rows are renormalised; the layers are multiplied from the first up:
    ``R = Ã_L ... Ã_2 Ã_1``. Returns ``[batch, q, k]`` (q = k, self-attention only).
    """
    att = _heads(stack_layers(attention).double(), heads)  # [layers, batch, q, k]
    q, k = att.shape[-2:]
    if q != k:
        raise ValueError(f"rollout needs self-attention (queries = keys), got {q} queries and {k} keys")
    eye = torch.eye(k, dtype=att.dtype, device=att.device)
    out = eye.expand(att.shape[1], k, k)
    for layer in att:
        a = 0.5 * layer + 0.5 * eye if residual else layer
        a = a / a.sum(-1, keepdim=True).clamp_min(1e-30)
        out = a @ out
    return out.to(stack_layers(attention).dtype)


def aggregate(attention: Any, *, heads: Heads = "mean", layers: Layers = "mean",
              row: int | str | None = None) -> Tensor:
    """One table from many heads and layers: ``[batch, q, k]``, ``[layers, batch, q, k]`` when
    ``layers=None``, and without the query axis when ``row`` is given. See the module docstring.
    """
    if layers == "rollout":
        out = attention_rollout(attention, heads=heads)
    else:
        att = _heads(stack_layers(attention), heads)
        n = att.shape[0]
        if layers is None:
            out = att
        elif layers == "mean":
            out = att.mean(0)
        else:
            index = [layers] if isinstance(layers, int) else list(layers) if not isinstance(layers, str) else None
            if index is None or not index or any(not isinstance(i, int) or not -n <= i < n for i in index):
                raise ValueError(
                    f"layers must be None, 'mean', 'rollout' or layer indices in 0..{n - 1}, got {layers!r}"
                )
            out = att[index].mean(0)
    if row is None:
        return out
    if row == "mean":
        return out.mean(-2)
    if not isinstance(row, int) or not -out.shape[-2] <= row < out.shape[-2]:
        raise ValueError(f"row must be a query index in 0..{out.shape[-2] - 1} or 'mean', got {row!r}")
    return out[..., row, :]
