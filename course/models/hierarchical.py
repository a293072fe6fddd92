"""Hierarchical attention network (Yang et al., 2016): words -> sentence vectors -> document.

A BiLSTM reads each sentence and word attention (a learned context vector as the query) pools
its states into a sentence vector; a second BiLSTM reads the sentence vectors and sentence
attention pools them into the document vector that is classified. The paper uses GRUs; this
course uses LSTMs throughout. ``pooling="mean"`` replaces both attentions by the mean over real
positions: the no-attention baseline.

Input: ``tokens [batch, sentences, words]`` and ``sentence_lengths [batch, sentences]`` (0 for
padding sentences, which must come after a document's real ones). Only real sentences are
encoded, so the word attention module sees ``[real sentences, 1, words]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course.models.outputs import HierarchicalOutput
from course.models.pooling import StructuredSelfAttention, masked_mean
from course.models.recurrent import PaddedLSTM, TokenEncoder

HAN_POOLINGS = ("attention", "mean")


def check_documents(tokens: Tensor, sentence_lengths: Tensor) -> Tensor:
    """Validate shapes and padding; return the number of real sentences per document."""
    if tokens.dim() != 3:
        raise ValueError(f"tokens must be [batch, sentences, words], got shape {tuple(tokens.shape)}")
    if sentence_lengths.shape != tokens.shape[:2]:
        raise ValueError(f"sentence_lengths must be [batch, sentences] = {tuple(tokens.shape[:2])}, "
                         f"got {tuple(sentence_lengths.shape)}")
    real = sentence_lengths > 0
    counts = real.sum(1)
    if int(counts.min()) < 1:
        raise ValueError("a document has no sentences; every document needs at least one")
    if not torch.equal(real, torch.arange(real.size(1), device=real.device) < counts.unsqueeze(1)):
        raise ValueError("empty (padding) sentences must come after a document's real sentences")
    return counts


class HierarchicalAttentionNetwork(nn.Module):
    """Word attention then sentence attention; ``forward`` returns :class:`HierarchicalOutput`."""

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 32, word_hidden: int = 32,
                 sentence_hidden: int = 32, attention_units: int = 32, pooling: str = "attention",
                 dropout: float = 0.0):
        super().__init__()
        if pooling not in HAN_POOLINGS:
            raise ValueError(f"pooling must be one of {HAN_POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.word_encoder = TokenEncoder(vocab_size, embed_dim, word_hidden, dropout=dropout)
        self.sentence_encoder = PaddedLSTM(self.word_encoder.output_size, sentence_hidden)
        size = self.sentence_encoder.output_size
        if pooling == "attention":
            self.word_attention = StructuredSelfAttention(self.word_encoder.output_size, attention_units,
                                                          bias=True)
            self.sentence_attention = StructuredSelfAttention(size, attention_units, bias=True)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(size, num_classes)

    def forward(self, tokens: Tensor, sentence_lengths: Tensor) -> HierarchicalOutput:
        counts = check_documents(tokens, sentence_lengths)
        real = sentence_lengths > 0
        words = self.word_encoder(tokens[real], sentence_lengths[real])  # [R, W, H]
        word_weights = None
        if self.pooling == "attention":
            attended = self.word_attention(words.outputs, words.mask)
            vectors = attended.context.squeeze(1)
            word_weights = tokens.new_zeros(tokens.shape, dtype=vectors.dtype)
            word_weights[real] = attended.weights.squeeze(1)
        else:
            vectors = masked_mean(words.outputs, words.mask)
        sentence_vectors = vectors.new_zeros(*tokens.shape[:2], vectors.size(-1))
        sentence_vectors[real] = vectors
        sentences = self.sentence_encoder(self.dropout(sentence_vectors), counts)
        sentence_weights = None
        if self.pooling == "attention":
            attended = self.sentence_attention(sentences.outputs, sentences.mask)
            document = attended.context.squeeze(1)
            sentence_weights = attended.weights.squeeze(1)
        else:
            document = masked_mean(sentences.outputs, sentences.mask)
        return HierarchicalOutput(self.output(self.dropout(document)), word_weights, sentence_weights)
