"""Small models for interp's attribution and faithfulness tests (defined here, not in course)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis with masked positions exactly 0."""
    return scores.masked_fill(~mask, float("-inf")).softmax(-1).masked_fill(~mask, 0.0)


class AttnClassifier(nn.Module):
    """BiLSTM + additive attention pooling + linear classifier (Jain & Wallace's setting).

    ``forward_with_attention(ids, attention=None) -> (logits, attention)``: with ``attention``
    given, it replaces the learned weights (the protocol interp.faithfulness uses).
    """

    def __init__(self, vocab: int = 20, emb: int = 16, hidden: int = 16, classes: int = 3, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab, emb, padding_idx=pad_id)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)
        self.out = nn.Linear(2 * hidden, classes)

    def forward_with_attention(self, ids: Tensor, attention: Tensor | None = None) -> tuple[Tensor, Tensor]:
        return self.forward_from_embeddings(self.embedding(ids), ids != self.pad_id, attention)

    def forward_from_embeddings(
        self, emb: Tensor, mask: Tensor, attention: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """The same forward from given embeddings (an independent path for gradient checks)."""
        h, _ = self.lstm(emb)
        weights = masked_softmax(self.v(torch.tanh(self.proj(h))).squeeze(-1), mask)
        if attention is not None:
            weights = attention
        context = (weights.unsqueeze(-1) * h).sum(1)
        return self.out(context), weights

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_with_attention(ids)[0]


class OneTokenDecides(nn.Module):
    """Attention pooling whose output depends only on the token ``key``: logits = [-c, +c] * w.

    Each token's value is 1 for ``key`` and 0 otherwise; the learned attention is peaked on
    ``key`` (score ``peak`` there, 0 elsewhere). Removing the key token flips the prediction;
    keeping only the key token keeps it. ``forward_with_attention`` follows interp's protocol.
    """

    def __init__(self, vocab: int = 10, key: int = 5, pad_id: int = 0, c: float = 10.0, peak: float = 4.0):
        super().__init__()
        self.key, self.pad_id, self.c, self.peak = key, pad_id, c, peak
        self.embedding = nn.Embedding(vocab, 1)
        with torch.no_grad():
            self.embedding.weight.zero_()
            self.embedding.weight[key] = 1.0

    def forward_with_attention(self, ids: Tensor, attention: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mask = ids != self.pad_id
        values = self.embedding(ids).squeeze(-1)  # [b, s]: 1 on the key token
        weights = masked_softmax(self.peak * values, mask)
        if attention is not None:
            weights = attention
        z = (weights * values).sum(-1)  # attention mass on the key token
        logits = torch.stack([-self.c * (z - 0.5), self.c * (z - 0.5)], -1)
        return logits, weights

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_with_attention(ids)[0]


class IgnoresAttention(nn.Module):
    """Output = mean of token values, whatever the attention: adversaries should win easily."""

    def __init__(self, vocab: int = 10, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab, 2)

    def forward_with_attention(self, ids: Tensor, attention: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mask = ids != self.pad_id
        e = self.embedding(ids)
        weights = masked_softmax(e[..., 0], mask)
        logits = (e * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return logits, weights if attention is None else attention

    def forward(self, ids: Tensor) -> Tensor:
        return self.forward_with_attention(ids)[0]


class TinySeq2Seq(nn.Module):
    """BiLSTM encoder, LSTM decoder with dot attention, teacher-forced: logits [b, tgt, vocab]."""

    def __init__(self, src_vocab: int = 15, tgt_vocab: int = 12, dim: int = 16, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.src_embedding = nn.Embedding(src_vocab, dim, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab, dim, padding_idx=pad_id)
        self.encoder = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)
        self.decoder = nn.LSTM(dim, dim, batch_first=True)
        self.out = nn.Linear(2 * dim, tgt_vocab)

    def forward_with_attention(self, src: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        mask = src != self.pad_id
        keys, _ = self.encoder(self.src_embedding(src))
        queries, _ = self.decoder(self.tgt_embedding(tgt))
        weights = masked_softmax(queries @ keys.transpose(1, 2), mask[:, None, :])
        context = weights @ keys
        return self.out(torch.cat([context, queries], -1)), weights

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        return self.forward_with_attention(src, tgt)[0]


class BagOfEmbeddings(nn.Module):
    """Additive model: logits = sum of per-token class scores over real tokens.

    Every token's exact contribution is known (its row of ``embedding @ head`` minus the
    baseline token's), so IG, DeepLift, occlusion and KernelSHAP must all recover it.
    """

    def __init__(self, vocab: int = 12, dim: int = 4, classes: int = 3, pad_id: int = 0):
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, classes, bias=False)

    def contributions(self, ids: Tensor, baseline_id: int, target: Tensor) -> Tensor:
        w = self.head(self.embedding.weight)  # [vocab, classes]
        c = w[ids] - w[baseline_id]  # [b, s, classes]
        c = c.gather(-1, target[:, None, None].expand(-1, ids.shape[1], 1)).squeeze(-1)
        return c * (ids != self.pad_id)

    def forward(self, ids: Tensor) -> Tensor:
        mask = (ids != self.pad_id)[..., None]
        return self.head((self.embedding(ids) * mask).sum(1))


class NoEmbedding(nn.Module):
    """A model with no nn.Embedding (one-hot + linear): the embedding must be named."""

    def __init__(self, vocab: int = 6):
        super().__init__()
        self.vocab = vocab
        self.lookup = nn.Linear(vocab, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: Tensor) -> Tensor:
        return self.out(self.lookup(nn.functional.one_hot(ids, self.vocab).float()).sum(1))


def make_classifier(seed: int = 0) -> AttnClassifier:
    """A small untrained attention classifier (the attribution dataset tests' model)."""
    torch.manual_seed(seed)
    return AttnClassifier(vocab=30, classes=3).eval()


def classifier_batches(n: int = 8, batch: int = 4, delay: float = 0.0) -> list[dict] | object:
    """``n`` batches of padded token ids with lengths and source tokens, as attribute_dataset reads."""
    def make(i: int) -> dict:
        g = torch.Generator().manual_seed(100 + i)
        lengths = [7 - (j % 3) for j in range(batch)]
        ids = torch.randint(1, 30, (batch, 7), generator=g)
        ids = ids.masked_fill(torch.arange(7)[None] >= torch.tensor(lengths)[:, None], 0)
        return {"ids": [f"doc{i * batch + j}" for j in range(batch)], "inputs": ids, "lengths": lengths,
                "source": [[f"w{int(t)}" for t in ids[j, : lengths[j]]] for j in range(batch)]}

    if delay <= 0:
        return [make(i) for i in range(n)]

    def slow():
        import time

        for i in range(n):
            time.sleep(delay)
            yield make(i)

    return slow()


def slow_classifier_batches():
    """60 batches arriving 0.15 s apart: an attribution job long enough to be killed mid-way."""
    return classifier_batches(n=60, delay=0.15)


def batches_with_a_broken_one():
    """``classifier_batches(8)`` with float "token ids" in the first batch that rank 1 of 2 owns."""
    from interp.shard import Shard

    data = classifier_batches(n=8)
    broken = next(b for b in data if Shard(1, 2).owns(b["ids"]))
    broken["inputs"] = broken["inputs"].float()
    return data
