"""A small Transformer encoder-decoder (``nn.Transformer``) with the course's seq2seq interface.

``TransformerSeq2Seq(src, src_lengths, tgt_in)`` returns a
:class:`~course.seq2seq.decoders.DecoderOutput` like the LSTM models, so ``course.training.fit`` trains
it; its ``decoder`` offers ``init_state`` / ``prepare`` / ``step`` / ``reorder_state``, so
``course.seq2seq.decoding.greedy_decode`` and ``beam_search`` decode it unchanged (each step reruns the
decoder over the prefix so far, which is exact and cheap for short targets).

Token embeddings (``nn.Embedding``'s unit-variance start, so the positions, of unit size, are
neither drowned nor dominant) plus sinusoidal positions (Vaswani et al., 2017), a
causal target mask and key padding masks for the source, the target and the memory. The
attention weights are not returned (``nn.Transformer`` computes them with
``need_weights=False``); ``interp.capture(model, "transformer.decoder.layers.*.multihead_attn")``
records the per-head cross-attention beside the call.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from course.data.vocab import PAD
from course.masks import lengths_to_mask
from course.seq2seq.decoders import DecoderOutput
from course.seq2seq.encoder import EncoderOutput

State = tuple[Tensor, ...]


def sinusoidal_positions(length: int, dim: int) -> Tensor:
    """``[length, dim]``: sin on even features, cos on odd ones, wavelengths 2 pi to 10000 * 2 pi."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even model width, got {dim}")
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


def causal_mask(length: int, device: torch.device | str | None = None) -> Tensor:
    """``[length, length]`` boolean mask, True where query ``i`` may **not** see key ``j > i``."""
    return torch.ones(length, length, dtype=torch.bool, device=device).triu(1)


class TransformerSteps:
    """The step interface of ``course.seq2seq.decoders`` for a :class:`TransformerSeq2Seq`.

    The state is the tuple ``(prefix,)``: the target ids fed so far, ``[B, t]``, batch first, so
    ``reorder_state`` selects rows along dimension 0 as beam search needs.
    """

    def __init__(self, model: TransformerSeq2Seq):
        self.model = model

    @property
    def vocab_size(self) -> int:
        return self.model.tgt_vocab_size

    def init_state(self, memory: EncoderOutput) -> State:
        return (memory.mask.new_zeros(memory.mask.size(0), 0, dtype=torch.long),)

    def prepare(self, memory: EncoderOutput) -> None:
        return None

    def step(self, prev_tokens: Tensor, state: State, memory: EncoderOutput,
             prepared: Tensor | None = None) -> tuple[Tensor, State, None]:
        """Logits ``[B, V]`` for the next token after ``prefix + prev_tokens``; no weights."""
        prefix = torch.cat([state[0], prev_tokens[:, None]], 1)
        logits = self.model.decode(prefix, memory)[:, -1]
        return logits, (prefix,), None

    @staticmethod
    def reorder_state(state: State, index: Tensor) -> State:
        return tuple(s.index_select(0, index) for s in state)


class TransformerSeq2Seq(nn.Module):
    """Embeddings + sinusoidal positions + ``nn.Transformer(batch_first=True)`` + output layer.

    ``norm_first=True`` (pre-layer-norm, Xiong et al., 2020) trains at Adam's plain learning rates
    without a warm-up, which the post-norm original needs.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, heads: int = 4,
                 encoder_layers: int = 2, decoder_layers: int = 2, feedforward: int = 128,
                 dropout: float = 0.0, norm_first: bool = True, max_len: int = 512, max_tgt_len: int = 80):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"heads={heads} must divide d_model={d_model}")
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.d_model, self.max_len, self.max_tgt_len = d_model, max_len, max_tgt_len
        self.src_embedding = nn.Embedding(src_vocab_size, d_model, padding_idx=PAD)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, d_model, padding_idx=PAD)
        self.register_buffer("positions", sinusoidal_positions(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)
        with warnings.catch_warnings():   # pre-norm layers have no nested-tensor fast path: say nothing
            warnings.filterwarnings("ignore", message="enable_nested_tensor is True")
            self.transformer = nn.Transformer(d_model, heads, encoder_layers, decoder_layers, feedforward,
                                              dropout, batch_first=True, norm_first=norm_first)
        self.out = nn.Linear(d_model, tgt_vocab_size)
        self.decoder = TransformerSteps(self)

    def embed(self, embedding: nn.Embedding, ids: Tensor) -> Tensor:
        if ids.size(1) > self.max_len:
            raise ValueError(f"{ids.size(1)} positions exceed max_len={self.max_len}; build the model "
                             "with a larger max_len")
        return self.dropout(embedding(ids) + self.positions[: ids.size(1)])

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encoder states ``[B, S, D]`` and the source mask, as an ``EncoderOutput`` (empty LSTM states)."""
        mask = lengths_to_mask(src_lengths.to(src.device), src.size(1))
        outputs = self.transformer.encoder(self.embed(self.src_embedding, src), src_key_padding_mask=~mask)
        empty = outputs.new_zeros(1, src.size(0), 0)
        return EncoderOutput(outputs, empty, empty, mask)

    def decode(self, tgt_in: Tensor, memory: EncoderOutput) -> Tensor:
        """Logits ``[B, T, V]`` for every target position, each seeing only earlier ones."""
        length = tgt_in.size(1)
        states = self.transformer.decoder(
            self.embed(self.tgt_embedding, tgt_in), memory.outputs,
            tgt_mask=causal_mask(length, tgt_in.device), tgt_is_causal=True,
            tgt_key_padding_mask=tgt_in == PAD, memory_key_padding_mask=~memory.mask)
        return self.out(states)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing_ratio: float = 1.0,
                generator: torch.Generator | None = None) -> DecoderOutput:
        """Teacher-forced logits ``[B, T, V]``; attention is ``None`` (capture it with interp)."""
        if teacher_forcing_ratio != 1.0:
            raise ValueError("the Transformer decodes all target positions at once: it trains with full "
                             "teacher forcing only (teacher_forcing_ratio=1.0)")
        return DecoderOutput(self.decode(tgt_in, self.encode(src, src_lengths)), None)


def cross_attentions(model: TransformerSeq2Seq) -> list[nn.MultiheadAttention]:
    """The decoder layers' source attentions (``multihead_attn``), first layer first."""
    return [layer.multihead_attn for layer in model.transformer.decoder.layers]


def uniform_cross_attention(model: TransformerSeq2Seq) -> int:
    """Make every cross-attention uniform over the real source tokens, in place and for good.

    The query and key projections (weights and biases) are set to zero and their gradients are
    zeroed by hooks, so every energy stays 0 and the softmax gives each real source token
    ``1 / length``. The values and the output projection still train. Returns the layers changed.
    """
    for mha in cross_attentions(model):
        if not mha._qkv_same_embed_dim:
            raise ValueError("uniform_cross_attention expects packed in_proj weights")
        rows = torch.ones(3 * mha.embed_dim, 1)
        rows[: 2 * mha.embed_dim] = 0.0     # query and key rows of the packed projection
        with torch.no_grad():
            mha.in_proj_weight.mul_(rows)
            mha.in_proj_bias.mul_(rows[:, 0])
        mha.in_proj_weight.register_hook(lambda grad, rows=rows: grad * rows.to(grad))
        mha.in_proj_bias.register_hook(lambda grad, rows=rows: grad * rows[:, 0].to(grad))
    return len(model.transformer.decoder.layers)


__all__ = ["TransformerSeq2Seq", "TransformerSteps", "causal_mask", "cross_attentions",
           "sinusoidal_positions", "uniform_cross_attention"]
