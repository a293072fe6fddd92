"""The LSTM encoder: embeddings, packed sequences, and the states every decoder reads."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course.data.vocab import PAD
from course.masks import lengths_to_mask

MAX_LENGTH_GROUPS = 4  # more distinct lengths than this in one batch: pack instead


class EncoderOutput(NamedTuple):
    """Encoder states ``[B, S, H]`` (both directions concatenated), the final states, the key mask."""

    outputs: Tensor
    hidden: Tensor  # [layers, B, H]
    cell: Tensor    # [layers, B, H]
    mask: Tensor    # [B, S], True on real tokens


def check_lengths(src: Tensor, lengths: Tensor, max_len: int | None = None) -> None:
    """Validate ids and lengths together so bad batches fail with a message, not a CUDA-style crash."""
    if src.dim() != 2:
        raise ValueError(f"source ids must be [batch, time], got shape {tuple(src.shape)}")
    if lengths.dim() != 1 or lengths.size(0) != src.size(0):
        raise ValueError(
            f"mismatched batch sizes: {src.size(0)} source rows but lengths of shape {tuple(lengths.shape)}"
        )
    if src.size(0) == 0:
        raise ValueError("empty batch: give at least one sequence")
    if int(lengths.min()) < 1:
        raise ValueError(f"empty sequences in the batch (lengths {lengths.tolist()[:10]}...); every source needs a token")
    if int(lengths.max()) > src.size(1):
        raise ValueError(f"a length ({int(lengths.max())}) exceeds the padded width {src.size(1)}")
    if max_len is not None and int(lengths.max()) > max_len:
        raise ValueError(
            f"a source of {int(lengths.max())} tokens exceeds this model's configured maximum of "
            f"{max_len}; truncate the input or build the model with a larger max_len"
        )


class LSTMEncoder(nn.Module):
    """Embed, run a (bi)LSTM over packed sequences, and return every state plus the final ones.

    Packing means padding never enters the recurrence, so a sequence's states do not depend on
    how long the other sequences in its batch are.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = True, dropout: float = 0.0, max_len: int | None = None):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.hidden_size = hidden_size
        self.max_len = max_len
        self.output_size = hidden_size * (2 if bidirectional else 1)

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        check_lengths(src, lengths, self.max_len)
        if int(src.max()) >= self.embedding.num_embeddings or int(src.min()) < 0:
            raise ValueError(
                f"source ids must lie in [0, {self.embedding.num_embeddings}); got ids up to {int(src.max())}"
            )
        embedded = self.dropout(self.embedding(src))
        outputs, (h, c) = self.run_lstm(embedded, lengths)
        if self.bidirectional:
            h = torch.cat([h[0::2], h[1::2]], dim=-1)  # [layers, B, 2H]
            c = torch.cat([c[0::2], c[1::2]], dim=-1)
        return EncoderOutput(outputs, h, c, lengths_to_mask(lengths, src.size(1)).to(src.device))

    def run_lstm(self, embedded: Tensor, lengths: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """The LSTM over a padded batch, with padding kept out of the recurrence.

        Packing does that in general, but on CPU a packed LSTM's backward pass is several times
        slower than a plain one. Length-bucketed batches hold only a few distinct lengths, so
        each group of equal length runs unpacked (exactly the same computation) and the groups
        are put back in batch order; a batch with many distinct lengths is packed.
        """
        width = embedded.size(1)
        distinct = torch.unique(lengths).tolist()
        if len(distinct) > MAX_LENGTH_GROUPS:
            packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True,
                                          enforce_sorted=False)
            packed_out, state = self.lstm(packed)
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=width)
            return outputs, state
        if distinct == [width]:
            return self.lstm(embedded)
        rows, outs, hs, cs = [], [], [], []
        for n in distinct:
            group = (lengths == n).nonzero().flatten().to(embedded.device)
            out, (h, c) = self.lstm(embedded.index_select(0, group)[:, :n])
            rows.append(group)
            outs.append(nn.functional.pad(out, (0, 0, 0, width - n)))
            hs.append(h)
            cs.append(c)
        order = torch.argsort(torch.cat(rows))  # back to the batch's own order
        outputs = torch.cat(outs).index_select(0, order)
        return outputs, (torch.cat(hs, 1).index_select(1, order), torch.cat(cs, 1).index_select(1, order))
