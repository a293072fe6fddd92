"""Structured attention: weights that are marginals of a linear-chain CRF over the keys.

Kim, Denton, Hoang & Rush (2017, *Structured Attention Networks*) replace "pick one key" by a
latent **selection** ``z_1 .. z_K``, each ``z_k`` in {0, 1} (key k is in or out), scored by a
linear-chain conditional random field::

    p(z | q) ∝ exp( Σ_k θ_k(z_k) + Σ_k A[z_k, z_{k+1}] )

The unary ``θ_k(1)`` is the usual attention energy of key k for query q (``θ_k(0) = 0``) and the
2×2 matrix ``A`` scores neighbouring decisions: a positive ``A[1, 1]`` makes selected keys come
in runs, so the layer can attend to a contiguous **span** instead of independent tokens. The
attention weight of key k is its marginal ``p(z_k = 1 | q)``, computed exactly by the
forward-backward algorithm (in log space, batched, with masked keys skipped). With ``A = 0`` the
keys are independent and the marginals are ``sigmoid(energies)``.

The marginals need not sum to one (several keys, or none, may be selected); ``normalize=True``
divides them by their sum, which keeps the context on the scale of one value vector.

This is not Lin et al.'s (2017) "structured self-attentive sentence embedding" (lesson 09), which
is several softmax rows with a penalty, with no CRF.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course.masks import expand_key_mask, require_allowed_key


def check_chain_inputs(unary: Tensor, transitions: Tensor, mask: Tensor | None) -> None:
    if unary.dim() < 2:
        raise ValueError(f"unary potentials must be [..., keys, states], got shape {tuple(unary.shape)}")
    states = unary.size(-1)
    if transitions.shape != (states, states):
        raise ValueError(f"transitions must be [{states}, {states}] for {states} states per key, "
                         f"got {tuple(transitions.shape)}")
    if mask is not None and mask.shape != unary.shape[:-1]:
        raise ValueError(f"mask must be [..., keys] = {tuple(unary.shape[:-1])}, got {tuple(mask.shape)}")
    if not bool(torch.isfinite(transitions).all()):
        raise ValueError("transition scores hold NaN or infinity")
    if bool(torch.isnan(unary).any()):
        raise ValueError("unary potentials hold NaN; check the score's inputs")


def chain_forward_backward(unary: Tensor, transitions: Tensor,
                           mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Log-space forward-backward over a linear chain: ``(marginals, log_partition)``.

    ``unary [..., K, C]`` scores state c at position k; ``transitions [C, C]`` scores consecutive
    states (from, to). ``mask [..., K]`` (True on positions in the chain) removes positions: the
    chain runs over the allowed positions in order, so its neighbours across a gap are adjacent.
    Returns marginals ``p(z_k = c)`` as ``[..., K, C]`` (all zero on masked positions) and
    ``log Z`` as ``[...]``. Every chain needs at least one allowed position.
    """
    check_chain_inputs(unary, transitions, mask)
    length = unary.size(-2)
    if mask is None:
        mask = torch.ones(unary.shape[:-1], dtype=torch.bool, device=unary.device)
    mask = mask.bool()
    require_allowed_key(mask)
    # forward: alpha[k, c] = log-sum of every path over the allowed positions up to k ending in c
    alphas, alpha = [], torch.zeros_like(unary[..., 0, :])
    started = torch.zeros(unary.shape[:-2], dtype=torch.bool, device=unary.device)
    for k in range(length):
        here = mask[..., k]
        step = torch.logsumexp(alpha.unsqueeze(-1) + transitions, dim=-2) + unary[..., k, :]
        step = torch.where(started.unsqueeze(-1), step, unary[..., k, :])  # the chain's first position
        alpha = torch.where(here.unsqueeze(-1), step, alpha)                # masked: carry through
        started = started | here
        alphas.append(alpha)
    log_partition = torch.logsumexp(alpha, dim=-1)
    # backward: beta[k, c] = log-sum of every continuation after k, given state c at k
    betas: list[Tensor] = [torch.zeros_like(alpha)] * length
    after = torch.zeros_like(alpha)                       # unary + beta of the next allowed position
    has_next = torch.zeros_like(started)
    for k in range(length - 1, -1, -1):
        here = mask[..., k]
        beta = torch.logsumexp(transitions + after.unsqueeze(-2), dim=-1)
        beta = torch.where(has_next.unsqueeze(-1), beta, torch.zeros_like(beta))
        betas[k] = beta
        after = torch.where(here.unsqueeze(-1), unary[..., k, :] + beta, after)
        has_next = has_next | here
    log_alpha, log_beta = torch.stack(alphas, dim=-2), torch.stack(betas, dim=-2)
    marginals = torch.exp(log_alpha + log_beta - log_partition[..., None, None])
    return marginals.masked_fill(~mask.unsqueeze(-1), 0.0), log_partition


def segmentation_marginals(energies: Tensor, transitions: Tensor, mask: Tensor | None = None) -> Tensor:
    """``p(z_k = 1)`` for every key: the marginals of a two-state chain whose unary for "selected"
    is the energy (``[..., K]``) and for "not selected" is 0. Zero on masked keys."""
    unary = torch.stack([torch.zeros_like(energies), energies], dim=-1)
    marginals, _ = chain_forward_backward(unary, transitions, mask)
    return marginals[..., 1]


class SegmentationNormalizer(nn.Module):
    """Kim et al.'s segmentation attention as a normaliser for :class:`course.attention.Attention`.

    The energies ``[B, (H,) Q, K]`` are the unary scores of "key selected"; a learned 2×2
    ``transitions`` matrix (zeros at the start, so training begins from independent sigmoids)
    scores neighbouring selections. Returns the marginals ``p(z_k = 1)``, exactly zero on masked
    keys; with ``normalize=True`` they are divided by their sum over the keys.
    """

    def __init__(self, normalize: bool = False, eps: float = 1e-6):
        super().__init__()
        self.normalize = normalize
        self.eps = eps
        self.transitions = nn.Parameter(torch.zeros(2, 2))

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        full_mask = None if mask is None else expand_key_mask(mask, energies).expand_as(energies)
        allowed = energies if full_mask is None else energies[full_mask]
        if not bool(torch.isfinite(allowed).all()):
            raise ValueError("attention energies hold NaN or infinity on allowed keys; the marginals "
                             "would be meaningless. Check the inputs and the score for overflow.")
        if full_mask is not None:  # masked keys never enter the chain; keep their values harmless
            energies = energies.masked_fill(~full_mask, 0.0)
        weights = segmentation_marginals(energies, self.transitions, full_mask)
        if self.normalize:
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(self.eps)
        return weights
