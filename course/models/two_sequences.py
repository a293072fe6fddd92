"""Reading two sentences: conditional encoding and word-by-word attention (Rocktäschel et al., 2016).

One LSTM reads the premise; a second LSTM reads the hypothesis starting from the premise's final
state (*conditional encoding*). Then, by ``attention``:

- ``"none"``: classify from the hypothesis LSTM's last state (the no-attention baseline);
- ``"final"``: the last hypothesis state attends once over the premise states;
- ``"word_by_word"``: every hypothesis state ``h_t`` attends over the premise, carrying a running
  attention summary ``r_t = Y^T a_t + tanh(W_t r_{t-1})``, with scores
  ``w^T tanh(W_y Y + (W_h h_t + W_r r_{t-1}) e_L^T)``: the additive score with the query
  ``[h_t; r_{t-1}]``. The weights ``[batch, hypothesis, premise]`` are a soft word alignment.

The final pair representation is ``h* = tanh(W_p r_N + W_x h_N)`` at each hypothesis's last real
token ``N``. Both LSTMs share one embedding table.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course.attention import Attention, SoftmaxNormalizer, bahdanau_attention
from course.batching import lengths_to_mask
from course.encoder import check_lengths
from course.models.outputs import ClassifierOutput
from course.scores import GeneralScore
from course.vocab import PAD

PAIR_ATTENTIONS = ("none", "final", "word_by_word")
PAIR_SCORES = ("additive", "bilinear")


# Luong's "general" score q^T W k: a product, so it can match a word with its counterpart.
BilinearScore = GeneralScore


def run_lstm(lstm: nn.LSTM, embedded: Tensor, lengths: Tensor,
             state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Packed LSTM: states ``[B, S, H]`` (0 on padding) and the final ``(h, c)`` at each length."""
    packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, final = lstm(packed, state)
    outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=embedded.size(1))
    return outputs, final


class PairClassifier(nn.Module):
    """Premise and hypothesis LSTMs with ``attention`` in {"none", "final", "word_by_word"}."""

    def __init__(self, vocab_size: int, num_classes: int = 3, embed_dim: int = 32, hidden_size: int = 32,
                 attention: str = "word_by_word", score: str = "additive", dropout: float = 0.0):
        super().__init__()
        if attention not in PAIR_ATTENTIONS:
            raise ValueError(f"attention must be one of {PAIR_ATTENTIONS}, got {attention!r}")
        if score not in PAIR_SCORES:
            raise ValueError(f"score must be one of {PAIR_SCORES}, got {score!r}")
        self.mode = attention
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.premise_lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.hypothesis_lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        k = hidden_size
        if attention != "none":
            query_size = 2 * k if attention == "word_by_word" else k
            if score == "additive":
                self.attention = bahdanau_attention(query_size, k, k)
            else:
                self.attention = Attention(BilinearScore(query_size, k), SoftmaxNormalizer())
            self.w_p = nn.Linear(k, k, bias=False)
            self.w_x = nn.Linear(k, k, bias=False)
        if attention == "word_by_word":
            self.w_t = nn.Linear(k, k, bias=False)
        self.output = nn.Linear(k, num_classes)

    def embed(self, tokens: Tensor, lengths: Tensor, what: str) -> Tensor:
        check_lengths(tokens, lengths)
        if int(tokens.max()) >= self.embedding.num_embeddings or int(tokens.min()) < 0:
            raise ValueError(f"{what} ids must lie in [0, {self.embedding.num_embeddings})")
        return self.dropout(self.embedding(tokens))

    def forward(self, premise: Tensor, premise_lengths: Tensor, hypothesis: Tensor,
                hypothesis_lengths: Tensor) -> ClassifierOutput:
        if premise.size(0) != hypothesis.size(0):
            raise ValueError(f"{premise.size(0)} premises but {hypothesis.size(0)} hypotheses")
        premise_states, premise_final = run_lstm(
            self.premise_lstm, self.embed(premise, premise_lengths, "premise"), premise_lengths)
        states, (h_last, _) = run_lstm(self.hypothesis_lstm,
                                       self.embed(hypothesis, hypothesis_lengths, "hypothesis"),
                                       hypothesis_lengths, premise_final)
        h_last = h_last[-1]  # [B, k]: the state at each hypothesis's last real token
        premise_mask = lengths_to_mask(premise_lengths, premise.size(1)).to(premise.device)
        if self.mode == "none":
            return ClassifierOutput(self.output(self.dropout(h_last)))
        if self.mode == "final":
            attended = self.attention(h_last.unsqueeze(1), premise_states, mask=premise_mask)
            summary, weights = attended.context.squeeze(1), attended.weights
        else:
            summary, weights = self.word_by_word(states, hypothesis_lengths, premise_states, premise_mask)
        pair = torch.tanh(self.w_p(summary) + self.w_x(h_last))
        return ClassifierOutput(self.output(self.dropout(pair)), weights)

    def word_by_word(self, states: Tensor, lengths: Tensor, premise_states: Tensor,
                     premise_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Attend from every hypothesis step; return ``r_N`` and weights ``[B, T, L]`` (0 past N)."""
        prepared = self.attention.prepare(premise_states)  # W_y Y once for all steps
        r = states.new_zeros(states.size(0), states.size(-1))
        summaries, rows = [], []
        for t in range(states.size(1)):
            query = torch.cat([states[:, t], r], dim=-1).unsqueeze(1)
            attended = self.attention(query, premise_states, mask=premise_mask, prepared=prepared)
            r = attended.context.squeeze(1) + torch.tanh(self.w_t(r))
            summaries.append(r)
            rows.append(attended.weights)
        weights = torch.cat(rows, dim=1)
        real_steps = lengths_to_mask(lengths, states.size(1)).to(weights.device)
        weights = weights * real_steps.unsqueeze(-1).to(weights.dtype)
        last = (lengths - 1).to(states.device)
        summary = torch.stack(summaries, dim=1)[torch.arange(states.size(0), device=states.device), last]
        return summary, weights
