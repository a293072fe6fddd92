"""What the non-seq2seq models return: predictions plus the attention weights that built them.

The weights here are the same tensors the attention submodules return inside their
``AttentionOutput(context, weights)``, so ``interp.capture`` and the model's own output agree.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ClassifierOutput(NamedTuple):
    """``logits [batch, classes]``; ``attention [batch, queries, keys]`` or None for a baseline.

    ``penalty`` is a regulariser the loss should add (Lin et al.'s ``||AA^T - I||^2``), else None.
    """

    logits: Tensor
    attention: Tensor | None = None
    penalty: Tensor | None = None


class HierarchicalOutput(NamedTuple):
    """``word_attention [batch, sentences, words]`` (padded sentences all zero) and
    ``sentence_attention [batch, sentences]``; both None for the no-attention baseline."""

    logits: Tensor
    word_attention: Tensor | None
    sentence_attention: Tensor | None


class MemoryOutput(NamedTuple):
    """``logits [batch, vocab]`` over answer words; ``attention [batch, hops, memories]``."""

    logits: Tensor
    attention: Tensor


class ForecastOutput(NamedTuple):
    """``prediction [batch, horizon]``; ``attention [batch, 1, window]`` or None for a baseline."""

    prediction: Tensor
    attention: Tensor | None


class TaggerOutput(NamedTuple):
    """``logits [batch, tokens, tags]``; ``attention [batch, tokens, tokens]`` or None."""

    logits: Tensor
    attention: Tensor | None
