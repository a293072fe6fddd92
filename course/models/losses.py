"""Loss functions for :func:`course.training.fit` and evaluation helpers for the classifiers.

``fit`` calls ``loss_fn(model, batch)``; every batch says which of its fields the model takes
(``batch.inputs()``) and which the loss compares with (``batch.targets``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.data.batches import IGNORE_TAG, ModelBatch, TagBatch


def classification_loss(model: nn.Module, batch: ModelBatch) -> Tensor:
    """Cross-entropy, plus ``model.penalty_weight`` times the output's penalty when it has one."""
    out = model(*batch.inputs())
    loss = F.cross_entropy(out.logits, batch.targets)
    penalty = getattr(out, "penalty", None)
    if penalty is not None:
        loss = loss + getattr(model, "penalty_weight", 1.0) * penalty
    return loss


def tagging_loss(model: nn.Module, batch: TagBatch) -> Tensor:
    """Mean cross-entropy over real tokens (padded tags are ignored)."""
    out = model(batch.tokens, batch.lengths)
    return F.cross_entropy(out.logits.flatten(0, 1), batch.tags.flatten(), ignore_index=IGNORE_TAG)


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[Any]) -> float:
    """Share of correct predictions (of real tokens, for a tagger) over all batches."""
    model.eval()
    correct, total = 0, 0
    for batch in batches:
        predicted = model(*batch.inputs()).logits.argmax(-1)
        target = batch.targets
        real = target != IGNORE_TAG
        correct += int((predicted == target)[real].sum())
        total += int(real.sum())
    if total == 0:
        raise ValueError("no examples to score: the batches were empty")
    return correct / total
