"""Break a mechanism on purpose, to show that a lesson's claim depends on it.

A claim that still holds with its mechanism disabled teaches nothing. The lessons take a
``BREAK`` parameter; the claims runner (``python -m course.claims --broken``) sets it and records
which claims then fail. This module holds the ablations they share.
"""

from __future__ import annotations

from torch import Tensor, nn

from course.attention import SoftmaxNormalizer
from course.masks import expand_key_mask


class UniformNormalizer(nn.Module):
    """Ignore the energies: every allowed key gets ``1 / (number of allowed keys)``, others 0."""

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return energies.new_full(energies.shape, 1.0 / energies.size(-1))
        # expand, not only broadcast: with several queries at once (Luong's parallel path) the
        # weights must keep one row per query, as the energies have
        allowed = expand_key_mask(mask, energies).expand(energies.shape).to(energies.dtype)
        return allowed / allowed.sum(-1, keepdim=True).clamp_min(1.0)


def _is_normalizer(module: nn.Module) -> bool:
    from course.attention.normalizers import HardNormalizer, SparseNormalizer
    from course.models.memory import LinearNormalizer

    return isinstance(module, (SoftmaxNormalizer, SparseNormalizer, HardNormalizer, LinearNormalizer))


def uniform_attention(model: nn.Module) -> int:
    """Replace every attention normaliser inside ``model`` by :class:`UniformNormalizer`, in place.

    Returns how many were replaced and raises when there is none, so an ablation can't silently
    do nothing. A model that swaps its normaliser later (the memory network's linear start) must
    be ablated again after the swap.
    """
    replaced = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if _is_normalizer(child) and not isinstance(child, UniformNormalizer):
                setattr(parent, name, UniformNormalizer())
                replaced += 1
    if replaced == 0 and not any(isinstance(m, UniformNormalizer) for m in model.modules()):
        raise ValueError(f"{type(model).__name__} has no attention normaliser to replace; "
                         "uniform_attention works on models built from course.attention parts")
    return replaced
