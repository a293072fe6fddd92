"""The pointer-generator network of See, Liu & Manning (2017): attention seq2seq that can copy.

The course's encoder and Bahdanau decoder, plus one gate. At step t, from the context vector
``c_t``, the decoder state ``s_t`` and the decoder input ``x_t``::

    p_gen = sigmoid(w_c · c_t + w_s · s_t + w_x · x_t + b)
    P(w)  = p_gen · P_vocab(w) + (1 − p_gen) · Σ_{i : x_i = w} a_t,i

(:func:`course.seq2seq.pointer.pointer_generator_distribution`). The copy distribution *is* the attention,
so a word missing from the vocabulary (a name, a number) can be written by attending to it. With
``copy=False`` the gate is fixed at 1 and the model is the attention baseline. With
``coverage=True`` in the config, the coverage vector feeds the attention score and
:func:`pointer_generator_loss` adds See et al.'s coverage loss ``Σ_i min(a_t,i, c_t,i)``.

Batches (:class:`PointerBatch`) carry both id spaces: vocabulary ids (``<unk>`` for unknown
words; what the encoder reads and what a baseline is trained on) and extended ids (each
sentence's unknown source words numbered after the vocabulary; what the copy path writes to).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from course.attention.coverage import coverage_loss
from course.data.batches import ModelBatch, pad_sequences
from course.data.vocab import EOS, PAD, SOS, UNK, Vocab
from course.masks import lengths_to_mask
from course.seq2seq import Seq2SeqConfig, build_attention
from course.seq2seq.decoders import BahdanauDecoder, DecoderState
from course.seq2seq.encoder import EncoderOutput, LSTMEncoder
from course.seq2seq.pointer import (
    decode_extended,
    extended_source_ids,
    extended_target_ids,
    pointer_generator_distribution,
    pointer_nll,
)


@dataclass
class PointerBatch(ModelBatch):
    """A padded batch in both id spaces; field names shared with :class:`course.data.batches.Batch`."""

    src: Tensor          # [B, S] vocabulary ids (<unk> for unknown words)
    src_lengths: Tensor  # [B]
    src_mask: Tensor     # [B, S]
    tgt_in: Tensor       # [B, T] SOS y1 .. yn, vocabulary ids
    tgt_out: Tensor      # [B, T] y1 .. yn EOS, vocabulary ids
    indices: Tensor      # [B] positions in the example list
    src_ext: Tensor      # [B, S] extended ids
    tgt_out_ext: Tensor  # [B, T] extended ids (copyable unknown words keep their own id)
    unknown: list[list[str]]  # each source's unknown words, in extended-id order
    extra_words: int     # the most unknown words in one source of the batch

    input_fields = ("src", "src_lengths", "tgt_in", "src_ext", "extra_words")
    target_field = "tgt_out_ext"


def encode_pair(example: dict, vocab: Vocab) -> tuple[list[int], list[int], list[int], list[int], list[str]]:
    """``(src, src_ext, tgt, tgt_ext, unknown)`` ids of one ``{"src": [...], "tgt": [...]}`` pair."""
    src, src_ext, unknown = extended_source_ids(example["src"], vocab)
    tgt = [vocab.stoi.get(token, UNK) for token in example["tgt"]]
    tgt_ext = extended_target_ids(example["tgt"], vocab, unknown)
    return src, src_ext, tgt, tgt_ext, unknown


def collate_pointer(encoded: Sequence[tuple], indices: Sequence[int]) -> PointerBatch:
    """Pad encoded pairs (from :func:`encode_pair`) into a :class:`PointerBatch`."""
    src, lengths = pad_sequences([e[0] for e in encoded])
    src_ext, _ = pad_sequences([e[1] for e in encoded])
    tgt_in, _ = pad_sequences([[SOS, *e[2]] for e in encoded])
    tgt_out, _ = pad_sequences([[*e[2], EOS] for e in encoded])
    tgt_out_ext, _ = pad_sequences([[*e[3], EOS] for e in encoded])
    unknown = [list(e[4]) for e in encoded]
    return PointerBatch(src, lengths, lengths_to_mask(lengths, src.size(1)), tgt_in, tgt_out,
                        torch.as_tensor(list(indices), dtype=torch.long), src_ext, tgt_out_ext, unknown,
                        max((len(u) for u in unknown), default=0))


class PointerBatches:
    """Batches of ``{"src", "tgt"}`` examples for :func:`course.training.fit`, reshuffled each pass
    when ``shuffle`` (with the seeded ``generator``)."""

    def __init__(self, examples: Sequence[dict], vocab: Vocab, batch_size: int = 32, shuffle: bool = False,
                 generator: torch.Generator | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.encoded = [encode_pair(e, vocab) for e in examples]
        self.batch_size, self.shuffle, self.generator = batch_size, shuffle, generator

    def __len__(self) -> int:
        return (len(self.encoded) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[PointerBatch]:
        n = len(self.encoded)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else list(range(n))
        for start in range(0, n, self.batch_size):
            chunk = order[start:start + self.batch_size]
            yield collate_pointer([self.encoded[i] for i in chunk], chunk)


class PointerOutput(NamedTuple):
    probs: Tensor      # [B, T, V + extra] over the extended vocabulary
    attention: Tensor  # [B, T, S]: the copy distribution
    p_gen: Tensor      # [B, T]


class PointerGeneratorDecoder(BahdanauDecoder):
    """Bahdanau's decoder with the generation gate: ``gate`` holds ``w_c, w_s, w_x`` and ``b``."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, encoder_size: int,
                 attention: nn.Module, num_layers: int = 1, dropout: float = 0.0, copy: bool = True):
        super().__init__(vocab_size, embed_dim, hidden_size, encoder_size, attention, num_layers, dropout)
        self.copy = copy
        self.gate = nn.Linear(encoder_size + hidden_size + embed_dim, 1)

    def pointer_step(self, prev_tokens: Tensor, state: DecoderState, memory: EncoderOutput, prepared: Tensor | None,
                     src_ext: Tensor, extra_words: int) -> tuple[Tensor, DecoderState, Tensor, Tensor]:
        """One step: ``(probs [B, V + extra], state, attention [B, S], p_gen [B])``.

        ``prev_tokens`` may hold extended ids (a copied unknown word): they are read as ``<unk>``.
        """
        prev_tokens = prev_tokens.masked_fill(prev_tokens >= self.vocab_size, UNK)
        h, c, attention_state = state.h, state.c, state.attention
        embedded = self.dropout(self.embedding(prev_tokens))
        context, weights = self.attention(h[-1].unsqueeze(1), memory.outputs, mask=memory.mask,
                                          prepared=prepared, state=attention_state)
        context = context.squeeze(1)
        output, (h, c) = self.lstm(torch.cat([embedded, context], -1), (h, c))
        hidden = torch.tanh(self.combine(torch.cat([output, context, embedded], -1)))
        if attention_state is not None:
            attention_state = self.attention.advance(attention_state, weights)
        new_state = DecoderState(h, c, None, attention_state)
        weights = weights.squeeze(-2)                                            # [B, S]
        vocab_probs = torch.softmax(self.out(self.dropout(hidden)), -1)
        if self.copy:
            p_gen = torch.sigmoid(self.gate(torch.cat([context, output, embedded], -1))).squeeze(-1)
        else:
            p_gen = torch.ones_like(vocab_probs[:, 0])
        probs = pointer_generator_distribution(vocab_probs[:, None], weights[:, None], p_gen[:, None],
                                               src_ext, extra_words)[:, 0]
        return probs, new_state, weights, p_gen


class PointerGenerator(nn.Module):
    """The course's BiLSTM encoder and :class:`PointerGeneratorDecoder`, one shared vocabulary."""

    def __init__(self, config: Seq2SeqConfig, copy: bool = True):
        super().__init__()
        if config.decoder != "bahdanau":
            raise ValueError(f"the pointer-generator uses Bahdanau's decoder; got decoder={config.decoder!r}")
        if config.src_vocab_size != config.tgt_vocab_size:
            raise ValueError("copying writes source words as output words: the source and target vocabularies "
                             f"must be one (sizes {config.src_vocab_size} and {config.tgt_vocab_size})")
        self.config = config
        self.encoder = LSTMEncoder(config.src_vocab_size, config.embed_dim, config.hidden_size,
                                   num_layers=config.num_layers, bidirectional=config.bidirectional,
                                   dropout=config.dropout, max_len=config.max_src_len)
        size = self.encoder.output_size
        self.decoder = PointerGeneratorDecoder(config.tgt_vocab_size, config.embed_dim, config.hidden_size, size,
                                               build_attention(config, config.hidden_size, size),
                                               config.num_layers, config.dropout, copy=copy)

    @property
    def copy(self) -> bool:
        return self.decoder.copy

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, src_ext: Tensor,
                extra_words: int) -> PointerOutput:
        """Teacher-forced: the distributions over the extended vocabulary for every target step."""
        if src_ext.shape != src.shape:
            raise ValueError(f"src_ext must match src {tuple(src.shape)}, got {tuple(src_ext.shape)}")
        memory = self.encoder(src, src_lengths)
        self.decoder.check_targets(tgt_in.masked_fill(tgt_in >= self.config.tgt_vocab_size, UNK), memory)
        state = self.decoder.init_state(memory)
        prepared = self.decoder.prepare(memory)
        probs, attention, gates = [], [], []
        for t in range(tgt_in.size(1)):
            p, state, weights, p_gen = self.decoder.pointer_step(tgt_in[:, t], state, memory, prepared,
                                                                 src_ext, extra_words)
            probs.append(p)
            attention.append(weights)
            gates.append(p_gen)
        return PointerOutput(torch.stack(probs, 1), torch.stack(attention, 1), torch.stack(gates, 1))


def pointer_generator_loss(model: PointerGenerator, batch: PointerBatch,
                           coverage_weight: float | None = None) -> Tensor:
    """Negative log-likelihood of the extended targets plus ``coverage_weight`` × the coverage loss
    (default 1 when the config has coverage, else 0): a ``loss_fn`` for :func:`course.training.fit`.

    Without the copy path the targets are the vocabulary ids (unknown words are ``<unk>``), as for
    the attention baseline.
    """
    out = model(batch.src, batch.src_lengths, batch.tgt_in, batch.src_ext, batch.extra_words)
    targets = batch.tgt_out_ext if model.copy else batch.tgt_out
    loss = pointer_nll(out.probs, targets)
    if coverage_weight is None:
        coverage_weight = 1.0 if model.config.coverage else 0.0
    if coverage_weight:
        loss = loss + coverage_weight * coverage_loss(out.attention, batch.tgt_out != PAD)
    return loss


@dataclass
class PointerHypothesis:
    """A greedy summary: its words, extended ids, attention rows ``[n, S]`` and ``p_gen [n]``
    (one per emitted word, the EOS step included)."""

    words: list[str]
    ids: list[int]
    attention: Tensor
    p_gen: Tensor


@torch.no_grad()
def pointer_greedy_decode(model: PointerGenerator, batch: PointerBatch, vocab: Vocab,
                          max_len: int = 20) -> list[PointerHypothesis]:
    """The most probable extended word at each step, for a whole batch at once."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    model.eval()
    decoder = model.decoder
    memory = model.encoder(batch.src, batch.src_lengths)
    state, prepared = decoder.init_state(memory), decoder.prepare(memory)
    prev = torch.full((len(batch),), SOS, dtype=torch.long, device=batch.src.device)
    finished = torch.zeros(len(batch), dtype=torch.bool, device=batch.src.device)
    ids, rows, gates = [], [], []
    for _ in range(max_len):
        probs, state, weights, p_gen = decoder.pointer_step(prev, state, memory, prepared, batch.src_ext,
                                                            batch.extra_words)
        prev = probs.argmax(-1)
        ids.append(prev)
        rows.append(weights)
        gates.append(p_gen)
        finished |= prev == EOS
        if bool(finished.all()):
            break
    ids_t, rows_t, gates_t = torch.stack(ids, 1).tolist(), torch.stack(rows, 1), torch.stack(gates, 1)
    out = []
    for b, seq in enumerate(ids_t):
        n = seq.index(EOS) if EOS in seq else len(seq)
        keep = min(n + 1, len(seq))
        words = decode_extended(seq[:n], vocab, batch.unknown[b])
        out.append(PointerHypothesis(words, seq[:n], rows_t[b, :keep].cpu(), gates_t[b, :keep].cpu()))
    return out
