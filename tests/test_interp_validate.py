"""interp.validate: what counts as attention weights, rule by rule."""

from __future__ import annotations

import pytest
import torch

from interp.validate import problems


def softmax_rows(*shape):
    torch.manual_seed(0)
    return torch.randn(*shape).softmax(-1)


def test_softmax_masked_and_windowed_rows_pass():
    w = softmax_rows(2, 3, 5)
    assert problems(w) is None
    assert problems(softmax_rows(2, 4, 3, 5)) is None  # per head
    masked = w.clone()
    masked[1, :, 3:] = 0  # keys masked after the softmax: rows sum below 1
    assert problems(masked) is None
    masked[0, 2] = 0  # a query with every key masked
    assert problems(masked) is None
    gaussian = torch.exp(-(torch.arange(5.0) - 2) ** 2 / 2)
    assert problems(w * gaussian) is None  # local-p: a window factor after the softmax
    assert problems(w.half()) is None and problems(w.bfloat16()) is None


@pytest.mark.parametrize("make, reason", [
    (lambda w: w.long(), "not floating point"),
    (lambda w: w.index_put((torch.tensor(0), torch.tensor(0), torch.tensor(0)), torch.tensor(float("nan"))), "not finite"),
    (lambda w: w.index_put((torch.tensor(0), torch.tensor(0), torch.tensor(0)), torch.tensor(float("inf"))), "not finite"),
    (lambda w: w - 0.1, "negative values"),
    (lambda w: w * 1.25, "rows sum to more than 1"),  # attention dropout p=0.2 rescales rows
    (lambda w: w[0, 0], "wrong rank"),
])
def test_each_rule_fails_with_a_reason(make, reason):
    found = problems(make(softmax_rows(2, 3, 5)))
    assert found is not None and found.reason == reason
    assert "shape" in found.evidence


def test_position_bias_and_hidden_states_are_refused():
    torch.manual_seed(0)
    bias = torch.randn(1, 2, 4, 4)  # T5's position bias at batch size 1: same shape as weights
    hidden = torch.tanh(torch.randn(1, 3, 8))  # a GRU hidden state [layers, batch, hidden]
    assert problems(bias).reason == "negative values"
    assert problems(hidden).reason == "negative values"
    sums = problems(torch.full((2, 3, 8), 0.5))
    assert sums.reason == "rows sum to more than 1" and "row sums from 4 to 4" in sums.evidence


def test_unnormalised_switch_drops_only_the_row_sum_rule():
    gates = torch.full((2, 3, 8), 0.5)  # sigmoid gates, deliberately unnormalised
    assert problems(gates, normalized=False) is None
    assert problems(gates - 1, normalized=False).reason == "negative values"
