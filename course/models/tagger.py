"""Sequence labelling: a BiLSTM tagger, with or without self-attention over its states.

Without attention each token's tag is read from its own BiLSTM state. With ``attention=True``
every token also attends over all tokens of the sentence (additive score, the token's state as
the query) and the tag is read from ``[h_i; c_i]``: a token can pull in evidence from a distant
word ("moved to" before a place name) directly rather than through the recurrence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course.attention import bahdanau_attention
from course.models.outputs import TaggerOutput
from course.models.pooling import lengths_from_padding
from course.models.recurrent import TokenEncoder


class BiLSTMTagger(nn.Module):
    """Tags per token; ``TaggerOutput.attention [B, S, S]`` (rows of padded tokens are zero)."""

    def __init__(self, vocab_size: int, num_tags: int, embed_dim: int = 32, hidden_size: int = 32,
                 attention: bool = True, attention_units: int = 32, dropout: float = 0.0):
        super().__init__()
        if num_tags < 2:
            raise ValueError(f"a tagger needs at least 2 tags, got {num_tags}")
        self.encoder = TokenEncoder(vocab_size, embed_dim, hidden_size, dropout=dropout)
        size = self.encoder.output_size
        self.attention = bahdanau_attention(size, size, attention_units) if attention else None
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * size if attention else size, num_tags)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> TaggerOutput:
        if lengths is None:
            lengths = lengths_from_padding(tokens)
        encoded = self.encoder(tokens, lengths)
        states = encoded.outputs
        if self.attention is None:
            return TaggerOutput(self.output(self.dropout(states)), None)
        attended = self.attention(states, states, mask=encoded.mask)
        features = torch.cat([states, attended.context], dim=-1)
        weights = attended.weights * encoded.mask.unsqueeze(-1).to(attended.weights.dtype)
        return TaggerOutput(self.output(self.dropout(features)), weights)
