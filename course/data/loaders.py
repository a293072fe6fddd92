"""DataLoaders for every task: encode the examples, pad them into batches, bucket by length.

:func:`build_loader` is the one place a DataLoader is made (batch-size check, optional
length-bucketed sampling); :func:`make_loader` serves the seq2seq pairs and the
``make_*_loader`` functions the other tasks, each with its own collate function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from course.data.batches import (
    IGNORE_TAG,
    Batch,
    DocumentBatch,
    PairBatch,
    StoryBatch,
    TagBatch,
    TextBatch,
    pad_nested,
    pad_sequences,
)
from course.data.vocab import EOS, SOS, Vocab
from course.masks import lengths_to_mask


def build_loader(items: Sequence[Any], collate: Callable[[Sequence[Any]], Any], batch_size: int,
                 shuffle: bool = False, generator: torch.Generator | None = None,
                 lengths: Sequence[int] | None = None) -> DataLoader:
    """A DataLoader over ``items``; with ``lengths``, batches of similar length (shuffled order)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if lengths is not None:
        sampler = LengthBucketSampler(lengths, batch_size, shuffle, generator)
        return DataLoader(items, batch_sampler=sampler, collate_fn=collate)
    return DataLoader(items, batch_size=batch_size, shuffle=shuffle, collate_fn=collate,
                      generator=generator)


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
    if unknown not in ("error", "unk"):
        raise ValueError(f"unknown must be 'error' (raise on a word missing from the vocabulary) or "
                         f"'unk' (map it to <unk>), got {unknown!r}")
    dataset = PairDataset(pairs, src_vocab, tgt_vocab, unknown=unknown)
    lengths = [len(s) for s in dataset.src] if bucket_by_length else None
    return build_loader(dataset, collate_pairs, batch_size, shuffle, generator, lengths)


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
    return build_loader(items, collate_text, batch_size, shuffle, generator,
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
    return build_loader(items, collate_documents, batch_size, shuffle, generator, None)


def collate_premise_hypothesis(items: Sequence[tuple[list[int], list[int], int, int]]) -> PairBatch:
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
    return build_loader(items, collate_premise_hypothesis, batch_size, shuffle, generator, None)


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
    return build_loader(items, collate_stories, batch_size, shuffle, generator, None)


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
    return build_loader(items, collate_tags, batch_size, shuffle, generator, None)
