"""interp.capture: selection, recording, stacking, cleanup, nn.MultiheadAttention, bad input."""

from __future__ import annotations

import gc
import re
import warnings
import weakref

import pytest
import torch
from test_interp_models import Classifier, make_seq2seq, toy_batch
from torch import nn

import interp
from interp import extractors
from interp.capture import (
    Capture,
    ExtractionError,
    ModuleSelectionError,
    select_modules,
    stack_calls,
)


def run(model, batch):
    with torch.no_grad():
        return model(*batch["inputs"])


# --------------------------------------------------------------------------- selection


def test_select_by_glob_type_predicate_regex_and_list():
    model = make_seq2seq()
    assert [n for n, _ in select_modules(model, "attention")] == ["attention"]
    assert [n for n, _ in select_modules(model, "att*n")] == ["attention"]
    assert [n for n, _ in select_modules(model, nn.LSTM)] == ["encoder"]
    assert [n for n, _ in select_modules(model, lambda n, m: n.endswith(".v"))] == ["attention.v"]
    assert [n for n, _ in select_modules(model, re.compile(r"attention\.w[qk]"))] == [
        "attention.wq", "attention.wk"]
    assert [n for n, _ in select_modules(model, ["encoder", nn.LSTMCell])] == ["encoder", "decoder"]


def test_auto_selection_keeps_innermost_attention_like_modules():
    assert [n for n, _ in select_modules(make_seq2seq())] == ["attention"]
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)
    assert [n for n, _ in select_modules(enc)] == ["layers.0.self_attn", "layers.1.self_attn"]


def test_selection_matching_nothing_names_the_closest_modules():
    with pytest.raises(ModuleSelectionError) as err:
        select_modules(make_seq2seq(), "atention")
    msg = str(err.value)
    assert "'atention' matches no module of Seq2Seq" in msg
    assert "closest: attention" in msg
    assert "encoder" in msg  # lists existing names
    with pytest.raises(ModuleSelectionError, match="types present: .*LSTM"):
        select_modules(make_seq2seq(), nn.GRU)
    with pytest.raises(ModuleSelectionError, match="no attention module"):
        select_modules(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(TypeError, match="nn.Module"):
        select_modules("not a model")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- recording


def test_decoder_step_loop_stacks_along_queries_and_matches_direct_weights():
    model, batch = make_seq2seq(), toy_batch(batch=4, src_len=6, tgt_len=5)
    with interp.capture(model, "attention") as cap:
        out = run(model, batch)
    assert len(cap.calls("attention")) == 5
    assert [r.call for r in cap.records] == [0, 1, 2, 3, 4]
    w = cap["attention"]
    assert w.shape == (4, 5, 6)
    src, mask, tgt = batch["inputs"]
    assert torch.equal(w.masked_select(~mask[:, None].expand_as(w)), torch.zeros(int((~mask).sum()) * 5))
    torch.testing.assert_close(w.sum(-1), torch.ones(4, 5))
    assert not w.requires_grad and w.device.type == "cpu"
    # capture does not change what the model computes
    torch.testing.assert_close(out, run(model, batch), rtol=0, atol=0)


def test_tuple_output_extractor_and_gradients_are_detached():
    model = Classifier()
    x = torch.randint(1, 20, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.bool)
    with interp.capture(model, "pool") as cap:
        model(x, mask).sum().backward()  # a forward with grad: weights still come back detached
    assert cap["pool"].shape == (3, 1, 7) and not cap["pool"].requires_grad
    assert model.head.weight.grad is not None


def test_dtype_cast_and_function_form():
    model, batch = make_seq2seq(), toy_batch()
    out, weights = interp.capture_attention(model, batch["inputs"], "attention", dtype=torch.float16)
    assert weights["attention"].dtype == torch.float16
    assert out.shape == (4, 5, 20)
    with interp.capture(model, "attention") as cap:
        run(model, batch)
    torch.testing.assert_close(weights["attention"].float(), cap["attention"], atol=1e-3, rtol=1e-3)
    # dict inputs become keyword arguments
    _, kw = interp.capture_attention(
        model, dict(zip(["src", "src_mask", "tgt"], batch["inputs"], strict=True)), "attention")
    torch.testing.assert_close(kw["attention"], cap["attention"])


def test_calls_from_different_inputs_are_not_stacked_into_one_tensor():
    model = make_seq2seq()
    with interp.capture(model, "attention") as cap:
        run(model, toy_batch(src_len=6))
        run(model, toy_batch(src_len=4))
    with pytest.raises(ValueError, match="call 5 has 4 keys after a call with 6"):
        cap["attention"]
    assert len(cap.calls("attention")) == 10  # still readable one by one
    cap.clear()


def test_a_module_changing_layout_between_calls_is_refused():
    class Flip(nn.Module):
        heads = False

        def forward(self, x):
            w = torch.softmax(x, -1)
            return x, (w[:, None].expand(-1, 2, -1, -1) if self.heads else w)

    model = nn.Sequential(Flip())
    with pytest.raises(interp.InvalidWeightsError, match="inconsistent across calls"):
        with interp.capture(model, "0"):
            model(torch.randn(2, 3, 4))
            model[0].heads = True
            model(torch.randn(2, 3, 4))


def test_stack_pads_growing_keys_with_zeros_and_rejects_mismatched_batches():
    calls = [torch.full((2, 1, k), 1.0 / k) for k in (1, 2, 3)]
    stacked = stack_calls(calls, "self")
    assert stacked.shape == (2, 3, 3)
    assert torch.equal(stacked[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="leading shapes differ"):
        stack_calls([torch.ones(2, 1, 3), torch.ones(3, 1, 3)], "m")
    with pytest.raises(KeyError, match="never called"):
        stack_calls([], "m")


def test_nan_weights_are_refused_with_module_and_call():
    class NaNAttention(nn.Module):
        def forward(self, x):
            w = torch.softmax(x, -1)
            w[0, 0, 0] = float("nan")
            return x, w

    model = nn.Sequential(NaNAttention())
    with pytest.raises(interp.InvalidWeightsError, match=r"'0' \(NaNAttention\).*not finite.*1 NaN"):
        with interp.capture(model, "0"):
            model(torch.randn(2, 3, 4))
    with pytest.warns(RuntimeWarning, match="not finite") as warned:
        with interp.capture(model, "0", strict=False) as cap:
            model(torch.randn(2, 3, 4))
            model(torch.randn(2, 3, 4))
    assert len([w for w in warned if "not finite" in str(w.message)]) == 1  # once per module
    assert "0" not in cap and cap.records == []  # never recorded as attention


def test_selecting_a_building_block_names_the_attention_modules_meant():
    model = make_seq2seq()
    with pytest.raises(ModuleSelectionError) as err:
        interp.capture(model, "attention.*")
    msg = str(err.value)
    assert "'attention.wq' is a Linear" in msg and "not attention modules" in msg
    assert "did you mean attention (Additive)" in msg
    with pytest.raises(ModuleSelectionError, match="no module of a known attention class"):
        interp.capture(nn.Sequential(nn.Linear(4, 4)), "0")
    with pytest.warns(RuntimeWarning, match="skipping 'attention.v' is a Linear"):
        cap = interp.capture(model, ["attention", "attention.v"], strict=False)
    assert cap.names == ["attention"]


def test_module_without_extractor_says_how_to_register_one():
    class Mixer(nn.Module):
        def forward(self, x):
            return x * 2

    model = nn.Sequential(Mixer())
    with pytest.raises(ExtractionError) as err:
        with interp.capture(model, "0"):
            model(torch.randn(2, 4))
    msg = str(err.value)
    assert "'0' (Mixer)" in msg and "Tensor of shape (2, 4)" in msg
    assert "@interp.register_extractor(Mixer)" in msg and "inline=True" in msg
    assert interp.hooks_attached(model) == 0
    with pytest.warns(RuntimeWarning, match="register_extractor"):
        with interp.capture(model, "0", strict=False) as cap:
            model(torch.randn(2, 4))
            model(torch.randn(2, 4))  # warned once, not twice
    assert "0" not in cap


def test_wrong_rank_and_unnormalised_weights_are_reported():
    class Odd(nn.Module):
        def forward(self, x):
            return x, torch.ones(2, 3, 4)

    class Weird(nn.Module):
        def forward(self, x):
            return type("O", (), {"weights": torch.ones(5)})()

    with pytest.raises(interp.InvalidWeightsError, match=r"wrong rank \(shape \(5,\)"):
        with interp.capture(nn.Sequential(Weird()), "0") as cap:
            cap.model(torch.ones(1))
    with pytest.raises(interp.InvalidWeightsError) as err:
        with interp.capture(nn.Sequential(Odd()), "0") as cap:
            cap.model(torch.ones(1))
    assert "rows sum to more than 1" in str(err.value) and "row sums from 4 to 4" in str(err.value)
    assert "normalized=False" in str(err.value)
    with interp.capture(nn.Sequential(Odd()), "0", normalized=False) as cap:  # explicit switch
        cap.model(torch.ones(1))
    assert cap["0"].shape == (2, 3, 4)


# --------------------------------------------------------------------------- cleanup


def test_hooks_removed_when_forward_raises_and_nothing_leaks():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = make_seq2seq().attention

        def forward(self, q, k, m):
            self.attention(q, k, m)
            raise RuntimeError("boom")

    model = Boom()
    q, k, m = torch.randn(2, 1, 16), torch.randn(2, 3, 16), torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(RuntimeError, match="boom"):
        with interp.capture(model, "attention") as cap:
            model(q, k, m)
    assert interp.hooks_attached(model) == 0
    assert cap["attention"].shape == (2, 1, 3)  # what was recorded before the error is kept

    seq = make_seq2seq()
    batch = toy_batch()
    refs = []
    for _ in range(20):
        with interp.capture(seq) as c:
            run(seq, batch)
        refs.append(weakref.ref(c))
    del c
    gc.collect()
    assert all(r() is None for r in refs), "Capture objects (and their tensors) must be freed"
    assert interp.hooks_attached(seq) == 0


def test_nested_captures_each_record_and_clean_up():
    model, batch = make_seq2seq(), toy_batch()
    with interp.capture(model, "attention") as outer:
        run(model, batch)
        with interp.capture(model, ["attention"]) as inner:
            assert interp.hooks_attached(model) == 2
            run(model, batch)
        assert interp.hooks_attached(model) == 1
        run(model, batch)
    assert interp.hooks_attached(model) == 0
    assert len(outer.calls("attention")) == 15 and len(inner.calls("attention")) == 5
    torch.testing.assert_close(inner["attention"], torch.cat(outer.calls("attention")[5:10], 1))
    with pytest.raises(RuntimeError, match="already active"):
        with outer, outer:
            pass
    assert interp.hooks_attached(model) == 0


def test_clear_bounds_memory_between_batches():
    model, batch = make_seq2seq(), toy_batch()
    with Capture(model, "attention") as cap:
        for _ in range(3):
            run(model, batch)
            assert len(cap.calls("attention")) == 5
            cap.clear()
    assert cap.records == []


# --------------------------------------------------------------------------- nn.MultiheadAttention


def _pad_mask():
    return torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1]], dtype=torch.bool)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_transformer_encoder_fast_path_kept_bit_identical_and_weights_per_head(training, with_mask):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).train(training)
    x, pad = torch.randn(3, 5, 16), (_pad_mask() if with_mask else None)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's prototype nested-tensor notice
        ref = enc(x, src_key_padding_mask=pad)
        with interp.capture(enc, nn.MultiheadAttention) as cap:
            out = enc(x, src_key_padding_mask=pad)
    if pad is not None and not training:  # the nested-tensor path ran: padded rows are exact 0
        assert torch.equal(ref[pad], torch.zeros_like(ref[pad]))
    assert torch.equal(out, ref)  # bit-identical, padded rows included
    assert cap.names == ["layers.0.self_attn", "layers.1.self_attn"]
    for name in cap.names:
        w = cap[name]
        assert w.shape == (3, 4, 5, 5)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 5))
        if pad is not None:
            assert torch.equal(w[1, :, :, 3:], torch.zeros(4, 5, 2))
    assert enc.use_nested_tensor is True and interp.hooks_attached(enc) == 0


def test_encoder_weights_equal_a_manual_computation():
    torch.manual_seed(1)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True).eval()
    x = torch.randn(2, 4, 8)
    with torch.no_grad():
        with interp.capture(layer, "self_attn") as cap:
            layer(x)
        _, expected = layer.self_attn(x, x, x, need_weights=True, average_attn_weights=False)
    torch.testing.assert_close(cap["self_attn"], expected)


@pytest.mark.parametrize("training", [False, True])
def test_transformer_decoder_self_and_cross_attention(training):
    torch.manual_seed(0)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2)
    dec.train(training)
    tgt, memory = torch.randn(3, 4, 16), torch.randn(3, 5, 16)
    causal = nn.Transformer.generate_square_subsequent_mask(4)
    with torch.no_grad():
        ref = dec(tgt, memory, tgt_mask=causal, memory_key_padding_mask=_pad_mask())
        with interp.capture(dec, nn.MultiheadAttention) as cap:
            out = dec(tgt, memory, tgt_mask=causal, memory_key_padding_mask=_pad_mask())
    assert torch.equal(out, ref)
    self_w, cross_w = cap["layers.0.self_attn"], cap["layers.0.multihead_attn"]
    assert self_w.shape == (3, 4, 4, 4) and cross_w.shape == (3, 4, 4, 5)
    assert torch.equal(torch.triu(self_w, 1), torch.zeros_like(self_w))  # causal: no future keys
    assert torch.equal(cross_w[1, ..., 3:], torch.zeros(4, 4, 2))


def test_mha_caller_gets_the_output_it_asked_for():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        averaged = mha(x, x, x)[1]
        with interp.capture(mha, nn.MultiheadAttention) as cap:
            default = mha(x, x, x)  # need_weights=True, averaged by default
            none = mha(x, x, x, need_weights=False)
            positional = mha(x, x, x, None, True, None, True)
            unbatched = mha(x[0], x[0], x[0])
    torch.testing.assert_close(default[1], averaged)
    assert none[1] is None
    torch.testing.assert_close(positional[1], averaged)
    assert unbatched[1].shape == (3, 3)
    calls = cap.calls("")
    assert [tuple(c.shape) for c in calls] == [(2, 2, 3, 3)] * 3 + [(1, 2, 3, 3)]
    torch.testing.assert_close(calls[0].mean(1), averaged)


def test_overlapping_captures_on_mha_share_one_forcing_hook():
    enc = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    a = interp.capture(enc, "self_attn").__enter__()
    b = interp.capture(enc, "self_attn").__enter__()
    with torch.no_grad():
        enc(x)
    a.__exit__(None, None, None)  # not LIFO
    with torch.no_grad():
        enc(x)
    b.__exit__(None, None, None)
    assert len(a.calls("self_attn")) == 1 and len(b.calls("self_attn")) == 2
    assert b["self_attn"].shape == (2, 2, 6, 3)
    assert interp.hooks_attached(enc) == 0
    assert len(extractors._patches) == 0  # shared patches released with the last capture
