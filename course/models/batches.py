"""Examples of the non-seq2seq tasks to padded tensors, one batch type per input shape.

Each batch keeps ``indices`` (positions in the example list) so a lesson can find the gold
evidence of the examples in a batch again. All token tensors are right-padded with PAD.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from course.batching import LengthBucketSampler, lengths_to_mask, pad_sequences
from course.vocab import PAD, Vocab


class TensorBatch:
    """Shared behaviour: ``len`` is the batch size, ``to`` moves every tensor."""

    def __len__(self) -> int:
        return getattr(self, fields(self)[0].name).size(0)  # type: ignore[arg-type]

    def to(self, device: torch.device | str):  # noqa: ANN201 - returns the same batch type
        return type(self)(*(getattr(self, f.name).to(device) for f in fields(self)))  # type: ignore[arg-type]


@dataclass
class TextBatch(TensorBatch):
    """One sequence per example and a class label."""

    tokens: Tensor   # [B, S]
    lengths: Tensor  # [B]
    mask: Tensor     # [B, S] True on real tokens
    labels: Tensor   # [B]
    indices: Tensor  # [B]


@dataclass
class DocumentBatch(TensorBatch):
    """Documents as sentences of words; empty (padding) sentences have length 0."""

    tokens: Tensor            # [B, N, W]
    sentence_lengths: Tensor  # [B, N] words per sentence, 0 for padding sentences
    labels: Tensor            # [B]
    indices: Tensor           # [B]


@dataclass
class PairBatch(TensorBatch):
    """Two sequences per example (premise, hypothesis) and a class label."""

    premise: Tensor             # [B, P]
    premise_lengths: Tensor     # [B]
    hypothesis: Tensor          # [B, H]
    hypothesis_lengths: Tensor  # [B]
    labels: Tensor              # [B]
    indices: Tensor             # [B]


@dataclass
class StoryBatch(TensorBatch):
    """A story as memories (sentences), a question, and the answer word's id."""

    story: Tensor            # [B, M, W]
    story_lengths: Tensor    # [B, M] words per memory, 0 for padding memories
    question: Tensor         # [B, Q]
    question_lengths: Tensor # [B]
    answers: Tensor          # [B] vocabulary ids
    indices: Tensor          # [B]


@dataclass
class TagBatch(TensorBatch):
    """Token sequences and one tag per token; padded tags are -100 (ignored by cross-entropy)."""

    tokens: Tensor   # [B, S]
    lengths: Tensor  # [B]
    tags: Tensor     # [B, S]
    indices: Tensor  # [B]


@dataclass
class WindowBatch(TensorBatch):
    """Windows of a time series and the values that follow them."""

    window: Tensor  # [B, L] (or [B, L, features])
    target: Tensor  # [B, horizon]


IGNORE_TAG = -100


def label_ids(examples: Sequence[dict[str, Any]], labels: Sequence[str], key: str = "label") -> list[int]:
    """Map each example's label to its index in ``labels``, naming the example when it is unknown."""
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for i, example in enumerate(examples):
        if example.get(key) not in index:
            raise KeyError(f"example {i} has label {example.get(key)!r}, not one of {list(labels)}")
        out.append(index[example[key]])
    return out


def encode_all(sequences: Sequence[Sequence[str]], vocab: Vocab, what: str,
               unknown: str = "unk") -> list[list[int]]:
    """Encode token lists; an empty one is an error naming its position."""
    out = []
    for i, seq in enumerate(sequences):
        if len(seq) == 0:
            raise ValueError(f"{what} {i} is empty; every sequence needs at least one token")
        out.append(vocab.encode(seq, unknown=unknown))  # type: ignore[arg-type]
    return out


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


def _loader(items: list, collate, batch_size: int, shuffle: bool, generator: torch.Generator | None,
            lengths: Sequence[int] | None) -> DataLoader:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if lengths is not None:
        sampler = LengthBucketSampler(lengths, batch_size, shuffle, generator)
        return DataLoader(items, batch_sampler=sampler, collate_fn=collate)
    return DataLoader(items, batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                      generator=generator)


def collate_text(items: Sequence[tuple[list[int], int, int]]) -> TextBatch:
    tokens, lengths = pad_sequences([t for t, _, _ in items])
    return TextBatch(tokens, lengths, lengths_to_mask(lengths, tokens.size(1)),
                     torch.as_tensor([y for _, y, _ in items]), torch.as_tensor([i for _, _, i in items]))


def make_text_loader(examples: Sequence[dict[str, Any]], vocab: Vocab, labels: Sequence[str],
                     batch_size: int = 32, shuffle: bool = False,
                     generator: torch.Generator | None = None, bucket_by_length: bool = False,
                     field: str = "tokens") -> DataLoader:
    """Batches of :class:`TextBatch`; unknown words map to UNK (held-out text may have new words)."""
    ids = encode_all([e[field] for e in examples], vocab, "example")
    items = list(zip(ids, label_ids(examples, labels), range(len(examples))))
    return _loader(items, collate_text, batch_size, shuffle, generator,
                   [len(x) for x in ids] if bucket_by_length else None)


def collate_documents(items: Sequence[tuple[list[list[int]], int, int]]) -> DocumentBatch:
    tokens, lengths = pad_nested([d for d, _, _ in items])
    return DocumentBatch(tokens, lengths, torch.as_tensor([y for _, y, _ in items]),
                         torch.as_tensor([i for _, _, i in items]))


def make_document_loader(examples: Sequence[dict[str, Any]], vocab: Vocab, labels: Sequence[str],
                         batch_size: int = 32, shuffle: bool = False,
                         generator: torch.Generator | None = None) -> DataLoader:
    """Batches of :class:`DocumentBatch` from examples with a ``sentences`` list of token lists."""
    docs = []
    for i, example in enumerate(examples):
        if not example["sentences"]:
            raise ValueError(f"document {i} has no sentences")
        docs.append(encode_all(example["sentences"], vocab, f"document {i}, sentence"))
    items = list(zip(docs, label_ids(examples, labels), range(len(examples))))
    return _loader(items, collate_documents, batch_size, shuffle, generator, None)


def collate_pairs(items: Sequence[tuple[list[int], list[int], int, int]]) -> PairBatch:
    premise, premise_lengths = pad_sequences([p for p, _, _, _ in items])
    hypothesis, hypothesis_lengths = pad_sequences([h for _, h, _, _ in items])
    return PairBatch(premise, premise_lengths, hypothesis, hypothesis_lengths,
                     torch.as_tensor([y for _, _, y, _ in items]),
                     torch.as_tensor([i for _, _, _, i in items]))


def make_pair_loader(examples: Sequence[dict[str, Any]], vocab: Vocab, labels: Sequence[str],
                     batch_size: int = 32, shuffle: bool = False,
                     generator: torch.Generator | None = None) -> DataLoader:
    """Batches of :class:`PairBatch` from examples with ``premise`` and ``hypothesis`` tokens."""
    premises = encode_all([e["premise"] for e in examples], vocab, "premise")
    hypotheses = encode_all([e["hypothesis"] for e in examples], vocab, "hypothesis")
    items = list(zip(premises, hypotheses, label_ids(examples, labels), range(len(examples))))
    return _loader(items, collate_pairs, batch_size, shuffle, generator, None)


def collate_stories(items: Sequence[tuple[list[list[int]], list[int], int, int]]) -> StoryBatch:
    story, story_lengths = pad_nested([s for s, _, _, _ in items])
    question, question_lengths = pad_sequences([q for _, q, _, _ in items])
    return StoryBatch(story, story_lengths, question, question_lengths,
                      torch.as_tensor([a for _, _, a, _ in items]),
                      torch.as_tensor([i for _, _, _, i in items]))


def make_story_loader(examples: Sequence[dict[str, Any]], vocab: Vocab, batch_size: int = 32,
                      shuffle: bool = False, generator: torch.Generator | None = None) -> DataLoader:
    """Batches of :class:`StoryBatch` from examples with ``story``, ``question`` and ``answer``.

    The answer is a word of ``vocab`` (a memory network scores every vocabulary word).
    """
    items = []
    for i, example in enumerate(examples):
        if not example["story"]:
            raise ValueError(f"story {i} has no sentences")
        story = encode_all(example["story"], vocab, f"story {i}, sentence")
        question = encode_all([example["question"]], vocab, f"story {i}, question")[0]
        answer = vocab.encode([example["answer"]], unknown="unk")[0]
        items.append((story, question, answer, i))
    return _loader(items, collate_stories, batch_size, shuffle, generator, None)


def collate_tags(items: Sequence[tuple[list[int], list[int], int]]) -> TagBatch:
    tokens, lengths = pad_sequences([t for t, _, _ in items])
    tags = torch.full(tokens.shape, IGNORE_TAG, dtype=torch.long)
    for row, (_, seq_tags, _) in enumerate(items):
        tags[row, : len(seq_tags)] = torch.as_tensor(seq_tags, dtype=torch.long)
    return TagBatch(tokens, lengths, tags, torch.as_tensor([i for _, _, i in items]))


def make_tag_loader(examples: Sequence[dict[str, Any]], vocab: Vocab, tags: Sequence[str],
                    batch_size: int = 32, shuffle: bool = False,
                    generator: torch.Generator | None = None) -> DataLoader:
    """Batches of :class:`TagBatch` from examples with ``tokens`` and one of ``tags`` per token."""
    index = {tag: i for i, tag in enumerate(tags)}
    items = []
    for i, example in enumerate(examples):
        if len(example["tokens"]) != len(example["tags"]):
            raise ValueError(f"sentence {i} has {len(example['tokens'])} tokens but "
                             f"{len(example['tags'])} tags; they must match one to one")
        unknown = sorted(set(example["tags"]) - index.keys())
        if unknown:
            raise KeyError(f"sentence {i} has tags {unknown} not in {list(tags)}")
        ids = encode_all([example["tokens"]], vocab, f"sentence {i}")[0]
        items.append((ids, [index[t] for t in example["tags"]], i))
    return _loader(items, collate_tags, batch_size, shuffle, generator, None)
