"""interp's public face: aggregate/rollout by hand, Hugging Face ergonomics, Capture as a mapping,
one error base, names visible to dir() and type checkers, bfloat16 everywhere."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import torch
from torch import nn

import interp
from interp.aggregation import aggregate, attention_rollout

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- aggregate / rollout

A1 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
A2 = torch.tensor([[0.5, 0.5], [0.0, 1.0]])


def test_rollout_by_hand():
    """Abnar & Zuidema: Ã = 0.5 A + 0.5 I per layer, R = Ã2 Ã1 (first layer first)."""
    layers = (A1[None, None], A2[None, None])  # Hugging Face's tuple of [batch, heads, q, k]
    # Ã1 = [[1, 0], [.25, .75]], Ã2 = [[.75, .25], [0, 1]]; R = Ã2 @ Ã1
    expected = torch.tensor([[0.8125, 0.1875], [0.25, 0.75]])
    torch.testing.assert_close(attention_rollout(layers)[0], expected)
    torch.testing.assert_close(aggregate(layers, layers="rollout")[0], expected)
    torch.testing.assert_close(aggregate(layers, layers="rollout", row=0)[0], expected[0])
    # without the residual term rollout is the plain product A2 @ A1
    torch.testing.assert_close(attention_rollout(layers, residual=False)[0], A2 @ A1)


def test_heads_layers_and_rows_by_hand():
    h0 = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    h1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    layer0 = torch.stack([h0, h1])[None]  # [1, 2 heads, 2, 2]
    layer1 = torch.stack([h1, h0])[None]
    both = {"layer.0": layer0, "layer.1": layer1}  # a mapping in layer order, like dict(capture)
    torch.testing.assert_close(aggregate(layer0, heads="mean")[0], (h0 + h1) / 2)
    torch.testing.assert_close(aggregate(layer0, heads="max")[0], torch.maximum(h0, h1))
    torch.testing.assert_close(aggregate(layer0, heads=1)[0], h1)
    torch.testing.assert_close(aggregate(both, heads=0, layers=1)[0], h1)
    torch.testing.assert_close(aggregate(both, heads=0, layers=None)[:, 0], torch.stack([h0, h1]))
    torch.testing.assert_close(aggregate(both, heads=[0, 1], layers="mean", row=1)[0], torch.tensor([0.3, 0.7]))
    torch.testing.assert_close(aggregate(both, heads=0, layers=[0, 1], row="mean")[0],
                               ((h0 + h1) / 2).mean(0))
    with pytest.raises(ValueError, match="heads"):
        aggregate(layer0, heads=2)
    with pytest.raises(ValueError, match="layers"):
        aggregate(both, layers=5)
    with pytest.raises(ValueError, match="same shape"):
        aggregate([layer0, layer0[:, :, :1]])
    with pytest.raises(ValueError, match="queries = keys"):
        attention_rollout(torch.rand(1, 1, 2, 3))


# --------------------------------------------------------------------------- Hugging Face


@pytest.fixture(scope="module")
def bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=32, num_labels=3, attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config).eval()


def test_hugging_face_model_needs_no_glue(bert):
    """ModelOutput unwrapped, the input embedding found, attention_mask passed to the model."""
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]])
    mask = (ids != 0).long()
    att = interp.attribute(bert, ids, "saliency", attention_mask=mask)
    assert att.params["embedding"] == "bert.embeddings.word_embeddings"
    with torch.no_grad():
        assert att.target.tolist() == bert(ids, attention_mask=mask).logits.argmax(-1).tolist()
    # padding does not matter once the mask reaches the model: other pad ids, same scores
    other = ids.clone()
    other[1, 3:] = torch.tensor([30, 31])
    again = interp.attribute(bert, other, "saliency", attention_mask=mask)
    torch.testing.assert_close(again.scores, att.scores)
    # ... and it did matter before the mask was forwarded (this is what the forwarding fixes)
    unmasked = interp.attribute(bert, other, "saliency", attention_mask=mask, forward_fn=lambda x: bert(x))
    assert not torch.allclose(unmasked.scores[1], att.scores[1])
    # the counterfactual functions forward the mask too
    loo = interp.leave_one_out(bert, ids, baseline_id=1, attention_mask=mask)
    loo_other = interp.leave_one_out(bert, other, baseline_id=1, attention_mask=mask)
    torch.testing.assert_close(loo, loo_other)
    er = interp.erasure(bert, other, att.scores, baseline_id=1, attention_mask=mask)
    assert er.equals(interp.erasure(bert, ids, att.scores, baseline_id=1, attention_mask=mask))


def test_capture_and_aggregate_a_hugging_face_model(bert):
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    with interp.capture(bert) as cap:
        out = bert(ids, output_attentions=True)
    assert list(cap) == ["bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.attention.self"]
    for got, theirs in zip(cap.values(), out.attentions):
        torch.testing.assert_close(got, theirs)
    cls_rollout = interp.aggregate(cap, layers="rollout", row=0)
    torch.testing.assert_close(cls_rollout, interp.aggregate(out.attentions, layers="rollout", row=0))
    torch.testing.assert_close(cls_rollout.sum(-1), torch.ones(1))


def test_an_output_without_logits_says_what_to_do():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(10, 4)

        def forward(self, ids):
            return self.embedding(ids).sum(1), None

    with pytest.raises(TypeError, match="forward_fn"):
        interp.attribute(Pair(), torch.tensor([[1, 2]]), "saliency")


# --------------------------------------------------------------------------- Capture as a mapping


class TwoAttentions(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.MultiheadAttention(4, 1, batch_first=True)
        self.second = nn.MultiheadAttention(4, 1, batch_first=True)
        self.unused = nn.MultiheadAttention(4, 1, batch_first=True)

    def forward(self, x):
        return self.second(*[self.first(x, x, x)[0]] * 3)[0]


def test_capture_is_a_read_only_mapping():
    model = TwoAttentions().eval()
    with interp.capture(model) as cap:
        model(torch.rand(2, 3, 4))
    assert list(cap) == ["first", "second"] and len(cap) == 2 and "unused" not in cap
    assert dict(cap).keys() == cap.as_dict().keys() and set(cap.keys()) == {"first", "second"}
    for name, weights in cap.items():
        assert torch.equal(weights, cap[name]) and weights.shape == (2, 1, 3, 3)  # per head
    assert [c.shape for c in cap.calls("first")] == [(2, 1, 3, 3)]
    with pytest.raises(KeyError, match="not called"):
        cap["unused"]
    with pytest.raises(KeyError, match="not captured"):
        cap["nothing"]
    assert cap.get("unused") is None
    with pytest.raises(TypeError):
        cap["first"] = torch.zeros(1)  # type: ignore[index]
    assert cap == cap and cap != dict(cap) and hash(cap) == hash(cap)


# --------------------------------------------------------------------------- errors and names


def test_every_interp_error_shares_one_base():
    from interp.__main__ import CliError

    errors = [interp.ExtractionError, interp.InvalidWeightsError, interp.ModuleSelectionError,
              interp.StoreError, interp.CorruptRecordError, interp.ShapeMismatchError,
              interp.UnknownMethodError, CliError]
    for error in errors:
        assert issubclass(error, interp.InterpError), error
    # the built-in bases stay, so older `except ValueError` keeps working
    assert issubclass(interp.UnknownMethodError, ValueError)
    assert issubclass(interp.ModuleSelectionError, LookupError)
    with pytest.raises(interp.InterpError):
        interp.attribute(nn.Embedding(3, 2), torch.tensor([[1]]), "no_such_method")


def test_every_exception_class_in_interp_derives_from_the_base():
    """Scan the source: no interp module defines an exception outside the hierarchy."""
    for path in (ROOT / "interp").glob("*.py"):
        module = importlib.import_module(f"interp.{path.stem}") if path.stem != "__init__" else interp
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                cls = getattr(module, node.name, None)
                if isinstance(cls, type) and issubclass(cls, BaseException) and not issubclass(cls, Warning):
                    assert issubclass(cls, interp.InterpError), f"{path.name}: {node.name}"


def test_lazy_names_are_listed_and_resolve():
    lazy = {name for name, (_, attr) in interp._LAZY.items() if attr is not None}
    assert lazy <= set(interp.__all__)
    assert set(interp.__all__) <= set(dir(interp))
    for name in interp.__all__:
        assert getattr(interp, name) is not None, name
    assert {"plot", "widgets"} <= set(dir(interp))
    with pytest.raises(AttributeError, match="no attribute"):
        interp.not_a_name  # noqa: B018
    # the TYPE_CHECKING block imports every lazy name, so type checkers see them
    tree = ast.parse((ROOT / "interp" / "__init__.py").read_text())
    checked = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                checked |= {a.asname or a.name for a in getattr(stmt, "names", [])}
    assert set(interp._LAZY) <= checked, set(interp._LAZY) - checked


def test_bfloat16_scores_everywhere():
    a = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
    b = torch.rand(3, 6, generator=torch.Generator().manual_seed(1))
    half = interp.compare_scores({"a": a.bfloat16(), "b": b.bfloat16()})
    full = interp.compare_scores({"a": a.bfloat16().float(), "b": b.bfloat16().float()})
    assert half.equals(full)
