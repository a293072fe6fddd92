"""The batch types: one base, one subclass per input shape, and the padding that builds them.

Every batch is a :class:`ModelBatch`: a dataclass of batch-first tensors that moves to a device
as a whole and says which fields the model takes and which the loss compares with. Batches keep
``indices`` (positions in the example list) so a lesson can find the gold evidence of the
examples in a batch again. All token tensors are right-padded with PAD.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor

from course.data.vocab import PAD

IGNORE_TAG = -100


class ModelBatch:
    """What every batch is: a dataclass of tensors (batch first) that knows the model's inputs.

    A subclass lists the fields the model takes, in order (``input_fields``), and the field the
    loss compares the output with (``target_field``); :func:`course.training.fit` and the losses
    use :meth:`inputs` and :attr:`targets`, so no code needs to know the batch type.
    """

    input_fields: ClassVar[tuple[str, ...]] = ()
    target_field: ClassVar[str] = ""

    def __len__(self) -> int:
        return getattr(self, fields(self)[0].name).size(0)  # type: ignore[arg-type]

    def inputs(self) -> tuple[Tensor, ...]:
        """The model's positional inputs, in order."""
        return tuple(getattr(self, name) for name in self.input_fields)

    @property
    def targets(self) -> Tensor:
        """What the loss compares the model's output with."""
        if not self.target_field:
            raise TypeError(f"a {type(self).__name__} carries no targets")
        return getattr(self, self.target_field)

    def map(self, fn: Callable[[Tensor], Tensor]) -> ModelBatch:
        """The batch with ``fn`` applied to every tensor field (device moves, repeats); other
        fields (word lists, counts) are kept as they are."""
        values = (getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]
        return type(self)(*(fn(v) if isinstance(v, Tensor) else v for v in values))

    def to(self, device: torch.device | str) -> ModelBatch:
        return self.map(lambda t: t.to(device))


@dataclass
class Batch(ModelBatch):
    """A padded batch. ``tgt_in`` starts with SOS, ``tgt_out`` ends with EOS (teacher forcing)."""

    src: Tensor          # [B, S] source ids, PAD after each length
    src_lengths: Tensor  # [B]
    src_mask: Tensor     # [B, S] True on real tokens
    tgt_in: Tensor       # [B, T] SOS y1 .. yn
    tgt_out: Tensor      # [B, T] y1 .. yn EOS
    indices: Tensor      # [B] positions in the dataset, to find gold alignments again

    input_fields = ("src", "src_lengths", "tgt_in")
    target_field = "tgt_out"


@dataclass
class TextBatch(ModelBatch):
    """One sequence per example and a class label."""

    tokens: Tensor   # [B, S]
    lengths: Tensor  # [B]
    mask: Tensor     # [B, S] True on real tokens
    labels: Tensor   # [B]
    indices: Tensor  # [B]

    input_fields = ("tokens", "lengths")
    target_field = "labels"


@dataclass
class DocumentBatch(ModelBatch):
    """Documents as sentences of words; empty (padding) sentences have length 0."""

    tokens: Tensor            # [B, N, W]
    sentence_lengths: Tensor  # [B, N] words per sentence, 0 for padding sentences
    labels: Tensor            # [B]
    indices: Tensor           # [B]

    input_fields = ("tokens", "sentence_lengths")
    target_field = "labels"


@dataclass
class PairBatch(ModelBatch):
    """Two sequences per example (premise, hypothesis) and a class label."""

    premise: Tensor             # [B, P]
    premise_lengths: Tensor     # [B]
    hypothesis: Tensor          # [B, H]
    hypothesis_lengths: Tensor  # [B]
    labels: Tensor              # [B]
    indices: Tensor             # [B]

    input_fields = ("premise", "premise_lengths", "hypothesis", "hypothesis_lengths")
    target_field = "labels"


@dataclass
class StoryBatch(ModelBatch):
    """A story as memories (sentences), a question, and the answer word's id."""

    story: Tensor            # [B, M, W]
    story_lengths: Tensor    # [B, M] words per memory, 0 for padding memories
    question: Tensor         # [B, Q]
    question_lengths: Tensor # [B]
    answers: Tensor          # [B] vocabulary ids
    indices: Tensor          # [B]

    input_fields = ("story", "story_lengths", "question", "question_lengths")
    target_field = "answers"


@dataclass
class TagBatch(ModelBatch):
    """Token sequences and one tag per token; padded tags are -100 (ignored by cross-entropy)."""

    tokens: Tensor   # [B, S]
    lengths: Tensor  # [B]
    tags: Tensor     # [B, S]
    indices: Tensor  # [B]

    input_fields = ("tokens", "lengths")
    target_field = "tags"


@dataclass
class WindowBatch(ModelBatch):
    """Windows of a time series and the values that follow them."""

    window: Tensor  # [B, L] (or [B, L, features])
    target: Tensor  # [B, horizon]

    input_fields = ("window",)
    target_field = "target"


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


def pad_nested(nested: Sequence[Sequence[Sequence[int]]]) -> tuple[Tensor, Tensor]:
    """Lists of lists of ids to ``[B, N, W]`` ids and ``[B, N]`` lengths (0 for padding rows)."""
    rows = max(len(x) for x in nested)
    width = max(len(s) for x in nested for s in x)
    ids = torch.full((len(nested), rows, width), PAD, dtype=torch.long)
    lengths = torch.zeros(len(nested), rows, dtype=torch.long)
    for b, sentences in enumerate(nested):
        for n, sentence in enumerate(sentences):
            ids[b, n, : len(sentence)] = torch.as_tensor(sentence, dtype=torch.long)
            lengths[b, n] = len(sentence)
    return ids, lengths
