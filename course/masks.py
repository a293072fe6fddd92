"""Masks over padded sequences, shared by the data (batches) and the models (attention).

A mask is True on real positions and False on padding. Data builds them from lengths; attention
broadcasts them over heads and queries and refuses a query that may attend no key at all.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["expand_key_mask", "lengths_to_mask", "require_allowed_key"]


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """``[B]`` lengths to a ``[B, max_len]`` mask that is True on real positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def expand_key_mask(mask: Tensor, energies: Tensor) -> Tensor:
    """Broadcast a ``[batch, keys]`` (or ``[batch, queries, keys]``) mask to the energies' shape.

    Energies are ``[batch, (heads,) queries, keys]``; the mask gains the missing axes after batch.
    """
    mask = mask.bool()
    while mask.dim() < energies.dim():
        mask = mask.unsqueeze(1)
    return mask


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
