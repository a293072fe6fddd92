"""LSTM decoders: without attention (the bottleneck), Bahdanau, and Luong.

All share one interface so training, greedy decoding and beam search work with any of them:
``init_state(memory)``, ``step(prev_tokens, state, memory, prepared)`` and ``forward(tgt_in,
memory, teacher_forcing_ratio)``. ``forward`` returns ``DecoderOutput(logits, attention)`` with
attention ``[batch, (heads,) target steps, source]`` (``None`` for the decoder without attention).

The state between steps is a :class:`DecoderState` (LSTM states, Luong's attentional vector, and
the :class:`~course.attention.AttentionState` of an attention that reads earlier steps), so beam
search reorders all of it with :meth:`DecoderState.select`. What a variant's loss needs beyond the logits (the log-probability of
hard attention samples) travels in ``output_terms(output)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from course.attention import Attention, AttentionState
from course.data.vocab import PAD
from course.seq2seq.encoder import EncoderOutput


class DecoderState(NamedTuple):
    """What a decoder carries from one step to the next, by name.

    ``h`` and ``c`` are the LSTM states ``[layers, B, H]``; ``attentional`` is Luong's attentional
    vector ``[B, H]`` (fed back with input feeding; ``None`` for the other decoders);
    ``attention`` is the :class:`~course.attention.AttentionState` of an attention that reads
    earlier steps (location-aware, coverage, local-m), else ``None``.
    """

    h: Tensor
    c: Tensor
    attentional: Tensor | None = None
    attention: AttentionState | None = None

    def select(self, index: Tensor) -> DecoderState:
        """The state of the batch rows ``index`` (beam search keeps and reorders hypotheses)."""
        attention = (None if self.attention is None
                     else AttentionState(*(t.index_select(0, index) for t in self.attention)))
        return DecoderState(self.h.index_select(1, index), self.c.index_select(1, index),
                            None if self.attentional is None else self.attentional.index_select(0, index),
                            attention)




class DecoderOutput(NamedTuple):
    logits: Tensor               # [B, T, V]
    attention: Tensor | None     # [B, T, S] or [B, H, T, S]


class DecoderOutputWithTerms(DecoderOutput):
    """A :class:`DecoderOutput` (still unpacks as ``logits, attention``) plus named loss terms."""

    def __new__(cls, logits: Tensor, attention: Tensor | None, terms: dict[str, Tensor]):
        out = super().__new__(cls, logits, attention)
        out.terms = terms
        return out


def output_terms(output: DecoderOutput) -> dict[str, Tensor]:
    """Extra tensors a loss may need, e.g. ``attention_log_prob [B, T]`` of hard-attention samples."""
    return getattr(output, "terms", {})


def with_terms(logits: Tensor, attention: Tensor | None, log_prob: Tensor | None) -> DecoderOutput:
    if log_prob is None:
        return DecoderOutput(logits, attention)
    return DecoderOutputWithTerms(logits, attention, {"attention_log_prob": log_prob})


@runtime_checkable
class DecoderStep(Protocol):
    """What greedy decoding and beam search need of a decoder (every decoder of the course has it).

    ``init_state(memory)`` gives the state before the first step; ``prepare(memory)`` per-source
    work reused at every step (or ``None``); ``step(prev_tokens, state, memory, prepared)`` the
    logits ``[B, V]``, the next state and the attention weights ``[B, (H,) S]`` (or ``None``);
    ``reorder_state(state, index)`` the state of the rows ``index`` (beam search).
    """

    vocab_size: int

    def init_state(self, memory: EncoderOutput) -> Any: ...

    def prepare(self, memory: EncoderOutput) -> Any: ...

    def step(self, prev_tokens: Tensor, state: Any, memory: EncoderOutput,
             prepared: Any = None) -> tuple[Tensor, Any, Tensor | None]: ...

    def reorder_state(self, state: Any, index: Tensor) -> Any: ...


class Bridge(nn.Module):
    """Map the encoder's final states to the decoder's initial ones (sizes may differ)."""

    def __init__(self, encoder_size: int, decoder_size: int):
        super().__init__()
        self.h = nn.Linear(encoder_size, decoder_size)
        self.c = nn.Linear(encoder_size, decoder_size)

    def forward(self, memory: EncoderOutput) -> tuple[Tensor, Tensor]:
        return torch.tanh(self.h(memory.hidden)).contiguous(), self.c(memory.cell).contiguous()


class StackedLSTMCell(nn.Module):
    """LSTM layers advanced one step at a time: cheaper per step than ``nn.LSTM`` on length 1.

    States are ``[layers, batch, hidden]`` like ``nn.LSTM``'s, so both kinds of decoder share
    beam-search reordering.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(size, hidden_size) for size in sizes)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h_prev, c_prev = state
        hs, cs = [], []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, (h_prev[layer], c_prev[layer]))
            hs.append(h)
            cs.append(c)
            x = self.dropout(h) if layer + 1 < len(self.cells) else h
        return x, (torch.stack(hs), torch.stack(cs))


class StepDecoder(nn.Module):
    """Shared machinery: the teacher-forced step loop and state reordering for beam search."""

    vocab_size: int
    embedding: nn.Embedding

    def init_state(self, memory: EncoderOutput) -> DecoderState:
        raise NotImplementedError

    def prepare(self, memory: EncoderOutput) -> Tensor | None:
        """Per-source work reused at every step (the attention's key projection)."""
        return None

    def step(self, prev_tokens: Tensor, state: DecoderState, memory: EncoderOutput,
             prepared: Tensor | None = None) -> tuple[Tensor, DecoderState, Tensor | None]:
        raise NotImplementedError

    @staticmethod
    def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
        """Select batch rows of a state (beam search)."""
        return state.select(index)

    def check_targets(self, tgt_in: Tensor, memory: EncoderOutput) -> None:
        if tgt_in.dim() != 2:
            raise ValueError(f"target ids must be [batch, time], got shape {tuple(tgt_in.shape)}")
        if tgt_in.size(0) != memory.outputs.size(0):
            raise ValueError(
                f"mismatched batch sizes: {tgt_in.size(0)} target rows for "
                f"{memory.outputs.size(0)} encoded sources"
            )
        if tgt_in.size(1) == 0:
            raise ValueError("empty target: teacher forcing needs at least the SOS token")
        if int(tgt_in.max()) >= self.vocab_size or int(tgt_in.min()) < 0:
            raise ValueError(f"target ids must lie in [0, {self.vocab_size}); got up to {int(tgt_in.max())}")

    def forward(self, tgt_in: Tensor, memory: EncoderOutput, teacher_forcing_ratio: float = 1.0,
                generator: torch.Generator | None = None) -> DecoderOutput:
        """Run the step loop; with ``teacher_forcing_ratio < 1`` feed back the model's own argmax."""
        self.check_targets(tgt_in, memory)
        if not 0.0 <= teacher_forcing_ratio <= 1.0:
            raise ValueError(f"teacher_forcing_ratio must lie in [0, 1], got {teacher_forcing_ratio}")
        state = self.init_state(memory)
        prepared = self.prepare(memory)
        attention = getattr(self, "attention", None)
        logits_steps, weight_steps, log_prob_steps = [], [], []
        prev = tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            logits, state, weights = self.step(prev, state, memory, prepared)
            logits_steps.append(logits)
            if weights is not None:
                weight_steps.append(weights)
            log_prob = attention.sample_log_prob() if attention is not None else None
            if log_prob is not None:
                log_prob_steps.append(log_prob.squeeze(1))
            if t + 1 < tgt_in.size(1):
                prev = tgt_in[:, t + 1]
                if teacher_forcing_ratio < 1.0:
                    coin = torch.rand(prev.shape, generator=generator) >= teacher_forcing_ratio
                    prev = torch.where(coin.to(prev.device), logits.argmax(-1), prev)
        weights = torch.stack(weight_steps, dim=-2) if weight_steps else None  # steps before source
        log_prob = torch.stack(log_prob_steps, dim=1) if log_prob_steps else None
        return with_terms(torch.stack(logits_steps, dim=1), weights, log_prob)


class PlainDecoder(StepDecoder):
    """Sutskever et al. (2014): the source reaches the decoder only through its initial state.

    Everything the decoder knows about a 50-token source must fit in one fixed-size vector:
    the bottleneck lesson 01 measures.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, encoder_size: int,
                 num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.bridge = Bridge(encoder_size, hidden_size)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, memory: EncoderOutput) -> DecoderState:
        return DecoderState(*self.bridge(memory))

    def step(self, prev_tokens, state, memory, prepared=None):
        output, (h, c) = self.lstm(self.dropout(self.embedding(prev_tokens).unsqueeze(1)), (state.h, state.c))
        return self.out(self.dropout(output.squeeze(1))), DecoderState(h, c), None

    def forward(self, tgt_in, memory, teacher_forcing_ratio=1.0, generator=None):
        if teacher_forcing_ratio < 1.0:
            return super().forward(tgt_in, memory, teacher_forcing_ratio, generator)
        self.check_targets(tgt_in, memory)
        state = self.init_state(memory)
        output, _ = self.lstm(self.dropout(self.embedding(tgt_in)), (state.h, state.c))
        return DecoderOutput(self.out(self.dropout(output)), None)


class BahdanauDecoder(StepDecoder):
    """Bahdanau et al. (2015): the previous state s_{t-1} queries the source before each step.

    Because the query is the state *before* the step and the context feeds the LSTM's input,
    step t cannot start until step t-1 is done: this decoder always runs a step loop.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, encoder_size: int,
                 attention: Attention, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.bridge = Bridge(encoder_size, hidden_size)
        self.attention = attention
        self.lstm = StackedLSTMCell(embed_dim + encoder_size, hidden_size, num_layers, dropout)
        self.dropout = nn.Dropout(dropout)
        self.combine = nn.Linear(hidden_size + encoder_size + embed_dim, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, memory):
        h, c = self.bridge(memory)
        attention = self.attention.init_state(memory.outputs, memory.mask) if self.attention.needs_state else None
        return DecoderState(h, c, None, attention)

    def prepare(self, memory):
        return self.attention.prepare(memory.outputs)

    def step(self, prev_tokens, state, memory, prepared=None):
        h, c, attention_state = state.h, state.c, state.attention
        embedded = self.dropout(self.embedding(prev_tokens))            # [B, E]
        context, weights = self.attention(h[-1].unsqueeze(1), memory.outputs, mask=memory.mask,
                                          prepared=prepared, state=attention_state)
        context = context.squeeze(1)                                    # [B, Henc]
        output, (h, c) = self.lstm(torch.cat([embedded, context], -1), (h, c))
        hidden = torch.tanh(self.combine(torch.cat([output, context, embedded], -1)))
        if attention_state is not None:
            attention_state = self.attention.advance(attention_state, weights)
        return self.out(self.dropout(hidden)), DecoderState(h, c, None, attention_state), weights.squeeze(-2)


class LuongDecoder(StepDecoder):
    """Luong et al. (2015): the current state h_t queries the source after the step.

    The attentional vector is ``h~_t = tanh(W_c [c_t; h_t])`` and predicts the token. Without
    input feeding, h_t does not depend on any earlier context, so under teacher forcing the LSTM
    runs over the whole target at once and all steps attend in one batched product.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, encoder_size: int,
                 attention: Attention, num_layers: int = 1, dropout: float = 0.0,
                 input_feeding: bool = False):
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.input_feeding = input_feeding
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.bridge = Bridge(encoder_size, hidden_size)
        self.attention = attention
        input_size = embed_dim + (hidden_size if input_feeding else 0)
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.combine = nn.Linear(encoder_size + hidden_size, hidden_size, bias=False)
        self.out = nn.Linear(hidden_size, vocab_size)

    def init_state(self, memory):
        h, c = self.bridge(memory)
        attentional = h.new_zeros(h.size(1), self.hidden_size)
        attention = self.attention.init_state(memory.outputs, memory.mask) if self.attention.needs_state else None
        return DecoderState(h, c, attentional, attention)

    def prepare(self, memory):
        return self.attention.prepare(memory.outputs)

    def attend(self, states: Tensor, memory: EncoderOutput, prepared: Tensor | None,
               attention_state: AttentionState | None = None):
        """From decoder states ``[B, T, H]`` to attentional vectors ``[B, T, H]`` and weights."""
        context, weights = self.attention(states, memory.outputs, mask=memory.mask, prepared=prepared,
                                          state=attention_state)
        attentional = torch.tanh(self.combine(torch.cat([context, states], -1)))
        return attentional, weights

    def step(self, prev_tokens, state, memory, prepared=None):
        h, c, attentional, attention_state = state
        x = self.dropout(self.embedding(prev_tokens))
        if self.input_feeding:
            x = torch.cat([x, attentional], -1)
        output, (h, c) = self.lstm(x.unsqueeze(1), (h, c))
        attentional, weights = self.attend(output, memory, prepared, attention_state)
        attentional = attentional.squeeze(1)
        if attention_state is not None:
            attention_state = self.attention.advance(attention_state, weights)
        return self.out(self.dropout(attentional)), DecoderState(h, c, attentional, attention_state), weights.squeeze(-2)

    @property
    def can_run_parallel(self) -> bool:
        """Exact only when no step reads an earlier one: no input feeding, no previous weights."""
        return not self.input_feeding and not self.attention.reads_previous_weights

    def forward(self, tgt_in, memory, teacher_forcing_ratio=1.0, generator=None, parallel=None):
        """Use the parallel path when it is exact (no input feeding, full teacher forcing)."""
        if parallel is None:
            parallel = self.can_run_parallel and teacher_forcing_ratio == 1.0
        if not parallel:
            return super().forward(tgt_in, memory, teacher_forcing_ratio, generator)
        if self.input_feeding:
            raise ValueError("input feeding makes each step depend on the last: the parallel path is unavailable")
        if self.attention.reads_previous_weights:
            raise ValueError("this attention reads the previous step's weights (location-aware or coverage): "
                             "the parallel path is unavailable, use parallel=False")
        if teacher_forcing_ratio != 1.0:
            raise ValueError("the parallel path needs full teacher forcing (teacher_forcing_ratio=1.0)")
        self.check_targets(tgt_in, memory)
        state = self.init_state(memory)
        h, c = state.h, state.c
        output, _ = self.lstm(self.dropout(self.embedding(tgt_in)), (h, c))
        attentional, weights = self.attend(output, memory, self.prepare(memory))
        return with_terms(self.out(self.dropout(attentional)), weights, self.attention.sample_log_prob())
