"""``nn.Transformer`` stacks: weights equal a recomputation from ``in_proj_weight``, outputs
bit-identical with capture (fast paths and padded rows included), one-step weights stacked."""

from __future__ import annotations

import warnings

import torch
from torch import nn

import interp


def manual_weights(mha: nn.MultiheadAttention, query, keys, key_padding=None, attn_mask=None):
    """softmax(q k^T / sqrt(d) + masks) per head, from the module's packed projection."""
    d = mha.embed_dim // mha.num_heads
    wq, wk, _ = mha.in_proj_weight.chunk(3)
    bq, bk, _ = mha.in_proj_bias.chunk(3)
    q = (query @ wq.T + bq).unflatten(-1, (mha.num_heads, d)).transpose(1, 2)
    k = (keys @ wk.T + bk).unflatten(-1, (mha.num_heads, d)).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / d**0.5
    if attn_mask is not None:
        scores = scores + attn_mask
    if key_padding is not None:
        scores = scores.masked_fill(key_padding[:, None, None], float("-inf"))
    return scores.softmax(-1)


def test_nn_transformer_encoder_decoder_weights_equal_recomputation_and_outputs_identical():
    torch.manual_seed(0)
    model = nn.Transformer(16, 4, 2, 2, 32, dropout=0.0, batch_first=True).eval()
    src, tgt = torch.randn(3, 6, 16), torch.randn(3, 4, 16)
    pad = torch.tensor([[0] * 6, [0] * 4 + [1] * 2, [0] * 5 + [1]], dtype=torch.bool)
    causal = nn.Transformer.generate_square_subsequent_mask(4)
    kw = dict(src_key_padding_mask=pad, memory_key_padding_mask=pad, tgt_mask=causal)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = model(src, tgt, **kw)
        with interp.capture(model) as cap:
            during = model(src, tgt, **kw)
        after = model(src, tgt, **kw)
        # recompute every layer's inputs and weights from the parameters
        expected, x = {}, src
        for i, layer in enumerate(model.encoder.layers):
            expected[f"encoder.layers.{i}.self_attn"] = manual_weights(layer.self_attn, x, x, pad)
            x = layer(x, src_key_padding_mask=pad)
        memory, y = model.encoder.norm(x), tgt
        for i, layer in enumerate(model.decoder.layers):
            expected[f"decoder.layers.{i}.self_attn"] = manual_weights(layer.self_attn, y, y, None, causal)
            h = layer.norm1(y + layer._sa_block(y, causal, None))
            expected[f"decoder.layers.{i}.multihead_attn"] = manual_weights(
                layer.multihead_attn, h, memory, pad)
            y = layer(y, memory, tgt_mask=causal, memory_key_padding_mask=pad)
    assert sorted(cap.names) == sorted(expected)
    real = ~pad  # rows of padded source queries are not compared: the fast path never forms them
    for name, w in expected.items():
        rows = real if name.startswith("encoder") else torch.ones(3, 4, dtype=torch.bool)
        got = cap[name].transpose(1, 2)[rows]
        assert float((got - w.transpose(1, 2)[rows]).abs().max()) <= 1e-6, name
    assert torch.equal(during, before) and torch.equal(after, before)
    assert interp.hooks_attached(model) == 0 and "forward" not in model.encoder.layers[0].__dict__


def test_encoder_mean_pool_unchanged_by_capture():
    """The issue's symptom: an unmasked mean over all positions moved while captured."""
    torch.manual_seed(3)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2).eval()
    x = torch.randn(4, 9, 16)
    pad = torch.arange(9)[None] >= torch.tensor([9, 5, 3, 7])[:, None]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pooled = enc(x, src_key_padding_mask=pad).mean(1)
        with interp.capture(enc):
            captured = enc(x, src_key_padding_mask=pad).mean(1)
    assert torch.equal(captured, pooled)


def test_mha_with_gradients_keeps_outputs_and_grads_identical():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    x = torch.randn(2, 5, 8, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    grad = x.grad.clone()
    x.grad = None
    with interp.capture(layer) as cap:
        out2 = layer(x)
        out2.sum().backward()
    assert torch.equal(out2, out) and torch.equal(x.grad, grad)
    assert cap["self_attn"].shape == (2, 2, 5, 5) and not cap["self_attn"].requires_grad


class GlobalAttention(nn.Module):
    """Luong "general" attention over memory for one decoder state a call, OpenNMT style:
    returns ``(attn_h [batch, dim], align [batch, keys])`` when the query is ``[batch, dim]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_in = nn.Linear(dim, dim, bias=False)
        self.linear_out = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, source, memory, lengths):
        scores = torch.einsum("bd,bkd->bk", self.linear_in(source), memory)
        mask = torch.arange(memory.size(1))[None] >= lengths[:, None]
        align = scores.masked_fill(mask, float("-inf")).softmax(-1)
        context = torch.einsum("bk,bkd->bd", align, memory)
        return torch.tanh(self.linear_out(torch.cat([context, source], -1))), align


def test_one_step_rank2_weights_are_stacked_as_decoding_steps():
    torch.manual_seed(0)
    attn = GlobalAttention(8)
    model = nn.ModuleDict({"attn": attn})
    memory, lengths = torch.randn(3, 5, 8), torch.tensor([5, 3, 4])
    states = torch.randn(4, 3, 8)
    with torch.no_grad(), interp.capture(model, "attn") as cap:
        aligns = [attn(s, memory, lengths)[1] for s in states]
    w = cap["attn"]
    assert w.shape == (3, 4, 5)  # [batch, steps, keys]
    assert torch.equal(w, torch.stack(aligns, 1))
    assert torch.equal(w[1, :, 3:], torch.zeros(4, 2))
