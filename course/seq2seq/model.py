"""An encoder and a decoder as one model, built from a plain config that checkpoints carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from course.attention import Attention
from course.attention.normalizers import NORMALIZERS, make_normalizer
from course.attention.scores import check_score_options, make_score
from course.attention.windows import WINDOWS, make_window
from course.seq2seq.decoders import BahdanauDecoder, DecoderOutput, LuongDecoder, PlainDecoder
from course.seq2seq.encoder import EncoderOutput, LSTMEncoder

DECODERS = ("plain", "bahdanau", "luong")
MAX_TGT_LEN = 80  # the longest output greedy decoding and beam search produce, unless configured
SAME_SIZE_SCORES = ("dot", "scaled_dot")
ATTENTION_FIELDS = ("score", "normalizer", "temperature", "window", "window_half_width", "heads",
                    "coverage", "attention_chunk_size", "input_feeding")


@dataclass
class Seq2SeqConfig:
    """Everything needed to rebuild a model: saved as JSON beside the weights.

    The attention fields pick one choice on each axis of the attention zoo (defaults are
    Bahdanau's additive softmax attention over every source token):

    - ``score``: ``'concat'`` (= ``'additive'``), ``'dot'``, ``'general'``, ``'scaled_dot'``,
      ``'cosine'``, ``'location'`` (needs ``max_src_len``), ``'location_aware'``, ``'multihead'``
      (with ``heads`` dividing the encoder output size);
    - ``normalizer``: ``'softmax'``, ``'sparsemax'``, ``'entmax15'``, ``'hard_gumbel'``,
      ``'hard_reinforce'``; ``temperature`` divides the energies;
    - ``window``: ``'global'``, ``'local_m'``, ``'local_p'`` with half-width ``window_half_width``;
    - query and feed: ``decoder`` (Bahdanau's previous state or Luong's current one),
      ``input_feeding`` (Luong only), ``coverage`` (additive or location-aware scores);
    - ``attention_chunk_size``: score at most this many queries at once (additive scores).
    """

    src_vocab_size: int
    tgt_vocab_size: int
    decoder: str = "bahdanau"
    embed_dim: int = 64
    hidden_size: int = 128
    attention_units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0
    input_feeding: bool = False
    max_src_len: int | None = None
    max_tgt_len: int = MAX_TGT_LEN
    score: str = "concat"
    normalizer: str = "softmax"
    temperature: float = 1.0
    window: str = "global"
    window_half_width: int = 10
    heads: int = 1
    coverage: bool = False
    attention_chunk_size: int | None = None

    @property
    def encoder_size(self) -> int:
        """Width of the encoder states the attention reads (keys and values)."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; choose one of {DECODERS}")
        for name in ("src_vocab_size", "tgt_vocab_size", "embed_dim", "hidden_size",
                     "attention_units", "num_layers", "max_tgt_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        self.check_attention()

    def check_attention(self) -> None:
        """Reject attention settings that cannot work together, saying what to change."""
        check_score_options(self.score, coverage=self.coverage, heads=self.heads,
                            max_keys=self.max_src_len)
        if self.normalizer not in NORMALIZERS:
            raise ValueError(f"unknown normalizer {self.normalizer!r}; choose one of {NORMALIZERS}")
        if self.window not in WINDOWS:
            raise ValueError(f"unknown window {self.window!r}; choose one of {WINDOWS}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.window_half_width < 1:
            raise ValueError(f"window_half_width must be at least 1 (the window [p_t - D, p_t + D] must reach "
                             f"a real key), got {self.window_half_width}")
        if self.attention_chunk_size is not None and self.attention_chunk_size < 1:
            raise ValueError(f"attention_chunk_size must be a positive number of queries or None, "
                             f"got {self.attention_chunk_size}")
        if self.decoder == "plain":
            changed = [f.name for f in fields(self) if f.name in ATTENTION_FIELDS
                       and getattr(self, f.name) != f.default]
            if changed:
                raise ValueError(f"decoder='plain' has no attention, so {changed} cannot apply; "
                                 "choose decoder='bahdanau' or 'luong', or leave them at their defaults")
            return
        if self.input_feeding and self.decoder != "luong":
            raise ValueError(f"input_feeding feeds Luong's attentional vector back into the LSTM; it needs "
                             f"decoder='luong' (got decoder={self.decoder!r}), or set input_feeding=False")
        if self.score == "multihead":
            if self.encoder_size % self.heads != 0:
                raise ValueError(
                    f"heads={self.heads} must divide the encoder output size {self.encoder_size} "
                    f"(hidden_size={self.hidden_size}{' x 2, bidirectional' if self.bidirectional else ''}); "
                    f"choose heads among {[h for h in range(1, 17) if self.encoder_size % h == 0]}"
                )
        if self.score in SAME_SIZE_SCORES and self.encoder_size != self.hidden_size:
            raise ValueError(
                f"score={self.score!r} compares the decoder state (hidden_size={self.hidden_size}) with "
                f"encoder states of size {self.encoder_size} directly; set bidirectional=False or choose "
                "score='general' (which learns the map between the two)"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seq2SeqConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known keys are {sorted(known)}")
        return cls(**data)


class Seq2Seq(nn.Module):
    """Encode the source once, then decode with teacher forcing (training) or step by step."""

    def __init__(self, encoder: LSTMEncoder, decoder: nn.Module, config: Seq2SeqConfig | None = None,
                 max_tgt_len: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.config = config
        self._max_tgt_len = max_tgt_len

    @property
    def max_tgt_len(self) -> int:
        """The decoding length limit: the argument, else the config's, else :data:`MAX_TGT_LEN`."""
        if self._max_tgt_len is not None:
            return self._max_tgt_len
        return self.config.max_tgt_len if self.config is not None else MAX_TGT_LEN

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.encoder(src, src_lengths)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor,
                teacher_forcing_ratio: float = 1.0,
                generator: torch.Generator | None = None) -> DecoderOutput:
        if tgt_in.dim() != 2 or src.dim() != 2 or tgt_in.size(0) != src.size(0):
            raise ValueError(
                f"mismatched batch sizes: source {tuple(src.shape)} and target {tuple(tgt_in.shape)} "
                "must both be [batch, time] with the same batch"
            )
        memory = self.encode(src, src_lengths)
        return self.decoder(tgt_in, memory, teacher_forcing_ratio=teacher_forcing_ratio,
                            generator=generator)


def build_attention(config: Seq2SeqConfig, query_size: int, key_size: int) -> Attention:
    """The attention a config describes: score, normaliser and window, composed."""
    score = make_score(config.score, query_size, key_size, config.attention_units, heads=config.heads,
                       max_keys=config.max_src_len, chunk_size=config.attention_chunk_size,
                       coverage=config.coverage)
    window = make_window(config.window, config.window_half_width, query_size, config.attention_units)
    return Attention(score, make_normalizer(config.normalizer, config.temperature), window)


def build_seq2seq(config: Seq2SeqConfig) -> Seq2Seq:
    """Build the model a config describes (the same call rebuilds it from a checkpoint)."""
    encoder = LSTMEncoder(config.src_vocab_size, config.embed_dim, config.hidden_size,
                          num_layers=config.num_layers, bidirectional=config.bidirectional,
                          dropout=config.dropout, max_len=config.max_src_len)
    enc_size = encoder.output_size
    common = dict(vocab_size=config.tgt_vocab_size, embed_dim=config.embed_dim,
                  hidden_size=config.hidden_size, encoder_size=enc_size,
                  num_layers=config.num_layers, dropout=config.dropout)
    if config.decoder == "plain":
        decoder: nn.Module = PlainDecoder(**common)
    elif config.decoder == "bahdanau":
        decoder = BahdanauDecoder(attention=build_attention(config, config.hidden_size, enc_size), **common)
    else:
        decoder = LuongDecoder(attention=build_attention(config, config.hidden_size, enc_size),
                               input_feeding=config.input_feeding, **common)
    return Seq2Seq(encoder, decoder, config)
