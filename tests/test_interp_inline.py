"""Decoders that compute attention inline and return it among other things: explicit layouts,
inline softmax / SDPA capture with call sites, and validation refusing a hidden state."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import interp


class InlineDecoder(nn.Module):
    """One GRU step with additive attention written inline; returns ``(log_probs, hidden,
    weights)``, the layout of many tutorial attention decoders."""

    def __init__(self, vocab: int = 12, hidden: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.score = nn.Linear(2 * hidden, 1)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, token, hidden, memory):
        query = hidden[-1][:, None].expand_as(memory)
        scores = self.score(torch.cat([query, memory], -1)).squeeze(-1)
        weights = F.softmax(scores, dim=-1)  # [batch, keys]
        context = torch.bmm(weights[:, None], memory)
        output, hidden = self.gru(torch.cat([self.embed(token)[:, None], context], -1), hidden)
        probs = F.softmax(self.out(output[:, 0]), dim=-1)  # a second, non-attention softmax
        return probs.log(), hidden, weights


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.decoder = InlineDecoder()

    def forward(self, tokens, memory):
        hidden = memory.new_zeros(1, memory.size(0), memory.size(2))
        steps = []
        for t in range(tokens.size(1)):
            _, hidden, weights = self.decoder(tokens[:, t], hidden, memory)
            steps.append(weights)
        return torch.stack(steps, 1)


def data():
    torch.manual_seed(0)
    return torch.randint(0, 12, (3, 4)), torch.randn(3, 5, 8)


def test_three_tuple_is_never_guessed_and_a_layout_reads_it(clean_registry):
    torch.manual_seed(0)
    model, (tokens, memory) = Model().eval(), data()
    with pytest.raises(interp.ExtractionError) as err:
        with torch.no_grad(), interp.capture(model, "decoder"):
            model(tokens, memory)
    msg = str(err.value)
    assert "does not guess" in msg and "interp.OUTPUT_STATE_WEIGHTS" in msg
    interp.register_extractor(InlineDecoder, interp.OUTPUT_STATE_WEIGHTS)
    assert interp.is_attention(model.decoder)  # now found automatically too
    with torch.no_grad(), interp.capture(model) as cap:
        returned = model(tokens, memory)
    assert cap.names == ["decoder"] and torch.equal(cap["decoder"], returned)


def test_hidden_state_in_weights_position_is_refused(clean_registry):
    """The silent failure this replaces: (output, hidden, weights) read as (context, weights)."""
    torch.manual_seed(0)
    model, (tokens, memory) = Model().eval(), data()
    interp.register_extractor(InlineDecoder, interp.tuple_item(1, "(output, hidden)"))
    with pytest.raises(interp.InvalidWeightsError) as err:
        with torch.no_grad(), interp.capture(model, "decoder") as cap:
            model(tokens, memory)
    assert "negative values" in str(err.value) and "'decoder' (InlineDecoder)" in str(err.value)
    assert cap.records == []


def test_inline_softmax_recorded_per_call_site():
    torch.manual_seed(0)
    model, (tokens, memory) = Model().eval(), data()
    with torch.no_grad(), interp.capture(model, "decoder", inline="softmax") as cap:
        returned = model(tokens, memory)
    sites = cap.sites("decoder")
    assert len(sites) == 2 and all(s.startswith("test_interp_inline.py:") for s in sites)
    assert sites[0].endswith("(forward)")
    with pytest.raises(ValueError, match="2 call sites"):
        cap["decoder"]
    attention = cap.calls("decoder", site=sites[0])
    assert len(attention) == 4
    assert torch.equal(torch.stack([c[:, 0] for c in attention], 1), returned)
    assert [r.site for r in cap.records[:2]] == sites  # the site is in each record
    assert interp.hooks_attached(model) == 0


class SDPABlock(nn.Module):
    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.heads = heads

    def forward(self, x):
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in self.qkv(x).chunk(3, -1))
        return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).flatten(2)


def test_inline_sdpa_weights_recomputed_and_output_unchanged():
    torch.manual_seed(0)
    block, x = SDPABlock().eval(), torch.randn(2, 5, 8)
    with torch.no_grad():
        before = block(x)
        with interp.capture(block, "", inline="sdpa") as cap:
            during = block(x)
        q, k, _ = (t.unflatten(-1, (2, -1)).transpose(1, 2) for t in block.qkv(x).chunk(3, -1))
        scores = (q @ k.transpose(-2, -1)) / 2.0  # sqrt(head dim 4)
        expected = scores.masked_fill(torch.ones(5, 5, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
    assert torch.equal(during, before)
    assert float((cap[""] - expected).abs().max()) <= 1e-6
    with pytest.raises(ValueError, match="inline= takes"):
        interp.capture(block, "", inline="tanh")


def probe_batches():
    """Batches for ``python -m interp modules --data`` (the CLI test below)."""
    return [{"inputs": data()}]


def test_cli_modules_shows_extractor_and_probe_validation(clean_registry, capsys, monkeypatch):
    from interp.__main__ import main

    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    interp.register_extractor(InlineDecoder, interp.tuple_item(1, "(output, hidden)"))
    assert main(["modules", "--model", "test_interp_inline:Model",
                 "--data", "test_interp_inline:probe_batches"]) == 0
    lines = {line.split("\t")[0].strip("* "): line for line in capsys.readouterr().out.splitlines()}
    assert lines["decoder"].startswith("* decoder\tInlineDecoder\t(output, hidden)\tFAILS:")
    assert "negative values" in lines["decoder"]
    assert lines["decoder.score"].split("\t")[2] == "not attention (building block)"
    interp.register_extractor(InlineDecoder, interp.OUTPUT_STATE_WEIGHTS)
    assert main(["modules", "--model", "test_interp_inline:Model",
                 "--data", "test_interp_inline:probe_batches"]) == 0
    out = capsys.readouterr().out
    assert "* decoder\tInlineDecoder\t(output, state, weights)\tok: 4 call(s), [3, 1, 5] valid" in out
