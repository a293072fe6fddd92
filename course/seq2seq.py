"""An encoder and a decoder as one model, built from a plain config that checkpoints carry."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from course.attention import bahdanau_attention
from course.decoders import BahdanauDecoder, DecoderOutput, LuongDecoder, PlainDecoder
from course.encoder import EncoderOutput, LSTMEncoder

DECODERS = ("plain", "bahdanau", "luong")


@dataclass
class Seq2SeqConfig:
    """Everything needed to rebuild a model: saved as JSON beside the weights."""

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
    max_tgt_len: int = 80

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; choose one of {DECODERS}")
        for name in ("src_vocab_size", "tgt_vocab_size", "embed_dim", "hidden_size",
                     "attention_units", "num_layers", "max_tgt_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

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

    def __init__(self, encoder: LSTMEncoder, decoder: nn.Module, config: Seq2SeqConfig | None = None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.config = config

    @property
    def max_tgt_len(self) -> int:
        return self.config.max_tgt_len if self.config is not None else 80

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
        attention = bahdanau_attention(config.hidden_size, enc_size, config.attention_units)
        decoder = BahdanauDecoder(attention=attention, **common)
    else:
        attention = bahdanau_attention(config.hidden_size, enc_size, config.attention_units)
        decoder = LuongDecoder(attention=attention, input_feeding=config.input_feeding, **common)
    return Seq2Seq(encoder, decoder, config)
