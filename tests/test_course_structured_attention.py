"""Segmentation (linear-chain CRF) attention: exact marginals, masking, gradients and errors."""

from __future__ import annotations

import itertools

import pytest
import torch

from course.attention import AdditiveScore, Attention
from course.attention.structured import (
    SegmentationNormalizer,
    chain_forward_backward,
    segmentation_marginals,
)


def brute_force(unary: torch.Tensor, transitions: torch.Tensor, keep: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Marginals and log Z of one chain by enumerating every assignment of the kept positions."""
    length, states = unary.shape
    marginals = torch.zeros(length, states, dtype=torch.float64)
    scores = []
    assignments = list(itertools.product(range(states), repeat=len(keep)))
    for z in assignments:
        score = sum(unary[k, c] for k, c in zip(keep, z))
        score = score + sum(transitions[a, b] for a, b in zip(z, z[1:]))
        scores.append(score)
    scores = torch.stack([torch.as_tensor(s, dtype=torch.float64) for s in scores])
    log_z = torch.logsumexp(scores, 0)
    probabilities = torch.exp(scores - log_z)
    for z, p in zip(assignments, probabilities):
        for k, c in zip(keep, z):
            marginals[k, c] += p
    return marginals, log_z


@pytest.mark.parametrize("states", [2, 3])
def test_marginals_and_partition_match_enumeration(states):
    generator = torch.Generator().manual_seed(0)
    unary = torch.randn(4, 6, states, generator=generator, dtype=torch.float64) * 2
    transitions = torch.randn(states, states, generator=generator, dtype=torch.float64) * 2
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [0, 1, 1, 0, 1, 1], [0, 0, 1, 0, 0, 0]],
                        dtype=torch.bool)
    marginals, log_z = chain_forward_backward(unary, transitions, mask)
    for b in range(4):
        keep = mask[b].nonzero().flatten().tolist()
        expected, expected_log_z = brute_force(unary[b], transitions, keep)
        torch.testing.assert_close(marginals[b], expected)
        torch.testing.assert_close(log_z[b], expected_log_z)
    assert torch.all(marginals[~mask] == 0)
    torch.testing.assert_close(marginals.sum(-1)[mask], torch.ones(int(mask.sum()), dtype=torch.float64))


def test_marginals_are_the_gradient_of_the_log_partition():
    unary = torch.randn(3, 5, 2, dtype=torch.float64, requires_grad=True)
    transitions = torch.randn(2, 2, dtype=torch.float64)
    marginals, log_z = chain_forward_backward(unary, transitions)
    (gradient,) = torch.autograd.grad(log_z.sum(), unary)
    torch.testing.assert_close(marginals, gradient)


def test_zero_transitions_give_independent_sigmoids():
    energies = torch.randn(2, 3, 7, dtype=torch.float64)
    weights = segmentation_marginals(energies, torch.zeros(2, 2, dtype=torch.float64))
    torch.testing.assert_close(weights, torch.sigmoid(energies))


def test_positive_coupling_selects_runs():
    energies = torch.tensor([[-2.0, 3.0, -0.5, 3.0, -2.0]], dtype=torch.float64)
    independent = segmentation_marginals(energies, torch.zeros(2, 2, dtype=torch.float64))
    coupled = segmentation_marginals(energies, torch.tensor([[0.0, 0.0], [0.0, 4.0]], dtype=torch.float64))
    # the weak key between two strong ones is pulled into the span
    assert coupled[0, 2] > 0.9 > 0.5 > independent[0, 2]


def test_normalizer_in_attention_masks_and_backpropagates():
    torch.manual_seed(0)
    attention = Attention(AdditiveScore(4, 5, 3), SegmentationNormalizer())
    attention.normalizer.transitions.data = torch.tensor([[0.0, -1.0], [-1.0, 2.0]])
    query, keys = torch.randn(2, 3, 4), torch.randn(2, 6, 5)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    keys[1, 4:] = float("nan")  # garbage in padding must not leak
    out = attention(query, keys, mask=mask)
    assert out.weights.shape == (2, 3, 6)
    assert torch.all(out.weights[1, :, 4:] == 0)
    assert torch.isfinite(out.context).all()
    out.context.sum().backward()
    assert attention.normalizer.transitions.grad is not None
    assert attention.normalizer.transitions.grad.abs().sum() > 0


def test_normalize_option_sums_to_one_and_handles_heads():
    energies = torch.randn(2, 4, 3, 5)                 # [B, H, Q, K]
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    weights = SegmentationNormalizer(normalize=True)(energies, mask)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 3))
    assert torch.all(weights[1, ..., 3:] == 0)


def test_gradcheck_through_forward_backward():
    unary = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    transitions = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False, True], [True, True, True, True]])
    assert torch.autograd.gradcheck(lambda u, t: chain_forward_backward(u, t, mask)[0], (unary, transitions))


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="transitions must be"):
        chain_forward_backward(torch.zeros(1, 3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mask must be"):
        chain_forward_backward(torch.zeros(1, 3, 2), torch.zeros(2, 2), torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="no allowed key"):
        chain_forward_backward(torch.zeros(1, 3, 2), torch.zeros(2, 2), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN or infinity"):
        SegmentationNormalizer()(torch.tensor([[[0.0, float("nan")]]]))

