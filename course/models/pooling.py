"""Many-to-one: read a sequence with an LSTM, pool its states into one vector, classify.

Three poolings of the same encoder states, so a lesson can compare them on one task:

- :class:`LSTMClassifier`: no attention, the last state or the mean / max of all states (baselines);
- :class:`AttentionPoolClassifier`: additive attention with the final hidden state as the query
  (Bahdanau-style pooling): ``c = sum_i a_i h_i``;
- :class:`SelfAttentiveClassifier`: Lin et al. (2017) structured self-attention, ``r`` hops
  ``A = softmax(W_s2 tanh(W_s1 H^T))`` with the penalty ``||A A^T - I||_F^2`` that pushes the hops
  to look at different tokens.

Every forward takes ``tokens [batch, time]`` and optional ``lengths [batch]``; without lengths,
trailing PAD ids are padding. Pass lengths whenever PAD may appear *inside* a sequence, e.g. when
an attribution method replaces tokens by PAD: the mask must stay what the real lengths say.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course.attention import AttentionOutput, SoftmaxNormalizer, bahdanau_attention
from course.data.vocab import PAD
from course.models.outputs import ClassifierOutput
from course.models.recurrent import EncodedSequence, TokenEncoder

POOLINGS = ("last", "mean", "max")


def lengths_from_padding(tokens: Tensor) -> Tensor:
    """Lengths of right-padded sequences: the position after the last non-PAD token."""
    if tokens.dim() != 2:
        raise ValueError(f"tokens must be [batch, time], got shape {tuple(tokens.shape)}")
    positions = torch.arange(1, tokens.size(1) + 1, device=tokens.device)
    return ((tokens != PAD) * positions).amax(dim=1)


def masked_mean(states: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``states [B, S, H]`` over real positions only."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def masked_max(states: Tensor, mask: Tensor) -> Tensor:
    return states.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)


def orthogonality_penalty(weights: Tensor) -> Tensor:
    """Lin et al.'s ``||A A^T - I||_F^2`` for ``A [batch, hops, keys]``, averaged over the batch."""
    if weights.dim() != 3:
        raise ValueError(f"expected weights [batch, hops, keys], got shape {tuple(weights.shape)}")
    gram = weights @ weights.transpose(1, 2)
    eye = torch.eye(weights.size(1), device=weights.device, dtype=weights.dtype)
    return ((gram - eye) ** 2).sum(dim=(1, 2)).mean()


class StructuredSelfAttention(nn.Module):
    """``A = softmax(W_s2 tanh(W_s1 H^T))``: ``hops`` learned views of one sequence.

    With ``hops=1`` and ``bias=True`` this is the word / sentence attention of Yang et al. (2016),
    ``a_i = softmax(u_w^T tanh(W h_i + b))``: one learned *context vector* ``u_w`` as the query.
    Returns ``AttentionOutput(context [B, hops, D], weights [B, hops, S])``, masked keys exactly 0.
    """

    def __init__(self, key_size: int, units: int, hops: int = 1, bias: bool = False):
        super().__init__()
        if hops < 1 or units < 1:
            raise ValueError(f"hops and units must be at least 1, got hops={hops}, units={units}")
        self.w_s1 = nn.Linear(key_size, units, bias=bias)
        self.w_s2 = nn.Linear(units, hops, bias=False)
        self.normalizer = SoftmaxNormalizer()

    def forward(self, keys: Tensor, mask: Tensor | None = None) -> AttentionOutput:
        energies = self.w_s2(torch.tanh(self.w_s1(keys))).transpose(1, 2)  # [B, hops, S]
        weights = self.normalizer(energies, mask)
        return AttentionOutput(weights @ keys, weights)


class SequenceClassifier(nn.Module):
    """The shared part: an LSTM encoder over the tokens and a linear output layer."""

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int, hidden_size: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.encoder = TokenEncoder(vocab_size, embed_dim, hidden_size, bidirectional=bidirectional,
                                    dropout=dropout)
        self.dropout = nn.Dropout(dropout)
        self.state_size = self.encoder.output_size

    def encode(self, tokens: Tensor, lengths: Tensor | None) -> EncodedSequence:
        if lengths is None:
            lengths = lengths_from_padding(tokens)
        return self.encoder(tokens, lengths)


class LSTMClassifier(SequenceClassifier):
    """No attention: classify from the last state, or the mean or max over all states."""

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 32, hidden_size: int = 32,
                 pooling: str = "last", bidirectional: bool = True, dropout: float = 0.0):
        super().__init__(vocab_size, num_classes, embed_dim, hidden_size, bidirectional, dropout)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.output = nn.Linear(self.state_size, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> ClassifierOutput:
        encoded = self.encode(tokens, lengths)
        if self.pooling == "last":
            pooled = encoded.final
        elif self.pooling == "mean":
            pooled = masked_mean(encoded.outputs, encoded.mask)
        else:
            pooled = masked_max(encoded.outputs, encoded.mask)
        return ClassifierOutput(self.output(self.dropout(pooled)))


class AttentionPoolClassifier(SequenceClassifier):
    """Additive attention over the LSTM states, queried by the final hidden state.

    The class is predicted from the context vector alone, so whatever decides the label has to
    pass through the attention weights (which is what makes them worth inspecting).
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 32, hidden_size: int = 32,
                 attention_units: int = 32, bidirectional: bool = True, dropout: float = 0.0):
        super().__init__(vocab_size, num_classes, embed_dim, hidden_size, bidirectional, dropout)
        self.attention = bahdanau_attention(self.state_size, self.state_size, attention_units)
        self.output = nn.Linear(self.state_size, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> ClassifierOutput:
        encoded = self.encode(tokens, lengths)
        query = encoded.final.unsqueeze(1)  # [B, 1, H]
        attended = self.attention(query, encoded.outputs, mask=encoded.mask)
        logits = self.output(self.dropout(attended.context.squeeze(1)))
        return ClassifierOutput(logits, attended.weights)


class SelfAttentiveClassifier(SequenceClassifier):
    """Lin et al. (2017): ``hops`` attention rows, their contexts concatenated, then an MLP.

    ``penalty`` in the output is ``||A A^T - I||_F^2``; :func:`course.models.classification_loss`
    adds it times ``penalty_weight`` (Lin et al. used 1.0; 0 switches it off).

    ``mlp_size=0`` replaces the ReLU MLP by one linear layer on the flattened ``M``. On long
    sequences the attention starts near uniform, so ``M`` is almost the same vector for every
    example and each ReLU unit is on for all inputs or off for all. Once Adam has switched every
    unit off, the dead MLP passes no gradient to the attention or the encoder and training stays at
    chance for good (seen on lesson 09's bundled reviews task).
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 32, hidden_size: int = 32,
                 attention_units: int = 32, hops: int = 4, mlp_size: int = 64,
                 penalty_weight: float = 1.0, bidirectional: bool = True, dropout: float = 0.0):
        super().__init__(vocab_size, num_classes, embed_dim, hidden_size, bidirectional, dropout)
        if penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
        if mlp_size < 0:
            raise ValueError(f"mlp_size must be >= 0 (0: a linear layer), got {mlp_size}")
        self.attention = StructuredSelfAttention(self.state_size, attention_units, hops)
        self.penalty_weight = penalty_weight
        flat_size = hops * self.state_size
        self.mlp: nn.Module = (nn.Linear(flat_size, num_classes) if mlp_size == 0 else
                               nn.Sequential(nn.Linear(flat_size, mlp_size), nn.ReLU(),
                                             nn.Dropout(dropout), nn.Linear(mlp_size, num_classes)))

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> ClassifierOutput:
        encoded = self.encode(tokens, lengths)
        attended = self.attention(encoded.outputs, encoded.mask)
        logits = self.mlp(self.dropout(attended.context.flatten(1)))
        return ClassifierOutput(logits, attended.weights, orthogonality_penalty(attended.weights))
