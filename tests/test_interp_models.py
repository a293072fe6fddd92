"""Small models the interp tests capture from (our own: interp must work on models it never saw).

Also importable as ``test_interp_models:make_seq2seq`` / ``:batches`` by the CLI and subprocess
tests. The few tests here check the fixtures themselves, so a broken fixture fails loudly.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

VOCAB = 20


class AttnOut(NamedTuple):
    context: Tensor
    weights: Tensor


class Additive(nn.Module):
    """Bahdanau-style additive attention returning a named tuple; masked keys get exactly 0."""

    def __init__(self, query_size: int, key_size: int, units: int = 16) -> None:
        super().__init__()
        self.wq = nn.Linear(query_size, units, bias=False)
        self.wk = nn.Linear(key_size, units)
        self.v = nn.Linear(units, 1, bias=False)

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor) -> AttnOut:
        scores = self.v(torch.tanh(self.wq(query)[:, :, None] + self.wk(keys)[:, None])).squeeze(-1)
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
        weights = torch.softmax(scores, dim=-1).masked_fill(~mask[:, None], 0.0)
        return AttnOut(weights @ keys, weights)


class Seq2Seq(nn.Module):
    """LSTM encoder, LSTMCell decoder stepping one query at a time (attention called per step)."""

    def __init__(self, vocab: int = VOCAB, emb: int = 8, hidden: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, emb)
        self.encoder = nn.LSTM(emb, hidden, batch_first=True)
        self.decoder = nn.LSTMCell(emb + hidden, hidden)
        self.attention = Additive(hidden, hidden)
        self.out = nn.Linear(2 * hidden, vocab)

    def forward(self, src: Tensor, src_mask: Tensor, tgt: Tensor) -> Tensor:
        keys, _ = self.encoder(self.embed(src))
        batch, hidden = src.size(0), keys.size(-1)
        h = c = ctx = keys.new_zeros(batch, hidden)
        logits = []
        for t in range(tgt.size(1)):
            h, c = self.decoder(torch.cat([self.embed(tgt[:, t]), ctx], -1), (h, c))
            att = self.attention(h[:, None], keys, src_mask)
            ctx = att.context[:, 0]
            logits.append(self.out(torch.cat([h, ctx], -1)))
        return torch.stack(logits, 1)


class Pool(nn.Module):
    """Attention pooling returning a plain tuple ``(context, weights)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.score = nn.Linear(size, 1)

    def forward(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.score(states).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, -1)[:, None]  # [B, 1, K]
        return (weights @ states)[:, 0], weights


class Classifier(nn.Module):
    def __init__(self, vocab: int = VOCAB, hidden: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True, bidirectional=True)
        self.pool = Pool(2 * hidden)
        self.head = nn.Linear(2 * hidden, 2)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        states, _ = self.lstm(self.embed(x))
        return self.head(self.pool(states, mask)[0])


def make_seq2seq(seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq().eval()


def toy_batch(batch: int = 4, src_len: int = 6, tgt_len: int = 5, seed: int = 0, start: int = 0) -> dict:
    """One batch dict: ids, inputs (src, mask, tgt), and per-example source/target tokens."""
    g = torch.Generator().manual_seed(seed)
    lengths = [src_len - (i % 3) for i in range(batch)]
    tlens = [tgt_len - (i % 2) for i in range(batch)]
    src = torch.randint(1, VOCAB, (batch, src_len), generator=g)
    tgt = torch.randint(1, VOCAB, (batch, tgt_len), generator=g)
    mask = torch.arange(src_len)[None] < torch.tensor(lengths)[:, None]
    src = src.masked_fill(~mask, 0)
    return {
        "ids": [f"ex{start + i}" for i in range(batch)],
        "inputs": (src, mask, tgt),
        "source": [[f"s{int(t)}" for t in src[i, : lengths[i]]] for i in range(batch)],
        "target": [[f"t{int(t)}" for t in tgt[i, : tlens[i]]] for i in range(batch)],
    }


def batches(n: int = 6, batch: int = 4, delay: float = 0.0) -> list[dict] | object:
    """A deterministic dataset of ``n`` batches (a generator sleeping ``delay`` s per batch)."""
    if delay <= 0:
        return [toy_batch(batch, seed=i, start=i * batch) for i in range(n)]

    def slow():
        import time

        for i in range(n):
            time.sleep(delay)
            yield toy_batch(batch, seed=i, start=i * batch)

    return slow()


def test_fixture_attention_masks_padded_keys_exactly():
    model = make_seq2seq()
    b = toy_batch()
    src, mask, tgt = b["inputs"]
    with torch.no_grad():
        keys, _ = model.encoder(model.embed(src))
        out = model.attention(keys[:, :2], keys, mask)
    assert torch.equal(out.weights.masked_select(~mask[:, None].expand_as(out.weights)),
                       torch.zeros(int((~mask).sum()) * 2))
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(4, 2))


def test_fixture_batches_are_deterministic():
    a, b = batches(2), batches(2)
    assert [x["ids"] for x in a] == [["ex0", "ex1", "ex2", "ex3"], ["ex4", "ex5", "ex6", "ex7"]]
    assert all(torch.equal(x["inputs"][0], y["inputs"][0]) for x, y in zip(a, b, strict=True))


def slow_batches():
    """40 batches arriving 0.2 s apart: a capture job long enough to be killed mid-way."""
    return batches(n=40, batch=4, delay=0.2)
