"""interp on Hugging Face families it did not write: captured weights equal the model's own
``output_attentions`` (eager), outputs bit-identical with and after capture, on eager and SDPA.

Models are built from tiny configs (nothing is downloaded).
"""

from __future__ import annotations

import pytest
import torch

import interp
from interp import extractors

T = pytest.importorskip("transformers")

IDS = torch.tensor([[5, 9, 13, 7, 22, 31, 8], [4, 17, 6, 29, 11, 3, 3]])
MASK = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
DEC = torch.tensor([[3, 8, 12, 40, 9], [3, 21, 5, 7, 18]])


def _configs():
    return {
        "bert": (T.BertModel, T.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                           num_attention_heads=2, intermediate_size=32)),
        "roberta": (T.RobertaModel, T.RobertaConfig(vocab_size=50, hidden_size=16,
                                                    num_hidden_layers=2, num_attention_heads=2,
                                                    intermediate_size=32, pad_token_id=1)),
        "distilbert": (T.DistilBertModel, T.DistilBertConfig(vocab_size=50, dim=16, n_layers=2,
                                                              n_heads=2, hidden_dim=32)),
        "gpt2": (T.GPT2Model, T.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2,
                                           n_positions=32, bos_token_id=0, eos_token_id=0)),
        "bart": (T.BartModel, T.BartConfig(vocab_size=50, d_model=16, encoder_layers=2,
                                           decoder_layers=2, encoder_attention_heads=2,
                                           decoder_attention_heads=2, encoder_ffn_dim=32,
                                           decoder_ffn_dim=32, max_position_embeddings=32)),
        "t5": (T.T5Model, T.T5Config(vocab_size=50, d_model=16, d_kv=8, d_ff=32, num_layers=2,
                                     num_decoder_layers=2, num_heads=2)),
    }


def build(family: str, implementation: str):
    cls, config = _configs()[family]
    config._attn_implementation = implementation
    torch.manual_seed(0)
    return cls(config).eval()


def inputs(family: str) -> dict:
    kw = {"input_ids": IDS, "attention_mask": MASK}
    if family in ("bart", "t5"):
        kw["decoder_input_ids"] = DEC
    return kw


def expected(family: str, out) -> dict[str, torch.Tensor]:
    """{module name: the model's own attentions} for every attention module of the family."""
    if family in ("bert", "roberta"):
        return {f"encoder.layer.{i}.attention.self": a for i, a in enumerate(out.attentions)}
    if family == "distilbert":
        return {f"transformer.layer.{i}.attention": a for i, a in enumerate(out.attentions)}
    if family == "gpt2":
        return {f"h.{i}.attn": a for i, a in enumerate(out.attentions)}
    if family == "bart":
        names = [("encoder.layers.{}.self_attn", out.encoder_attentions),
                 ("decoder.layers.{}.self_attn", out.decoder_attentions),
                 ("decoder.layers.{}.encoder_attn", out.cross_attentions)]
    else:
        names = [("encoder.block.{}.layer.0.SelfAttention", out.encoder_attentions),
                 ("decoder.block.{}.layer.0.SelfAttention", out.decoder_attentions),
                 ("decoder.block.{}.layer.1.EncDecAttention", out.cross_attentions)]
    return {pattern.format(i): a for pattern, atts in names for i, a in enumerate(atts)}


def main_output(out) -> torch.Tensor:
    return out.last_hidden_state


def compare(family: str, implementation: str) -> dict:
    """Capture with automatic selection; return the figures the tests and the table use."""
    model = build(family, implementation)
    reference = build(family, "eager")
    reference.load_state_dict(model.state_dict())
    kw = inputs(family)
    with torch.no_grad():
        own = expected(family, reference(**kw, output_attentions=True))
        before = main_output(model(**kw))
        with interp.capture(model) as cap:
            during = main_output(model(**kw))
        after = main_output(model(**kw))
    captured = cap.as_dict()
    return {
        "names": sorted(captured),
        "expected_names": sorted(own),
        "max_diff": max(float((captured[n] - own[n]).abs().max()) for n in own),
        "during_identical": torch.equal(during, before),
        "after_identical": torch.equal(after, before),
        "implementation_after": model.config._attn_implementation,
        "hooks_after": interp.hooks_attached(model),
    }


FAMILIES = ["bert", "roberta", "distilbert", "gpt2", "bart", "t5"]


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("family", FAMILIES)
def test_family_weights_equal_own_attentions_and_outputs_stay_bit_identical(family, implementation):
    r = compare(family, implementation)
    assert r["names"] == r["expected_names"]  # automatic selection finds exactly these
    assert r["max_diff"] <= 1e-6
    assert r["during_identical"] and r["after_identical"]
    assert r["implementation_after"] == implementation and r["hooks_after"] == 0


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_gpt2_generate_with_kv_cache_one_call_per_step(implementation):
    cfg = _configs()["gpt2"][1]
    cfg._attn_implementation = implementation
    torch.manual_seed(0)
    model = T.GPT2LMHeadModel(cfg).eval()
    reference = T.GPT2LMHeadModel(_configs()["gpt2"][1]).eval()
    reference.config._attn_implementation = "eager"
    reference.load_state_dict(model.state_dict())
    prompt = IDS[:, :4]
    gen = dict(max_new_tokens=3, do_sample=False, pad_token_id=0, attention_mask=torch.ones_like(prompt))
    with torch.no_grad():
        before = model.generate(prompt, **gen)
        own = reference.generate(prompt, **gen, output_attentions=True, return_dict_in_generate=True)
        with interp.capture(model) as cap:
            during = model.generate(prompt, **gen)
    assert torch.equal(during, before) and torch.equal(own.sequences, before)
    calls = cap.calls("transformer.h.1.attn")
    assert [tuple(c.shape) for c in calls] == [(2, 2, 4, 4), (2, 2, 1, 5), (2, 2, 1, 6)]
    for step, call in enumerate(calls):
        assert float((call - own.attentions[step][1]).abs().max()) <= 1e-6
    stacked = cap["transformer.h.1.attn"]  # prompt rows then one row per generated token
    assert stacked.shape == (2, 2, 6, 6)
    assert torch.equal(torch.triu(stacked, 1), torch.zeros_like(stacked))


def test_t5_attention_class_selection_reads_weights_not_position_bias():
    model = build("t5", "eager")
    kw = {k: v[:1] for k, v in inputs("t5").items()}  # batch 1: bias and weights share a shape
    with torch.no_grad():
        own = expected("t5", model(**kw, output_attentions=True))
        with interp.capture(model, T.models.t5.modeling_t5.T5Attention) as cap:
            model(**kw)
    w = cap["encoder.block.0.layer.0.SelfAttention"]
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
    assert float((w - own["encoder.block.0.layer.0.SelfAttention"]).abs().max()) <= 1e-6


def test_selecting_gpt2_submodules_by_name_says_which_attention_was_meant():
    model = build("gpt2", "eager")
    with pytest.raises(interp.ModuleSelectionError) as err:
        interp.capture(model, "h.*.attn*")
    msg = str(err.value)
    assert "'h.0.attn.c_attn' is a Conv1D" in msg and "'h.0.attn.attn_dropout' is a Dropout" in msg
    assert "did you mean h.0.attn (GPT2Attention)" in msg and "modules=GPT2Attention" in msg
    bart = build("bart", "eager")
    names = [n for n, _ in interp.select_modules(bart)]
    assert not any("layer_norm" in n for n in names)
    t5 = build("t5", "eager")
    assert not any("relative_attention_bias" in n for n, _ in interp.select_modules(t5))


@pytest.fixture
def clean_registry():
    before, by_name = dict(extractors._REGISTRY), dict(extractors._BY_NAME)
    yield
    extractors._REGISTRY.clear()
    extractors._REGISTRY.update(before)
    extractors._BY_NAME.clear()
    extractors._BY_NAME.update(by_name)


def test_registered_extractor_for_hf_class_keeps_the_eager_switch(clean_registry):
    gpt2_attention = T.models.gpt2.modeling_gpt2.GPT2Attention
    model = build("gpt2", "sdpa")
    reference = build("gpt2", "eager")
    with torch.no_grad():
        own = expected("gpt2", reference(**inputs("gpt2"), output_attentions=True))

    @interp.register_extractor(gpt2_attention)
    def second(module, output):
        return output[1]

    assert "eager-attention switch" in extractors.describe(model.h[0].attn)
    with torch.no_grad(), interp.capture(model, gpt2_attention) as cap:
        model(**inputs("gpt2"))
    assert float((cap["h.0.attn"] - own["h.0.attn"]).abs().max()) <= 1e-6
    assert model.config._attn_implementation == "sdpa"  # restored

    interp.register_extractor(gpt2_attention, second, setup=False)
    with pytest.raises(interp.ExtractionError) as err:
        with torch.no_grad(), interp.capture(model, gpt2_attention):
            model(**inputs("gpt2"))
    msg = str(err.value)
    assert "attn_implementation='sdpa'" in msg and "no setup" in msg and "setup=None" in msg
