"""interp.extractors: the registry, entry-point plugins, Hugging Face models."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

import interp
from interp import extractors


class Gate(nn.Module):
    """A module whose weights hide in an attribute no built-in extractor knows."""

    def forward(self, x):
        self.alignment = torch.softmax(x @ x.transpose(1, 2), -1)
        return x


class SubGate(Gate):
    pass


def test_register_decorator_and_mro_lookup(clean_registry):
    model = nn.Sequential(SubGate())
    assert interp.find_extractor(model[0], generic=False) is None

    @interp.register_extractor(Gate)
    def gate_weights(module, output):
        return module.alignment

    assert interp.find_extractor(model[0]).extract is gate_weights  # inherited by SubGate
    x = torch.randn(2, 3, 4)
    with interp.capture(model, "0") as cap:
        model(x)
    torch.testing.assert_close(cap["0"], torch.softmax(x @ x.transpose(1, 2), -1))
    interp.unregister_extractor(Gate)
    assert interp.find_extractor(model[0], generic=False) is None
    with pytest.raises(TypeError, match="nn.Module subclass"):
        interp.register_extractor(int)  # type: ignore[arg-type]


def test_registered_setup_runs_and_is_undone(clean_registry):
    events = []

    def setup(module, root):
        events.append(("setup", root is model))
        return lambda: events.append(("undo",))

    @interp.register_extractor(Gate, setup=setup)
    def gate_weights(module, output):
        return module.alignment

    model = nn.Sequential(Gate())
    with interp.capture(model, "0"):
        model(torch.randn(1, 2, 2))
    assert events == [("setup", True), ("undo",)]


def _write_plugin(tmp_path, name, body, entry):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[interp.extractors]\n{name} = {entry}\n")


def test_entry_point_plugins_register_extractors(tmp_path, monkeypatch, clean_registry):
    _write_plugin(tmp_path, "interp_demo_plugin", """
        import torch
        from torch import nn
        import interp

        class Mixer(nn.Module):
            def forward(self, x):
                return x, {"attn": torch.full((x.shape[0], 1, 3), 1 / 3)}

        def register():
            @interp.register_extractor(Mixer)
            def mixer(module, output):
                return output[1]["attn"]
        """, "interp_demo_plugin:register")
    _write_plugin(tmp_path, "interp_broken_plugin", "raise ImportError('missing dependency xyz')\n",
                  "interp_broken_plugin")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.warns(RuntimeWarning, match="'interp_broken_plugin'.*missing dependency xyz"):
        loaded = interp.load_plugins(force=True)
    assert "interp_demo_plugin" in loaded and "interp_broken_plugin" not in loaded
    mixer_cls = sys.modules["interp_demo_plugin"].Mixer
    model = nn.Sequential(mixer_cls())
    with interp.capture(model, "0") as cap:
        model(torch.randn(2, 5))
    assert cap["0"].shape == (2, 1, 3)
    monkeypatch.delitem(sys.modules, "interp_demo_plugin")
    monkeypatch.delitem(sys.modules, "interp_broken_plugin", raising=False)


def test_fallback_reads_weights_attribute_or_pair_and_never_guesses_longer_tuples():
    read = extractors._fallback_extract
    w = torch.rand(2, 3, 4)
    assert read(None, (torch.zeros(1), w)) is w
    assert read(None, [torch.zeros(1), w]) is w
    assert read(None, type("O", (), {"weights": w})()) is w
    assert read(None, (torch.zeros(1), w, "extra")) is None  # (out, state, weights)? not guessed
    assert read(None, torch.zeros(2, 3, 4)) is None
    assert read(None, (w,)) is None


class TestHuggingFace:
    transformers = pytest.importorskip("transformers")

    def tiny_bert(self):
        cfg = self.transformers.BertConfig(
            vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=37, max_position_embeddings=32,
        )
        torch.manual_seed(0)
        return self.transformers.BertModel(cfg).eval()

    def test_bert_weights_per_layer_per_head_with_padding_masked(self):
        model = self.tiny_bert()
        before = model.config._attn_implementation
        ids = torch.randint(1, 50, (2, 7))
        mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
        with torch.no_grad():
            ref = model(input_ids=ids, attention_mask=mask).last_hidden_state
            with interp.capture(model) as cap:  # automatic selection finds the inner modules
                out = model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert cap.names == ["encoder.layer.0.attention.self", "encoder.layer.1.attention.self"]
        w = cap["encoder.layer.0.attention.self"]
        assert w.shape == (2, 4, 7, 7)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 7))
        assert torch.all(w[1, :, :, 4:] == 0)
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        assert model.config._attn_implementation == before  # restored
        assert interp.hooks_attached(model) == 0

    def test_bert_weights_equal_output_attentions(self):
        model = self.tiny_bert()
        model.config._attn_implementation = "eager"
        ids = torch.randint(1, 50, (3, 5))
        with torch.no_grad():
            expected = model(input_ids=ids, output_attentions=True).attentions
            with interp.capture(model, "encoder.layer.*.attention.self") as cap:
                model(input_ids=ids)
        torch.testing.assert_close(cap["encoder.layer.1.attention.self"], expected[1])


def test_user_extractor_for_mha_without_weights_says_why(clean_registry):
    @interp.register_extractor(nn.MultiheadAttention)
    def second(module, output):
        return output[1]

    layer = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True).eval()
    with pytest.raises(interp.ExtractionError, match="need_weights=False .*unregister"):
        with torch.no_grad(), interp.capture(layer, "self_attn"):
            layer(torch.randn(2, 3, 8), torch.randn(2, 4, 8))
    interp.unregister_extractor(nn.MultiheadAttention)  # the built-in comes back
    assert interp.find_extractor(layer.self_attn).name.startswith("nn.MultiheadAttention per head")
    with torch.no_grad(), interp.capture(layer, "self_attn") as cap:
        layer(torch.randn(2, 3, 8), torch.randn(2, 4, 8))
    assert cap["self_attn"].shape == (2, 2, 3, 3)
