"""Loss functions for :func:`course.training.fit` and evaluation helpers for the classifiers.

``fit`` calls ``loss_fn(model, batch, teacher_forcing_ratio=..., generator=...)``; these accept
and ignore the two seq2seq keywords so the same training loop serves every model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.models.batches import (
    IGNORE_TAG,
    DocumentBatch,
    PairBatch,
    StoryBatch,
    TagBatch,
    TextBatch,
)


def model_inputs(batch: Any) -> tuple[Tensor, ...]:
    """The positional inputs a model of this batch type takes."""
    if isinstance(batch, TextBatch):
        return batch.tokens, batch.lengths
    if isinstance(batch, DocumentBatch):
        return batch.tokens, batch.sentence_lengths
    if isinstance(batch, PairBatch):
        return batch.premise, batch.premise_lengths, batch.hypothesis, batch.hypothesis_lengths
    if isinstance(batch, StoryBatch):
        return batch.story, batch.story_lengths, batch.question, batch.question_lengths
    if isinstance(batch, TagBatch):
        return batch.tokens, batch.lengths
    raise TypeError(f"no model inputs known for a {type(batch).__name__}")


def batch_targets(batch: Any) -> Tensor:
    if isinstance(batch, StoryBatch):
        return batch.answers
    if isinstance(batch, TagBatch):
        return batch.tags
    return batch.labels


def classification_loss(model: nn.Module, batch: Any, teacher_forcing_ratio: float = 1.0,
                        generator: torch.Generator | None = None) -> Tensor:
    """Cross-entropy, plus ``model.penalty_weight`` times the output's penalty when it has one."""
    out = model(*model_inputs(batch))
    loss = F.cross_entropy(out.logits, batch_targets(batch))
    penalty = getattr(out, "penalty", None)
    if penalty is not None:
        loss = loss + getattr(model, "penalty_weight", 1.0) * penalty
    return loss


def tagging_loss(model: nn.Module, batch: TagBatch, teacher_forcing_ratio: float = 1.0,
                 generator: torch.Generator | None = None) -> Tensor:
    """Mean cross-entropy over real tokens (padded tags are ignored)."""
    out = model(batch.tokens, batch.lengths)
    return F.cross_entropy(out.logits.flatten(0, 1), batch.tags.flatten(), ignore_index=IGNORE_TAG)


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[Any]) -> float:
    """Share of correct predictions (of real tokens, for a tagger) over all batches."""
    model.eval()
    correct, total = 0, 0
    for batch in batches:
        predicted = model(*model_inputs(batch)).logits.argmax(-1)
        target = batch_targets(batch)
        real = target != IGNORE_TAG
        correct += int((predicted == target)[real].sum())
        total += int(real.sum())
    if total == 0:
        raise ValueError("no examples to score: the batches were empty")
    return correct / total
