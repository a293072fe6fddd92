"""interp.attribution: shapes, padding, completeness, agreement with Captum and exact values."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerIntegratedGradients

from interp.attribution import METHODS, Attribution, attribute, attribute_seq2seq, find_embedding

from interp_toy_models import AttnClassifier, BagOfEmbeddings, NoEmbedding, TinySeq2Seq

PAD = 0


@pytest.fixture(scope="module")
def clf() -> AttnClassifier:
    torch.manual_seed(0)
    return AttnClassifier(vocab=20, classes=3).eval()


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, 20, (3, 6), generator=g)
    x[1, 4:] = PAD
    x[2, 1:] = PAD  # length 1
    return x


FAST = {"lime": {"n_samples": 40}, "kernel_shap": {"n_samples": 40}, "integrated_gradients": {"n_steps": 16}}


@pytest.mark.parametrize("method", METHODS)
def test_classifier_shapes_and_padding(clf, ids, method):
    att = attribute(clf, ids, method, pad_id=PAD, **FAST.get(method, {}))
    assert isinstance(att, Attribution) and att.method == method
    assert att.scores.shape == ids.shape and att.mask.shape == ids.shape
    assert torch.equal(att.mask, ids != PAD)
    assert (att.scores[ids == PAD] == 0).all()
    assert torch.isfinite(att.scores).all()
    assert att.scores[0].abs().sum() > 0
    assert att.target.tolist() == clf(ids).argmax(-1).tolist()
    if method in ("integrated_gradients", "deeplift", "gradient_shap"):
        assert att.deltas is not None and att.deltas.shape == (3,)
        assert "max_abs_delta" in att.params
    else:
        assert att.deltas is None
    if method == "saliency":
        assert (att.scores >= 0).all()  # L2 norm of the gradient


def test_integrated_gradients_complete_and_deltas_shrink(clf, ids):
    coarse = attribute(clf, ids, "ig", pad_id=PAD, n_steps=2, integration="riemann_trapezoid")
    fine = attribute(clf, ids, "ig", pad_id=PAD, n_steps=200)
    assert fine.deltas.abs().max() < 1e-4
    assert fine.deltas.abs().max() < coarse.deltas.abs().max()
    # completeness computed independently: F(x) - F(baseline), through the model's own maths
    emb = clf.embedding(ids)
    base = torch.where((ids != PAD)[..., None], clf.embedding(torch.full_like(ids, PAD)), emb)
    with torch.no_grad():
        fx = clf.forward_from_embeddings(emb, ids != PAD)[0]
        fb = clf.forward_from_embeddings(base, ids != PAD)[0]
    t = fine.target
    diff = fx.gather(1, t[:, None]) - fb.gather(1, t[:, None])
    torch.testing.assert_close(fine.scores.sum(1), diff.squeeze(1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(fine.deltas, fine.scores.sum(1) - diff.squeeze(1), atol=1e-5, rtol=1e-4)


def test_integrated_gradients_equals_layer_integrated_gradients(clf):
    x = torch.randint(2, 20, (2, 5), generator=torch.Generator().manual_seed(3))  # no padding
    ours = attribute(clf, x, "integrated_gradients", baseline_id=1, target=[0, 2], n_steps=32)
    lig = LayerIntegratedGradients(clf, clf.embedding)
    ref = lig.attribute(x, baselines=torch.ones_like(x), target=torch.tensor([0, 2]), n_steps=32).sum(-1)
    torch.testing.assert_close(ours.scores, ref, atol=1e-5, rtol=1e-4)


def test_internal_batch_size_does_not_change_results(clf, ids):
    whole = attribute(clf, ids, "ig", pad_id=PAD, n_steps=8)
    chunked = attribute(clf, ids, "ig", pad_id=PAD, n_steps=8, batch_size=7)
    torch.testing.assert_close(whole.scores, chunked.scores, atol=1e-5, rtol=1e-4)
    loo = attribute(clf, ids, "leave_one_out", pad_id=PAD, batch_size=4)
    torch.testing.assert_close(loo.scores, attribute(clf, ids, "leave_one_out", pad_id=PAD).scores)


def test_saliency_and_input_x_gradient_match_autograd(clf, ids):
    emb = clf.embedding(ids).detach().requires_grad_(True)
    logits = clf.forward_from_embeddings(emb, ids != PAD)[0]
    t = logits.argmax(-1)
    (grad,) = torch.autograd.grad(logits.gather(1, t[:, None]).sum(), emb)
    mask = ids != PAD
    sal = attribute(clf, ids, "saliency", pad_id=PAD)
    torch.testing.assert_close(sal.scores, grad.norm(dim=-1) * mask)
    ixg = attribute(clf, ids, "input_x_gradient", pad_id=PAD)
    torch.testing.assert_close(ixg.scores, (grad * emb).sum(-1).detach() * mask)
    ixg_norm = attribute(clf, ids, "input_x_gradient", pad_id=PAD, reduce="norm")
    torch.testing.assert_close(ixg_norm.scores, (grad * emb).norm(dim=-1).detach() * mask)


def test_leave_one_out_is_the_output_difference(clf, ids):
    att = attribute(clf, ids, "leave_one_out", baseline_id=1, pad_id=PAD, output="probs")
    p = clf(ids).softmax(-1)
    t = p.argmax(-1)
    for b, i in [(0, 0), (0, 5), (1, 3), (2, 0)]:
        x = ids.clone()
        x[b, i] = 1
        expected = p[b, t[b]] - clf(x).softmax(-1)[b, t[b]]
        assert att.scores[b, i].item() == pytest.approx(expected.item(), abs=1e-6)


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "occlusion", "kernel_shap"])
def test_exact_on_an_additive_model(method):
    torch.manual_seed(4)
    model = BagOfEmbeddings().eval()
    x = torch.tensor([[3, 5, 7, 2], [4, 4, 0, 0]])
    extra = {"n_samples": 60} if method == "kernel_shap" else {}
    att = attribute(model, x, method, pad_id=PAD, baseline_id=1, target=[2, 0], **extra)
    expected = model.contributions(x, baseline_id=1, target=torch.tensor([2, 0]))
    torch.testing.assert_close(att.scores, expected, atol=1e-4, rtol=1e-3)


def test_gradient_shap_and_lime_are_seeded(clf, ids):
    a = attribute(clf, ids, "gradient_shap", pad_id=PAD, stdevs=0.1, seed=5)
    b = attribute(clf, ids, "gradient_shap", pad_id=PAD, stdevs=0.1, seed=5)
    torch.testing.assert_close(a.scores, b.scores)
    lime1 = attribute(clf, ids[:1], "lime", pad_id=PAD, n_samples=30, seed=2)
    lime2 = attribute(clf, ids[:1], "lime", pad_id=PAD, n_samples=30, seed=2)
    torch.testing.assert_close(lime1.scores, lime2.scores)


def test_forward_kwargs_travel_with_the_rows(clf, ids):
    lengths = (ids != PAD).sum(1)

    def fn(x: torch.Tensor, lengths: torch.Tensor, scale: float) -> torch.Tensor:
        mask = torch.arange(x.shape[1])[None] < lengths[:, None]
        return scale * clf.forward_from_embeddings(clf.embedding(x), mask)[0]

    att = attribute(clf, ids, "ig", lengths=lengths, forward_fn=fn, forward_kwargs={"lengths": lengths, "scale": 2.0},
                    baseline_id=PAD, n_steps=20, batch_size=9)
    ref = attribute(clf, ids, "ig", pad_id=PAD, n_steps=20)
    torch.testing.assert_close(att.scores, 2 * ref.scores, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- seq2seq


@pytest.fixture(scope="module")
def s2s() -> TinySeq2Seq:
    torch.manual_seed(0)
    return TinySeq2Seq().eval()


@pytest.fixture(scope="module")
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    src = torch.randint(1, 15, (2, 5), generator=g)
    src[1, 3:] = PAD
    tgt = torch.randint(1, 12, (2, 4), generator=g)
    tgt[1, 2:] = PAD
    return src, tgt


@pytest.mark.parametrize("method", ["integrated_gradients", "saliency", "deeplift", "occlusion", "lime"])
def test_seq2seq_shapes_like_cross_attention(s2s, pair, method):
    src, tgt = pair
    att = attribute_seq2seq(s2s, src, tgt, method, embedding="src_embedding", pad_id=PAD, tgt_pad_id=PAD,
                            **FAST.get(method, {}))
    _, cross = s2s.forward_with_attention(src, tgt)
    assert att.scores.shape == cross.shape == (2, 4, 5)
    assert (att.target[1, 2:] == -1).all() and (att.scores[1, 2:] == 0).all()
    assert (att.scores[1, :, 3:] == 0).all()
    assert att.mask[0].all() and not att.mask[1, 2:].any()
    assert att.scores[0].abs().sum(-1).gt(0).all()  # every real step has importances


def test_seq2seq_step_equals_a_classifier_on_that_step(s2s, pair):
    src, tgt = pair
    gold = torch.randint(1, 12, tgt.shape, generator=torch.Generator().manual_seed(9))
    att = attribute_seq2seq(s2s, src, tgt, "ig", target=gold, embedding="src_embedding", pad_id=PAD,
                            tgt_pad_id=PAD, n_steps=24)
    assert att.deltas.shape == (2, 4) and att.params["targets"] == "given"
    for t in range(2):
        step = attribute(s2s, src, "ig", target=gold[:, t], embedding="src_embedding", pad_id=PAD, n_steps=24,
                         forward_fn=lambda x, tgt, t=t: s2s(x, tgt)[:, t], forward_kwargs={"tgt": tgt})
        torch.testing.assert_close(att.scores[:, t], step.scores, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- bad input


def test_target_out_of_range(clf, ids):
    with pytest.raises(ValueError, match=r"index 3 .*out of range.*3 outputs.*0\.\.2"):
        attribute(clf, ids, "saliency", target=3, pad_id=PAD)


def test_seq2seq_target_token_out_of_range(s2s, pair):
    src, tgt = pair
    with pytest.raises(ValueError, match="out of range"):
        attribute_seq2seq(s2s, src, tgt, "saliency", target=torch.full(tgt.shape, 50), embedding="src_embedding")


def test_embedding_not_found_says_how_to_name_it():
    with pytest.raises(ValueError, match=r"no nn\.Embedding.*embedding='<name>'.*lookup"):
        attribute(NoEmbedding(), torch.tensor([[1, 2]]), "ig")
    with pytest.raises(ValueError, match="no module named 'emb'"):
        find_embedding(AttnClassifier(), "emb")


def test_ambiguous_embedding_lists_candidates(s2s, pair):
    with pytest.raises(ValueError, match=r"several nn\.Embedding.*src_embedding.*tgt_embedding"):
        attribute_seq2seq(s2s, *pair, "ig")


def test_module_given_directly_and_non_embedding_layer():
    model = NoEmbedding()
    name, module = find_embedding(model, model.lookup)
    assert name == "lookup" and module is model.lookup
    with pytest.raises(ValueError, match="not part of"):
        find_embedding(model, torch.nn.Embedding(3, 2))


def test_other_bad_inputs(clf, ids):
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(clf, ids, "grad_cam")
    with pytest.raises(ValueError, match="baseline_id="):
        attribute(clf, ids, "occlusion")
    with pytest.raises(ValueError, match="lengths has 2 entries for a batch of 3"):
        attribute(clf, ids, "saliency", lengths=[3, 2])
    with pytest.raises(TypeError, match="forward_fn="):
        attribute(clf, ids, "saliency", forward_fn=lambda x: clf.forward_with_attention(x))
    with pytest.raises(ValueError, match="target has 2 entries"):
        attribute(clf, ids, "saliency", target=[0, 1])


# ---------------------------------------------------------------- store


def test_attributions_are_stored_beside_attention(tmp_path, clf, ids, s2s, pair):
    from interp.attribution_store import save_attribution
    from interp.store import Store

    att = attribute(clf, ids, "ig", pad_id=PAD, n_steps=8)
    with Store(tmp_path / "a.sqlite") as store:
        assert save_attribution(store, att, run="r", examples=["a", "b", "c"], model=clf) == 3
        assert save_attribution(store, att, run="r", examples=["a", "b", "c"], model=clf) == 0  # no duplicates
        rec = store.one(run="r", example="b", kind="integrated_gradients", params={"n_steps": 8})
        assert rec.shape == (1, 4) and rec.module == "embedding" and rec.fingerprint
        assert rec.params["delta"] == pytest.approx(abs(float(att.deltas[1])))
        assert rec.array()[0].tolist() == pytest.approx(att.scores[1, :4].tolist())
        s2 = attribute_seq2seq(s2s, *pair, "saliency", embedding="src_embedding", pad_id=PAD, tgt_pad_id=PAD)
        save_attribution(store, s2, run="r", model="tiny")
        assert store.one(run="r", model="tiny", example="1").shape == (2, 3)  # [tgt, src] real tokens
    with pytest.raises(ValueError, match="2 example ids for a batch of 3"):
        save_attribution(tmp_path / "a.sqlite", att, run="r", examples=["a", "b"])
