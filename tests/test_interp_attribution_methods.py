"""interp.attribution_methods: the registry, defaults written once, third-party methods, renames."""

from __future__ import annotations

import importlib.metadata
from typing import Any, ClassVar

import pytest
import torch

import interp
from interp import attribution_methods as am
from interp.attribution import METHODS, attribute, attribute_seq2seq
from interp.faithfulness import erasure, leave_one_out

from interp_toy_models import AttnClassifier, TinySeq2Seq

PAD, MASK = 0, 1
FAST = {"lime": {"n_samples": 30}, "kernel_shap": {"n_samples": 30}, "integrated_gradients": {"n_steps": 8},
        "gradient_shap": {"n_samples": 2}}


@pytest.fixture(scope="module")
def clf() -> AttnClassifier:
    torch.manual_seed(0)
    return AttnClassifier(vocab=20, classes=3).eval()


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    x = torch.randint(2, 20, (3, 6), generator=torch.Generator().manual_seed(1))
    x[1, 4:] = PAD
    return x


class GradientTimesTwo(am.GradientMethod):
    """A third-party gradient method: twice input x gradient, with a setting of its own."""

    name = "twice_ixg"
    aliases = ("2ixg",)
    defaults: ClassVar[dict[str, Any]] = {"reduce": "sum", "factor": 2.0}

    def attribute_embeddings(self, inputs, options):
        embeds = inputs.embeds
        out = inputs.forward(embeds, *inputs.args)
        picked = out[torch.arange(out.shape[0]), inputs.target].sum()
        (grad,) = torch.autograd.grad(picked, embeds)
        return options["factor"] * grad * embeds, None


class FirstTokenOnly(am.PerturbationMethod):
    """A third-party perturbation method: the output drop when the first token is replaced."""

    name = "first_token_only"
    accepts_extra_settings = False

    def perturb(self, problem, baseline, batch_size, options):
        changed = problem.ids.clone()
        changed[:, 0] = baseline[:, 0]
        with torch.no_grad():
            drop = problem.output - problem.forward(changed, *problem.extras)
        scores = torch.zeros(problem.ids.shape)
        scores[:, 0] = drop[torch.arange(drop.shape[0]), problem.target]
        return scores


@pytest.fixture
def registered():
    am.register_method(GradientTimesTwo)
    am.register_method(FirstTokenOnly)
    yield
    am.unregister_method("twice_ixg")
    am.unregister_method("first_token_only")


@pytest.mark.parametrize("method", METHODS)
def test_recorded_params_are_the_settings_that_ran(clf, ids, method):
    """params hold every default of the method's class, overridden by what the call gave."""
    found = am.find_method(method)
    given = FAST.get(method, {})
    att = attribute(clf, ids, method, pad_id=PAD, **given)
    expected = {**found.defaults, **({"seed": 0} if found.stochastic else {}), **given}
    assert {k: att.params[k] for k in expected} == expected
    assert (att.deltas is not None) == found.has_deltas
    assert ("embedding" in att.params) == found.needs_embedding


def test_a_changed_default_changes_what_runs_and_what_is_recorded(clf, ids, monkeypatch):
    """Defaults are read from one place: change it there, and both the run and the record follow."""
    before = attribute(clf, ids, "ig", pad_id=PAD)
    monkeypatch.setattr(am.IntegratedGradientsMethod, "defaults",
                        {**am.IntegratedGradientsMethod.defaults, "n_steps": 3})
    after = attribute(clf, ids, "ig", pad_id=PAD)
    explicit = attribute(clf, ids, "ig", pad_id=PAD, n_steps=3)
    assert before.params["n_steps"] == 50 and after.params["n_steps"] == 3
    torch.testing.assert_close(after.scores, explicit.scores)
    assert not torch.allclose(after.scores, before.scores)


def test_third_party_methods_run_through_attribute(clf, ids, registered):
    assert {"twice_ixg", "first_token_only"} <= set(am.available_methods())
    twice = attribute(clf, ids, "2ixg", pad_id=PAD)  # the alias
    ixg = attribute(clf, ids, "input_x_gradient", pad_id=PAD)
    torch.testing.assert_close(twice.scores, 2 * ixg.scores)
    assert twice.method == "twice_ixg" and twice.params["factor"] == 2.0
    thrice = attribute(clf, ids, "twice_ixg", pad_id=PAD, factor=3.0)
    torch.testing.assert_close(thrice.scores, 3 * ixg.scores)

    first = attribute(clf, ids, "first_token_only", pad_id=PAD, baseline_id=MASK)
    loo = attribute(clf, ids, "leave_one_out", pad_id=PAD, baseline_id=MASK)
    torch.testing.assert_close(first.scores[:, 0], loo.scores[:, 0])
    assert (first.scores[:, 1:] == 0).all()
    with pytest.raises(TypeError, match="does not take"):
        attribute(clf, ids, "first_token_only", pad_id=PAD, window=2)


def test_registry_refuses_clashes_and_bad_methods(registered):
    with pytest.raises(ValueError, match="already registered"):
        am.register_method(GradientTimesTwo)

    class Clash(am.PerturbationMethod):
        name = "my_loo"
        aliases = ("loo",)

    with pytest.raises(ValueError, match="loo"):
        am.register_method(Clash)
    with pytest.raises(TypeError, match="AttributionMethod"):
        am.register_method(object)  # type: ignore[arg-type]

    class Nameless(am.AttributionMethod):
        pass

    with pytest.raises(ValueError, match="no name"):
        am.register_method(Nameless)
    with pytest.raises(am.UnknownMethodError, match="integrated_gradients"):
        am.find_method("integrated_gradient")


def test_a_method_that_breaks_its_deltas_promise_is_caught(clf, ids):
    class Liar(am.GradientMethod):
        name = "liar"
        has_deltas = True

        def attribute_embeddings(self, inputs, options):
            return inputs.embeds * 0, None

    am.register_method(Liar)
    try:
        with pytest.raises(RuntimeError, match="has_deltas"):
            attribute(clf, ids, "liar", pad_id=PAD)
    finally:
        am.unregister_method("liar")


def test_settings_must_be_recordable(clf, ids):
    with pytest.raises(TypeError, match="JSON"):
        attribute(clf, ids, "occlusion", pad_id=PAD, window=object())


def test_entry_point_plugins_are_loaded_on_a_miss(clf, ids, monkeypatch):
    ep = importlib.metadata.EntryPoint(
        name="first", value=f"{__name__}:FirstTokenOnly", group=am.ENTRY_POINT_GROUP
    )
    broken = importlib.metadata.EntryPoint(
        name="broken", value="no_such_module_here:Method", group=am.ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [ep, broken] if group == am.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(am, "_plugins_loaded", False)
    try:
        with pytest.warns(RuntimeWarning, match="broken"):
            att = attribute(clf, ids, "first_token_only", pad_id=PAD)
        assert att.method == "first_token_only"
    finally:
        am.unregister_method("first_token_only")


def test_one_leave_one_out(clf, ids):
    """interp.leave_one_out runs the registered method: the same numbers, by construction."""
    ours = leave_one_out(clf, ids, baseline_id=MASK, pad_id=PAD)
    theirs = attribute(clf, ids, "leave_one_out", pad_id=PAD, baseline_id=MASK, output="probs")
    assert torch.equal(ours, theirs.scores)
    # and both equal the definition, computed here token by token
    p = clf(ids).softmax(-1)
    t = p.argmax(-1)
    for b in range(ids.shape[0]):
        for i in range(int((ids[b] != PAD).sum())):
            x = ids[b : b + 1].clone()
            x[0, i] = MASK
            expected = p[b, t[b]] - clf(x).softmax(-1)[0, t[b]]
            torch.testing.assert_close(ours[b, i], expected, atol=1e-6, rtol=1e-5)
    tvd = leave_one_out(clf, ids, baseline_id=MASK, pad_id=PAD, measure="tvd")
    x = ids[:1].clone()
    x[0, 2] = MASK
    expected = 0.5 * (p[0] - clf(x).softmax(-1)[0]).abs().sum()
    torch.testing.assert_close(tvd[0, 2], expected, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="measure"):
        attribute(clf, ids, "loo", pad_id=PAD, measure="kl")


def test_old_argument_names_still_work_with_a_warning(clf, ids):
    with pytest.warns(DeprecationWarning, match="batch_size"):
        old = attribute(clf, ids, "ig", pad_id=PAD, n_steps=4, internal_batch_size=5)
    torch.testing.assert_close(old.scores, attribute(clf, ids, "ig", pad_id=PAD, n_steps=4, batch_size=5).scores)
    with pytest.warns(DeprecationWarning, match="baseline_id"):
        old_loo = leave_one_out(clf, ids, mask_id=MASK, pad_id=PAD)
    assert torch.equal(old_loo, leave_one_out(clf, ids, baseline_id=MASK, pad_id=PAD))
    scores = torch.rand(ids.shape, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DeprecationWarning, match="baseline_id"):
        old_er = erasure(clf, ids, scores, mask_id=MASK, pad_id=PAD)
    assert old_er.equals(erasure(clf, ids, scores, baseline_id=MASK, pad_id=PAD))
    with pytest.raises(TypeError, match="both"):
        leave_one_out(clf, ids, baseline_id=MASK, mask_id=MASK)
    with pytest.raises(TypeError, match="baseline_id"):
        leave_one_out(clf, ids, pad_id=PAD)

    torch.manual_seed(0)
    s2s = TinySeq2Seq().eval()
    src = torch.randint(1, 12, (2, 5), generator=torch.Generator().manual_seed(2))
    tgt = torch.randint(1, 12, (2, 4), generator=torch.Generator().manual_seed(3))
    gold = torch.randint(0, 12, (2, 4), generator=torch.Generator().manual_seed(4))
    with pytest.warns(DeprecationWarning, match="target"):
        old_s2s = attribute_seq2seq(s2s, src, tgt, "saliency", targets=gold, embedding="src_embedding")
    new_s2s = attribute_seq2seq(s2s, src, tgt, "saliency", target=gold, embedding="src_embedding")
    assert torch.equal(old_s2s.target, new_s2s.target) and torch.equal(old_s2s.scores, new_s2s.scores)


def test_public_names():
    assert interp.register_method is am.register_method
    assert interp.find_method("kernelshap") is am.find_method("kernel_shap")
    for name in ("register_method", "unregister_method", "available_methods", "AttributionMethod",
                 "GradientMethod", "PerturbationMethod"):
        assert name in dir(interp)


def test_lime_weighs_subsets_not_token_ids(clf, ids):
    """LIME's kernel is measured on the kept/removed vector (as the lime package does): renaming
    the vocabulary (same model, permuted ids) leaves the scores unchanged."""
    kept = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 1], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]])
    # cosine distance to all-ones x 100, then sqrt(exp(-d^2 / 25^2)); the fifth column is padding
    expected = torch.tensor([1.0, 0.50344, 3.3546e-4, 0.13534], dtype=torch.float64)
    torch.testing.assert_close(am.lime_text_kernel(kept, 4), expected, rtol=1e-4, atol=1e-7)

    perm = torch.cat([torch.tensor([0, 1]), torch.randperm(18, generator=torch.Generator().manual_seed(0)) + 2])
    renamed = AttnClassifier(vocab=20, classes=3).eval()
    renamed.load_state_dict(clf.state_dict())
    with torch.no_grad():
        renamed.embedding.weight[perm] = clf.embedding.weight
    torch.testing.assert_close(renamed(perm[ids]), clf(ids))
    before = attribute(clf, ids, "lime", pad_id=PAD, baseline_id=MASK, n_samples=40)
    after = attribute(renamed, perm[ids], "lime", pad_id=PAD, baseline_id=MASK, n_samples=40)
    torch.testing.assert_close(after.scores, before.scores)
