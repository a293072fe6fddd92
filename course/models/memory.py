"""End-to-end memory network (Sukhbaatar et al., 2015): attention over sentences, several hops.

Each story sentence becomes a memory twice: an input vector ``m_i`` (embedding ``A``) that the
question state ``u`` scores by a dot product, and an output vector ``c_i`` (embedding ``C``) that
the weights average: ``o = sum_i softmax(u . m_i) c_i``; then ``u <- u + o`` and the next hop
reads again. The answer is ``softmax(W (u + o))`` over the vocabulary.

- **Position encoding**: a sentence vector is ``sum_j l_j * A x_j`` with
  ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)``, so word order matters ("john gave mary" != "mary gave john").
- **Temporal encoding**: a learned vector per memory age ``T_A(i)``, ``T_C(i)`` is added, age 0
  being the most recent statement, so "where is mary *now*" can prefer later facts.
- **Linear start**: :meth:`MemoryNetwork.linear_start` trains first without the softmax, as the
  paper does for the harder tasks; switch it back on before reading the weights as attention.
- **Adjacent weight tying**: ``A^{k+1} = C^k``, the question embedding ``B = A^1`` and the answer
  matrix ``W^T = C^K``, so ``hops + 1`` embedding tables serve ``hops`` hops.

The attention of every hop goes through one ``Attention`` module, so ``interp.capture`` stacks the
hops along the query axis: ``[batch, hops, memories]``, the same as ``MemoryOutput.attention``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course.attention import Attention, SoftmaxNormalizer
from course.attention.scores import DotScore
from course.data.vocab import PAD
from course.masks import expand_key_mask
from course.models.outputs import MemoryOutput


def position_encoding(lengths: Tensor, width: int, dim: int) -> Tensor:
    """``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` for ``lengths [...]`` sentences: ``[..., width, dim]``,
    zero past each sentence's length (J)."""
    j = torch.arange(1, width + 1, dtype=torch.float32, device=lengths.device)  # word position
    k = torch.arange(1, dim + 1, dtype=torch.float32, device=lengths.device)    # embedding dim
    big_j = lengths.clamp_min(1).unsqueeze(-1).to(torch.float32)                # [..., 1]
    ratio = (j / big_j).unsqueeze(-1)                                           # [..., W, 1]
    encoding = (1 - ratio) - (k / dim) * (1 - 2 * ratio)
    real = (j <= big_j).unsqueeze(-1)
    return encoding * real.to(encoding.dtype)


class LinearNormalizer(nn.Module):
    """No softmax: the raw scores, 0 on masked memories. Used for the paper's *linear start*
    (train with this first, then switch to softmax), which keeps some tasks out of poor optima."""

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is None:
            return energies
        return energies.masked_fill(~expand_key_mask(mask, energies), 0.0)


class MemoryNetwork(nn.Module):
    """MemN2N with ``hops`` hops, adjacent tying, position and temporal encoding (each switchable)."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, hops: int = 3, max_memories: int = 50,
                 position: bool = True, temporal: bool = True, init_std: float = 0.1):
        super().__init__()
        if not 1 <= hops <= 10:
            raise ValueError(f"hops must be between 1 and 10, got {hops}")
        if max_memories < 1:
            raise ValueError(f"max_memories must be at least 1, got {max_memories}")
        self.hops, self.max_memories = hops, max_memories
        self.position, self.embed_dim = position, embed_dim
        self.embeddings = nn.ModuleList(nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
                                        for _ in range(hops + 1))
        self.temporal = nn.ParameterList(nn.Parameter(torch.zeros(max_memories, embed_dim))
                                         for _ in range(hops + 1)) if temporal else None
        for table in [*self.embeddings, *(self.temporal or [])]:
            weight = table.weight if isinstance(table, nn.Embedding) else table
            nn.init.normal_(weight, std=init_std)
        with torch.no_grad():
            for table in self.embeddings:
                table.weight[PAD].zero_()
        self.attention = Attention(DotScore(), SoftmaxNormalizer())

    def linear_start(self, enabled: bool = True) -> None:
        """Switch the softmax off (``True``) or back on (``False``) in every hop."""
        self.attention.normalizer = LinearNormalizer() if enabled else SoftmaxNormalizer()

    def encode(self, table: int, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Sentences ``[..., W]`` to vectors ``[..., d]`` with embedding table ``table``."""
        embedded = self.embeddings[table](tokens)
        if self.position:
            embedded = embedded * position_encoding(lengths, tokens.size(-1), self.embed_dim)
        return embedded.sum(-2)

    def memories(self, table: int, story: Tensor, story_lengths: Tensor, ages: Tensor) -> Tensor:
        vectors = self.encode(table, story, story_lengths)
        if self.temporal is not None:
            vectors = vectors + self.temporal[table][ages]
        return vectors

    def forward(self, story: Tensor, story_lengths: Tensor, question: Tensor,
                question_lengths: Tensor) -> MemoryOutput:
        if story.dim() != 3 or story_lengths.shape != story.shape[:2]:
            raise ValueError(f"story must be [batch, memories, words] with lengths [batch, memories], "
                             f"got {tuple(story.shape)} and {tuple(story_lengths.shape)}")
        if story.size(1) > self.max_memories:
            raise ValueError(f"stories of {story.size(1)} memories exceed max_memories="
                             f"{self.max_memories}; keep the most recent sentences or build the "
                             "model with a larger max_memories")
        mask = story_lengths > 0
        if not bool(mask.any(1).all()):
            raise ValueError("a story has no sentences; every question needs at least one memory")
        count = mask.sum(1, keepdim=True)
        ages = (count - 1 - torch.arange(story.size(1), device=story.device)).clamp_min(0)
        u = self.encode(0, question, question_lengths)  # B = A^1
        rows = []
        for hop in range(self.hops):
            keys = self.memories(hop, story, story_lengths, ages)        # A^{hop+1}
            values = self.memories(hop + 1, story, story_lengths, ages)  # C^{hop+1} = A^{hop+2}
            attended = self.attention(u.unsqueeze(1), keys, values, mask=mask)
            u = u + attended.context.squeeze(1)
            rows.append(attended.weights)
        logits = u @ self.embeddings[-1].weight.t()  # W^T = C^K
        return MemoryOutput(logits, torch.cat(rows, dim=1))
