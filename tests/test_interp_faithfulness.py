"""interp.faithfulness: a model where one token decides the output gives the expected extremes."""

from __future__ import annotations

import math

import pytest
import torch

from interp.attribution import attribute
from interp.faithfulness import (
    FRACTIONS,
    adversarial_attention,
    aopc,
    erasure,
    leave_one_out,
    permutation_test,
    uniform_attention,
    uniform_baseline,
)

from interp_toy_models import IgnoresAttention, OneTokenDecides

PAD, KEY, MASK = 0, 5, 9


@pytest.fixture(scope="module")
def model() -> OneTokenDecides:
    return OneTokenDecides(key=KEY, pad_id=PAD)


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.tensor([
        [1, 2, 3, KEY, 4, 6, 7, 8, 2, 3],
        [KEY, 1, 2, PAD, PAD, PAD, PAD, PAD, PAD, PAD],
        [KEY, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD, PAD],  # length 1
    ])


def test_erasure_extremes(model, ids):
    good = (ids == KEY).float()  # the key token ranked first
    bad = -(ids == KEY).float() + (ids == PAD).float() * 100  # key last; padding must be ignored
    df = erasure(model, ids, {"good": good, "bad": bad}, baseline_id=MASK, pad_id=PAD)
    assert len(df) == 2 * 3 * len(FRACTIONS)
    p_full = torch.softmax(model(ids), -1).max(-1).values
    g = df[df.method == "good"]
    # removing the key flips the output: comprehensiveness = p(x) - p(class | no key) ~ p(x)
    assert (g.comprehensiveness > 0.99).all()
    assert g.sufficiency.abs().max() < 1e-6  # keeping only the key keeps the output
    b = df[(df.method == "bad") & (df.example == 0)]
    assert b.comprehensiveness.abs().max() < 1e-6  # top-50% of 10 = 5 tokens, never the key
    assert (b.sufficiency > 0.99).all()
    assert df.groupby("example").p_full.first().tolist() == pytest.approx(p_full.tolist())
    a = aopc(df).set_index(["method", "example"])
    assert a.loc[("good", 0), "comprehensiveness_aopc"] > 0.99
    assert a.loc[("bad", 0), "sufficiency_aopc"] > 0.99


def test_erasure_k_per_fraction_and_length_one(model, ids):
    df = erasure(model, ids, (ids == KEY).float(), baseline_id=MASK, pad_id=PAD, fractions=(0.01, 0.2, 0.5, 1.0))
    ks = df.pivot(index="example", columns="fraction", values="k")
    assert ks.loc[0].tolist() == [1, 2, 5, 10]  # ceil(f * 10), at least 1
    assert ks.loc[1].tolist() == [1, 1, 2, 3]
    assert ks.loc[2].tolist() == [1, 1, 1, 1]
    # length 1: removing the only token removes the key; keeping it keeps everything
    one = df[df.example == 2]
    assert (one.comprehensiveness > 0.99).all() and (one.sufficiency.abs() < 1e-6).all()
    assert df[df.fraction == 1.0].sufficiency.abs().max() < 1e-6  # all kept = the input


def test_erasure_ties_are_broken_by_position(model):
    x = torch.tensor([[1, 2, KEY, 3]])
    flat = torch.zeros(1, 4)  # all tied: the first positions go first, the key is third
    df = erasure(model, x, flat, baseline_id=MASK, fractions=(0.5, 0.75))
    assert df.comprehensiveness.tolist()[0] == pytest.approx(0.0, abs=1e-6)
    assert df.comprehensiveness.tolist()[1] > 0.99


def test_erasure_never_touches_padding(ids):
    seen = []

    class Spy(OneTokenDecides):
        def forward(self, x):
            seen.append(x.clone())
            return super().forward(x)

    erasure(Spy(key=KEY), ids, torch.rand(ids.shape), baseline_id=MASK, pad_id=PAD)
    variants = torch.cat(seen[1:])  # the first call is the full input
    origin = ids.repeat_interleave(2 * len(FRACTIONS), dim=0)  # removed/kept per fraction
    assert variants.shape == origin.shape
    pad = origin == PAD
    assert (variants[pad] == PAD).all()
    real = variants[~pad]
    assert ((real == origin[~pad]) | (real == MASK)).all()  # ids replaced in place, no shifting


def test_erasure_accepts_attribution_and_checks_shapes(model, ids):
    att = attribute(model, ids, "occlusion", baseline_id=MASK, pad_id=PAD)
    df = erasure(model, ids, {"occlusion": att}, baseline_id=MASK, pad_id=PAD)
    assert (df[df.example == 0].comprehensiveness > 0.99).all()
    with pytest.raises(ValueError, match="one score per token"):
        erasure(model, ids, torch.rand(3, 7), baseline_id=MASK, pad_id=PAD)
    with pytest.raises(ValueError, match="out of range"):
        erasure(model, ids, torch.rand(ids.shape), baseline_id=MASK, pad_id=PAD, target=2)


def test_leave_one_out_finds_the_key(model, ids):
    loo = leave_one_out(model, ids, baseline_id=MASK, pad_id=PAD)
    assert loo.shape == ids.shape
    assert (loo.argmax(1) == (ids == KEY).float().argmax(1)).all()
    assert loo[ids == KEY].min() > 0.99
    assert loo[(ids != KEY)].abs().max() < 1e-6  # masking with a zero-value token changes nothing
    assert (loo[ids == PAD] == 0).all()
    tvd = leave_one_out(model, ids, baseline_id=MASK, pad_id=PAD, measure="tvd")
    assert (tvd >= 0).all() and tvd[ids == KEY].min() > 0.99


def test_permutation_changes_output_only_when_attention_matters(model, ids):
    df = permutation_test(model.forward_with_attention, ids[:2], pad_id=PAD, n_permutations=50)
    assert df.loc[0, "median_tvd"] > 0.9  # the key's weight goes elsewhere 9 times in 10
    assert df.loc[0, "max_attention"] == pytest.approx(math.exp(4) / (math.exp(4) + 9), rel=1e-5)
    ignore = IgnoresAttention()
    x = torch.randint(1, 10, (3, 6), generator=torch.Generator().manual_seed(0))
    x[2, 3:] = PAD
    df2 = permutation_test(ignore.forward_with_attention, x, pad_id=PAD, n_permutations=20)
    assert (df2.median_tvd.abs() < 1e-6).all() and (df2.flip_rate == 0).all()


def test_permutations_shuffle_real_tokens_only(ids):
    model = OneTokenDecides(key=KEY)
    seen = []

    def spy(x, attention=None):
        logits, att = model.forward_with_attention(x, attention)
        if attention is not None:
            seen.append(attention.clone())
        return logits, att

    _, att0 = model.forward_with_attention(ids)
    permutation_test(spy, ids, pad_id=PAD, n_permutations=7, seed=3)
    perm = torch.cat(seen).reshape(7, *ids.shape)
    assert (perm[:, ids == PAD] == 0).all()
    torch.testing.assert_close(perm.sort(-1).values, att0.expand_as(perm).sort(-1).values)
    assert not torch.equal(perm[:, 0], att0[0].expand(7, -1))  # something moved
    assert (perm[:, 2, 0] == 1).all()  # length 1: nothing to permute


def test_adversarial_attention_extremes(model, ids):
    eps = 0.01
    res = adversarial_attention(model.forward_with_attention, ids[:2], pad_id=PAD, epsilon=eps, steps=150)
    assert (res.table.tvd <= eps).all() and res.table.feasible.all()
    assert res.attention.shape == (2, 10)
    torch.testing.assert_close(res.attention.sum(1), torch.ones(2))
    assert (res.attention[1, 3:] == 0).all()
    # the key must keep most of its weight, so the adversary cannot go far
    assert (res.table.js_divergence < 0.15).all()
    ignore = IgnoresAttention()
    x = torch.randint(1, 10, (2, 8), generator=torch.Generator().manual_seed(0))
    res2 = adversarial_attention(ignore.forward_with_attention, x, pad_id=PAD, epsilon=eps, steps=150)
    _, a0 = ignore.forward_with_attention(x)
    # JSD(one-hot at j, a0) is largest for the least-attended token: the global optimum
    q = a0.min(1).values
    best = 0.5 * torch.log(2 / (1 + q)) + 0.5 * (q * torch.log(2 * q / (q + 1)) + (1 - q) * math.log(2))
    assert (torch.tensor(res2.table.js_divergence.tolist()) > 0.95 * best).all()
    assert (res2.table.tvd < 1e-6).all()


def test_uniform_baseline(model, ids):
    df = uniform_baseline(model.forward_with_attention, ids, pad_id=PAD, labels=[1, 1, 1])
    assert not df.loc[0, "agree"] and df.loc[0, "tvd"] > 0.9  # uniform: key weight 1/10 < 1/2
    assert df.loc[2, "agree"] and df.loc[2, "tvd"] < 1e-6  # length 1: uniform = learned
    assert df.correct_learned.all() and not df.loc[0, "correct_uniform"]
    u = uniform_attention(ids != PAD)
    assert u[1].tolist()[:4] == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0])
    ignore = IgnoresAttention()
    assert (uniform_baseline(ignore.forward_with_attention, ids, pad_id=PAD).tvd < 1e-6).all()


def test_protocol_errors(model, ids):
    with pytest.raises(TypeError, match=r"\(logits, attention\)"):
        permutation_test(lambda x, attention=None: model(x), ids, pad_id=PAD)
    with pytest.raises(ValueError, match="epsilon"):
        adversarial_attention(model.forward_with_attention, ids, epsilon=0)
