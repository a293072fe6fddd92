"""Attention numerics under bad values: masked keys contribute exactly nothing even when their
values are NaN, NaN/Inf energies never become a clean-looking distribution, and a query with
no allowed key (e.g. a local window over a left-padded source) is a clear error everywhere."""

from __future__ import annotations

import pytest
import torch

from course.attention import Attention
from course.attention.normalizers import NORMALIZERS, HardNormalizer, make_normalizer
from course.attention.scores import make_score
from course.attention.windows import make_window

B, Q, K, D = 2, 3, 6, 8
# Every normaliser, the hard ones both at inference and in training.
SETTINGS = [(n, False) for n in NORMALIZERS] + [("hard_gumbel", True), ("hard_reinforce", True)]


def attention(normalizer: str, train: bool, score: str = "general", window: str = "global") -> Attention:
    torch.manual_seed(0)
    heads = 2 if score == "multihead" else 1
    att = Attention(make_score(score, D, D, D, heads=heads), make_normalizer(normalizer),
                    make_window(window, 1, D, D))
    return att.train(train)


def inputs():
    torch.manual_seed(1)
    query, keys = torch.randn(B, Q, D), torch.randn(B, K, D)
    mask = torch.ones(B, K, dtype=torch.bool)
    mask[0, 4:] = False  # example 0 has two padded keys
    return query, keys, mask


@pytest.mark.parametrize("score", ["general", "multihead"])
@pytest.mark.parametrize(("normalizer", "train"), SETTINGS)
def test_nan_values_of_masked_keys_contribute_nothing(normalizer, train, score):
    att = attention(normalizer, train, score)
    query, keys, mask = inputs()
    values = torch.randn(B, K, D)
    poisoned = values.clone()
    poisoned[0, 4] = float("nan")
    poisoned[0, 5, 2] = float("inf")
    torch.manual_seed(2)
    out = att(query, keys, poisoned, mask=mask)
    torch.manual_seed(2)
    clean = att(query, keys, values, mask=mask)
    assert torch.isfinite(out.context).all()
    assert torch.equal(out.weights, clean.weights) and torch.equal(out.context, clean.context)


def test_a_nan_value_on_an_attended_key_still_shows():
    att = attention("softmax", False)
    query, keys, mask = inputs()
    values = torch.randn(B, K, D)
    values[1, 0] = float("nan")  # a real key of example 1: every query of it reads it
    out = att(query, keys, values, mask=mask)
    assert torch.isnan(out.context[1]).all() and torch.isfinite(out.context[0]).all()


def test_nan_values_outside_a_local_window_contribute_nothing():
    att = attention("softmax", False, window="local_m")
    query, keys, _ = inputs()
    mask = torch.ones(B, K, dtype=torch.bool)
    values = torch.randn(B, K, D)
    poisoned = values.clone()
    poisoned[:, 5] = float("nan")  # with D=1, queries 0..2 look at keys 0..3 only
    out = att(query, keys, poisoned, mask=mask)
    assert torch.equal(out.context, att(query, keys, values, mask=mask).context)


@pytest.mark.parametrize(("normalizer", "train"), [s for s in SETTINGS if s[0] != "softmax"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_energies_raise_instead_of_a_clean_distribution(normalizer, train, bad):
    norm = make_normalizer(normalizer).train(train)
    energies = torch.randn(B, Q, K)
    energies[0, 1, 2] = bad
    with pytest.raises(ValueError, match="NaN or \\+inf"):
        norm(energies, torch.ones(B, K, dtype=torch.bool))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_softmax_propagates_nan_or_inf_energies(bad):
    energies = torch.randn(B, Q, K)
    energies[0, 1, 2] = bad
    weights = make_normalizer("softmax")(energies, torch.ones(B, K, dtype=torch.bool))
    assert torch.isnan(weights[0, 1]).all() and torch.isfinite(weights[1]).all()


def test_nan_energies_on_masked_keys_are_harmless():
    energies = torch.randn(B, Q, K)
    energies[0, :, 5] = float("nan")
    mask = torch.ones(B, K, dtype=torch.bool)
    mask[0, 5] = False
    for name, train in SETTINGS:
        weights = make_normalizer(name).train(train)(energies, mask)
        assert torch.isfinite(weights).all() and (weights[0, :, 5] == 0).all(), name


@pytest.mark.parametrize(("normalizer", "train"), SETTINGS)
def test_a_row_with_no_allowed_key_is_an_error_for_every_normaliser(normalizer, train):
    norm = make_normalizer(normalizer).train(train)
    mask = torch.ones(B, Q, K, dtype=torch.bool)
    mask[0, 1] = False
    with pytest.raises(ValueError, match="no allowed key"):
        norm(torch.randn(B, Q, K), mask)


def test_hard_attention_never_picks_a_masked_key():
    norm = HardNormalizer().eval()
    energies = torch.full((1, 1, 3), float("-inf"))
    with pytest.raises(ValueError, match="no allowed key"):
        norm(energies, torch.tensor([[True, True, False]]))


@pytest.mark.parametrize(("normalizer", "train"), SETTINGS)
@pytest.mark.parametrize("window", ["local_m", "local_p"])
def test_a_local_window_over_a_left_padded_source_is_caught(normalizer, train, window):
    att = attention(normalizer, train, window=window)
    query, keys, _ = inputs()
    mask = torch.ones(B, K, dtype=torch.bool)
    mask[0, :4] = False  # left padding: the real keys of example 0 are 4 and 5
    if window == "local_p":
        # local-p predicts a position inside [0, length): with the real keys at the end, the
        # window can miss them all; force that by centring every query at position 0.
        att.window.position_out.weight.data.fill_(-1e4)
    with pytest.raises(ValueError, match="no allowed key.*right-padded"):
        att(query, keys, mask=mask)
