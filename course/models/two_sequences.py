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

- ``"aligned"``: a comparison head in the style of decomposable attention (Parikh et al., 2016)
  and ESIM (Chen et al., 2017). Each sentence is read by its own bidirectional LSTM (``hidden_size
  // 2`` units each way) and every word is the vector ``[embedding; states]``, so a key knows both
  its word and its scene. Every hypothesis word ``h_t`` attends over the premise words ``y_i`` at
  once (by default with the dot score ``h_t . y_i``: a word matches itself from the first step,
  and training moves the embeddings and states), ``a_t = sum_i alpha_ti y_i``, is compared with what it aligned to,
  ``v_t = ReLU(W_c [h_t; a_t; h_t - a_t; h_t * a_t])``, and the ``v_t`` are pooled (max and mean
  over the real hypothesis words) and classified. The label can only come through the rows of the
  alignment; the sentences are read independently (no conditional encoding).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course.attention import Attention, SoftmaxNormalizer, bahdanau_attention
from course.attention.scores import DotScore, GeneralScore
from course.data.vocab import PAD
from course.masks import lengths_to_mask
from course.models.outputs import ClassifierOutput
from course.seq2seq.encoder import check_lengths

PAIR_ATTENTIONS = ("none", "final", "word_by_word", "aligned")
PAIR_SCORES = ("additive", "bilinear", "dot")


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
    """Premise and hypothesis LSTMs with ``attention`` in {"none", "final", "word_by_word", "aligned"}.

    ``score`` is the attention score, "additive", "bilinear" or (for "aligned" only, where query
    and key are the same kind of vector) "dot"; None picks "additive", and "dot" for "aligned".
    """

    def __init__(self, vocab_size: int, num_classes: int = 3, embed_dim: int = 32, hidden_size: int = 32,
                 attention: str = "word_by_word", score: str | None = None, dropout: float = 0.0):
        super().__init__()
        if attention not in PAIR_ATTENTIONS:
            raise ValueError(f"attention must be one of {PAIR_ATTENTIONS}, got {attention!r}")
        if score is None:
            score = "dot" if attention == "aligned" else "additive"
        if score not in PAIR_SCORES:
            raise ValueError(f"score must be one of {PAIR_SCORES}, got {score!r}")
        if score == "dot" and attention != "aligned":
            raise ValueError("the dot score compares a hypothesis word with a premise word of the same "
                             f"size: it needs attention='aligned', got {attention!r}")
        self.mode = attention
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        k = hidden_size
        if attention == "aligned":
            if k % 2:
                raise ValueError(f"attention='aligned' splits hidden_size between two directions: "
                                 f"it must be even, got {k}")
            self.premise_lstm = nn.LSTM(embed_dim, k // 2, batch_first=True, bidirectional=True)
            self.hypothesis_lstm = nn.LSTM(embed_dim, k // 2, batch_first=True, bidirectional=True)
            word = embed_dim + k  # [embedding; forward and backward states]
            if score == "additive":
                self.attention = bahdanau_attention(word, word, k)
            elif score == "bilinear":
                self.attention = Attention(BilinearScore(word, word), SoftmaxNormalizer())
            else:
                self.attention = Attention(DotScore(), SoftmaxNormalizer())
            self.compare = nn.Sequential(nn.Linear(4 * word, k), nn.ReLU())
            self.output = nn.Linear(2 * k, num_classes)  # max and mean of the comparisons
            return
        self.premise_lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.hypothesis_lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
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
        if self.mode == "aligned":
            return self.aligned(premise, premise_lengths, hypothesis, hypothesis_lengths)
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

    def aligned(self, premise: Tensor, premise_lengths: Tensor, hypothesis: Tensor,
                hypothesis_lengths: Tensor) -> ClassifierOutput:
        """Align every hypothesis word to the premise, compare, pool; weights ``[B, T, L]`` (0 past T)."""
        premise_embedded = self.embed(premise, premise_lengths, "premise")
        hypothesis_embedded = self.embed(hypothesis, hypothesis_lengths, "hypothesis")
        premise_states, _ = run_lstm(self.premise_lstm, premise_embedded, premise_lengths)
        states, _ = run_lstm(self.hypothesis_lstm, hypothesis_embedded, hypothesis_lengths)
        y = torch.cat([premise_embedded, premise_states], dim=-1)   # [B, L, e + k]
        h = torch.cat([hypothesis_embedded, states], dim=-1)        # [B, T, e + k]
        premise_mask = lengths_to_mask(premise_lengths, premise.size(1)).to(premise.device)
        real = lengths_to_mask(hypothesis_lengths, hypothesis.size(1)).to(hypothesis.device).unsqueeze(-1)
        attended = self.attention(h, y, mask=premise_mask)          # every hypothesis word at once
        a = attended.context                                        # [B, T, e + k]: a_t = sum_i alpha_ti y_i
        compared = self.compare(torch.cat([h, a, h - a, h * a], dim=-1))  # [B, T, k]
        largest = compared.masked_fill(~real, float("-inf")).max(dim=1).values
        mean = (compared * real).sum(1) / hypothesis_lengths.to(compared.device, compared.dtype).unsqueeze(-1)
        pooled = self.dropout(torch.cat([largest, mean], dim=-1))
        weights = attended.weights * real.to(attended.weights.dtype)
        return ClassifierOutput(self.output(pooled), weights)
