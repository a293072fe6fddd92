"""Pairs of token lists to padded tensors: ids, lengths and key masks in one ``Batch``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from course.vocab import EOS, PAD, SOS, Vocab


@dataclass
class Batch:
    """A padded batch. ``tgt_in`` starts with SOS, ``tgt_out`` ends with EOS (teacher forcing)."""

    src: Tensor          # [B, S] source ids, PAD after each length
    src_lengths: Tensor  # [B]
    src_mask: Tensor     # [B, S] True on real tokens
    tgt_in: Tensor       # [B, T] SOS y1 .. yn
    tgt_out: Tensor      # [B, T] y1 .. yn EOS
    indices: Tensor      # [B] positions in the dataset, to find gold alignments again

    def __len__(self) -> int:
        return self.src.size(0)

    def map(self, fn: Callable[[Tensor], Tensor]) -> Batch:
        """The batch with ``fn`` applied to every tensor field (device moves, repeats)."""
        return Batch(*(fn(getattr(self, f.name)) for f in dataclasses.fields(self)))

    def to(self, device: torch.device | str) -> Batch:
        return self.map(lambda t: t.to(device))


def pad_sequences(sequences: Sequence[Sequence[int]], pad_id: int = PAD) -> tuple[Tensor, Tensor]:
    """Right-pad id lists into ``[B, max_len]`` and return it with the lengths."""
    if len(sequences) == 0:
        raise ValueError("cannot pad an empty batch: give at least one sequence")
    lengths = [len(s) for s in sequences]
    if min(lengths) == 0:
        raise ValueError(f"sequence {lengths.index(0)} of the batch is empty; every sequence needs a token")
    out = torch.full((len(sequences), max(lengths)), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.as_tensor(list(seq), dtype=torch.long)
    return out, torch.as_tensor(lengths, dtype=torch.long)


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """``[B]`` lengths to a ``[B, max_len]`` mask that is True on real positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class PairDataset(Dataset):
    """Tokenised (source, target) pairs encoded once with the two vocabularies."""

    def __init__(self, pairs: Sequence[dict[str, Any]], src_vocab: Vocab, tgt_vocab: Vocab,
                 unknown: Literal["error", "unk"] = "error"):
        self.pairs = list(pairs)
        self.src = []
        self.tgt = []
        for i, pair in enumerate(self.pairs):
            if not pair["src"] or not pair["tgt"]:
                raise ValueError(f"pair {i} has an empty source or target: {pair}")
            try:
                self.src.append(src_vocab.encode(pair["src"], unknown=unknown))
                self.tgt.append(tgt_vocab.encode(pair["tgt"], unknown=unknown))
            except KeyError as err:
                raise KeyError(f"pair {i}: {err.args[0]}") from None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[list[int], list[int], int]:
        return self.src[index], self.tgt[index], index


def collate_pairs(items: Sequence[tuple[list[int], list[int], int]]) -> Batch:
    """Pad sources and build teacher-forcing inputs and outputs for the targets."""
    src, lengths = pad_sequences([s for s, _, _ in items])
    tgt_in, _ = pad_sequences([[SOS, *t] for _, t, _ in items])
    tgt_out, _ = pad_sequences([[*t, EOS] for _, t, _ in items])
    indices = torch.as_tensor([i for _, _, i in items], dtype=torch.long)
    return Batch(src, lengths, lengths_to_mask(lengths, src.size(1)), tgt_in, tgt_out, indices)


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar source length, in a shuffled order.

    A step-loop decoder runs as many steps as the longest target in the batch; grouping similar
    lengths cuts the padded steps, which is most of the time on CPU.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 generator: torch.Generator | None = None):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        else:
            order = list(range(len(self.lengths)))
        order.sort(key=lambda i: self.lengths[i])  # stable: ties keep the shuffled order
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=self.generator).tolist()]
        return iter(batches)


def make_loader(pairs: Sequence[dict[str, Any]], src_vocab: Vocab, tgt_vocab: Vocab,
                batch_size: int = 64, shuffle: bool = False,
                generator: torch.Generator | None = None,
                bucket_by_length: bool = False, unknown: Literal["error", "unk"] = "error") -> DataLoader:
    """A DataLoader of ``Batch`` objects; pass a seeded ``generator`` for a repeatable order.

    A word missing from a vocabulary raises by default (a silent ``<unk>`` hides data bugs on the
    generated tasks); ``unknown="unk"`` maps it to ``<unk>`` on purpose, as real text with a
    frequency-capped vocabulary needs.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if unknown not in ("error", "unk"):
        raise ValueError(f"unknown must be 'error' (raise on a word missing from the vocabulary) or "
                         f"'unk' (map it to <unk>), got {unknown!r}")
    dataset = PairDataset(pairs, src_vocab, tgt_vocab, unknown=unknown)
    if bucket_by_length:
        sampler = LengthBucketSampler([len(s) for s in dataset.src], batch_size, shuffle, generator)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=collate_pairs,
                      generator=generator)
