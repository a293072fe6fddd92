"""interp.compare: each metric against hand-computed values and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from interp.compare import (
    alignment_error_rate,
    attention_to_alignment,
    average_precision,
    compare,
    jensen_shannon,
    kendall_tau,
    rationale_metrics,
    spearman,
    summarize,
    topk_overlap,
)

# ---------------------------------------------------------------- rank correlation


def test_kendall_tau_hand_computed():
    # pairs (0,1) and (0,2) concordant, (1,2) discordant: (2 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_kendall_tau_b_with_ties():
    # a = [1, 1, 2]: pair (0,1) tied in a only; C = 2, D = 0; tau_b = 2 / sqrt((3-1) * 3)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / math.sqrt(6))


@pytest.mark.parametrize("a,b", [([1, 1, 1], [1, 2, 3]), ([1, 2, 3], [5, 5, 5]), ([4], [2]), ([], [])])
def test_rank_correlations_nan_when_undefined(a, b):
    assert math.isnan(kendall_tau(a, b))
    assert math.isnan(spearman(a, b))


def test_spearman_hand_computed():
    # rank differences 0, 1, 1: 1 - 6 * 2 / (3 * (9 - 1))
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # ties get average ranks: [1, 1, 2] -> ranks [1.5, 1.5, 3], Pearson with [1, 2, 3]
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(np.corrcoef([1.5, 1.5, 3], [1, 2, 3])[0, 1])


def test_different_lengths_is_a_clear_error():
    with pytest.raises(ValueError, match="different lengths"):
        kendall_tau([1, 2, 3], [1, 2])


# ---------------------------------------------------------------- top-k and JS


def test_topk_overlap_hand_computed_and_ties():
    assert topk_overlap([3, 2, 1, 0], [0, 2, 3, 1], k=2) == pytest.approx(0.5)  # {0,1} vs {2,1}
    assert topk_overlap([1, 1, 1], [1, 1, 1], k=1) == 1.0  # ties broken by position, same for both
    assert topk_overlap([1, 2], [2, 1], k=5) == 1.0  # k clipped to the length
    assert topk_overlap([4, 3, 2, 1], [1, 2, 3, 4], k=0.5) == 0.0  # fraction: ceil(0.5 * 4) = 2
    assert topk_overlap([7.0], [1.0], k=3) == 1.0  # length 1


def test_jensen_shannon_hand_computed():
    # p = [1, 0], q = [.5, .5], m = [.75, .25]: KL(p|m) = log2(4/3), KL(q|m) = .5 log2(2/3) + .5
    jsd = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5)
    assert jensen_shannon([1, 0], [0.5, 0.5]) == pytest.approx(math.sqrt(jsd))
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert jensen_shannon([0.2, 0.8], [1, 4]) == pytest.approx(0.0, abs=1e-7)  # scale-free
    rng = np.random.default_rng(0)
    p, q = rng.random(7), rng.random(7)
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2))


def test_jensen_shannon_uses_magnitudes_and_nan_for_zero():
    assert jensen_shannon([-1, 0], [1, 0]) == pytest.approx(0.0)
    assert math.isnan(jensen_shannon([0, 0], [1, 0]))


# ---------------------------------------------------------------- average precision


def test_average_precision_hand_computed():
    # ranking rel, -, rel, -: (1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(5 / 6)
    assert average_precision([3, 2, 1], [1, 1, 0]) == pytest.approx(1.0)


def test_average_precision_ties_share_a_threshold():
    # threshold >= 1: tp 1 of 2 predicted (R .5, P .5); >= 0: tp 2 of 3 (R 1, P 2/3)
    assert average_precision([1, 1, 0], [1, 0, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # the order of tied items must not matter
    assert average_precision([1, 1, 0], [0, 1, 1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_average_precision_without_positives_is_nan():
    assert math.isnan(average_precision([0.3, 0.1], [0, 0]))


# ---------------------------------------------------------------- tables


def test_compare_rows_and_padding_excluded():
    a = torch.tensor([[0.1, 0.5, 0.4, 0.0], [0.7, 0.3, 0.0, 0.0]])
    b = torch.tensor([[0.2, 0.3, 0.5, 99.0], [0.6, 0.4, -5.0, 7.0]])  # garbage in padding
    df = compare({"attention": a, "ig": b, "copy": a.clone()}, lengths=[3, 2], k=1)
    assert len(df) == 2 * 3  # examples x pairs
    row = df[(df.method_a == "attention") & (df.method_b == "ig") & (df.example == 0)].iloc[0]
    assert row.length == 3
    assert row.kendall_tau == pytest.approx(kendall_tau([0.1, 0.5, 0.4], [0.2, 0.3, 0.5]))
    assert row.topk_overlap == 0.0  # top-1: position 1 vs position 2
    assert row.js_distance == pytest.approx(jensen_shannon([0.1, 0.5, 0.4], [0.2, 0.3, 0.5]))
    same = df[(df.method_a == "attention") & (df.method_b == "copy")]
    assert (same.kendall_tau == 1.0).all() and (same.js_distance.abs() < 1e-6).all()


def test_compare_seq2seq_per_step_with_mask():
    scores = torch.rand(2, 3, 4)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False  # a padded target step
    mask[:, :, 3] = False  # a padded source position
    df = compare({"a": scores, "b": scores.flip(-1)}, mask=mask)
    assert list(df.columns[:4]) == ["example", "step", "method_a", "method_b"]
    assert len(df) == 5 and (df.length == 3).all()


def test_compare_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        compare({"a": torch.rand(2, 4), "b": torch.rand(2, 5)})
    with pytest.raises(ValueError, match="at least two"):
        compare({"a": torch.rand(2, 4)})
    with pytest.raises(ValueError, match="mask has shape"):
        compare({"a": torch.rand(2, 4), "b": torch.rand(2, 4)}, mask=torch.ones(2, 5))


def test_summarize_mean_std_ci_and_nan_count():
    df = pd.DataFrame({
        "method_a": ["x"] * 5, "method_b": ["y"] * 5,
        "kendall_tau": [0.1, 0.2, 0.3, 0.4, np.nan],
    })
    s = summarize(df, metrics=["kendall_tau"]).iloc[0]
    assert s.n == 4 and s.n_nan == 1
    assert s["mean"] == pytest.approx(0.25)
    assert s["std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1))
    assert 0.1 <= s.ci_low <= 0.25 <= s.ci_high <= 0.4
    again = summarize(df, metrics=["kendall_tau"]).iloc[0]
    assert (again.ci_low, again.ci_high) == (s.ci_low, s.ci_high)  # seeded


def test_summarize_constant_and_all_nan():
    df = pd.DataFrame({"method_a": ["x", "x"], "method_b": ["y", "y"], "m": [0.5, 0.5], "z": [np.nan, np.nan]})
    s = summarize(df).set_index("metric")
    assert s.loc["m", "ci_low"] == s.loc["m", "ci_high"] == 0.5
    assert s.loc["z", "n"] == 0 and s.loc["z", "n_nan"] == 2 and math.isnan(s.loc["z", "mean"])


# ---------------------------------------------------------------- ground truth


def test_aer_hand_computed():
    a = np.zeros((2, 3), bool)
    a[0, 0] = a[1, 1] = True
    s = np.zeros((2, 3), bool)
    s[0, 0] = True
    p = np.zeros((2, 3), bool)
    p[1, 2] = True  # P is made a superset of S
    # |A∩S| = 1, |A∩P| = 1 ((0,0) only), |A| = 2, |S| = 1: 1 - 2/3
    row = alignment_error_rate(a, s, p).iloc[0]
    assert row.aer == pytest.approx(1 / 3)
    assert alignment_error_rate(s, s).iloc[0].aer == 0.0


def test_aer_ignores_padding_and_soft_attention_conversion():
    att = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]])  # [1, tgt 2, src 3]
    gold = torch.tensor([[[True, False, False], [False, True, False]]])
    pred = attention_to_alignment(att, mask=torch.tensor([[True, True, False]]))
    assert pred[0, 1].tolist() == [False, True, False]  # argmax over real source tokens only
    assert alignment_error_rate(pred, gold, src_lengths=[2]).iloc[0].aer == 0.0
    assert alignment_error_rate(attention_to_alignment(att), gold).iloc[0].aer == pytest.approx(0.5)


def test_rationale_metrics_hand_computed():
    scores = torch.tensor([[0.1, 0.9, 0.8, 0.2, 5.0]])
    gold = torch.tensor([[False, True, False, True, True]])
    row = rationale_metrics(scores, gold, lengths=[4]).iloc[0]  # position 4 is padding
    assert row.k == 2 and row.precision == 0.5 and row.recall == 0.5
    assert row.auprc == pytest.approx(5 / 6)
    row3 = rationale_metrics(scores, gold, lengths=[4], k=3).iloc[0]
    # top-3 of the real tokens: positions 1, 2, 3; gold among them: 1 and 3
    assert row3.precision == pytest.approx(2 / 3) and row3.recall == 1.0


def test_rationale_metrics_no_gold_and_shape_errors():
    row = rationale_metrics(torch.tensor([[0.2, 0.1]]), torch.tensor([[False, False]])).iloc[0]
    assert math.isnan(row.auprc) and math.isnan(row.precision)
    with pytest.raises(ValueError, match="rationale has shape"):
        rationale_metrics(torch.rand(1, 3), torch.ones(1, 4, dtype=torch.bool))
