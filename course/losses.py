"""Training losses for the attention variants, in the shape ``course.training.fit`` expects.

``fit(model, ..., loss_fn=variant_loss)`` trains any variant: cross-entropy, plus the coverage
loss when the model was built with ``coverage=True``, plus the REINFORCE term when its attention
samples hard positions (``normalizer='hard_reinforce'``). Both extras are reported separately by
:func:`variant_loss_terms` so a lesson can plot them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.batching import Batch
from course.coverage import coverage_loss
from course.decoders import output_terms
from course.normalizers import HardNormalizer
from course.vocab import PAD


def reinforce_normalizers(model: nn.Module) -> list[HardNormalizer]:
    """The hard-attention normalisers inside ``model`` that train with REINFORCE."""
    return [m for m in model.modules() if isinstance(m, HardNormalizer) and m.estimator == "reinforce"]


def repeat_batch(batch: Batch, times: int) -> Batch:
    """Each example ``times`` times in consecutive rows (``repeat_interleave``)."""
    return batch.map(lambda t: t.repeat_interleave(times, 0))


def variant_loss_terms(model: nn.Module, batch: Batch, teacher_forcing_ratio: float = 1.0,
                       generator: torch.Generator | None = None, *, coverage_weight: float | None = None,
                       reinforce_weight: float = 1.0, reinforce_samples: int = 1) -> dict[str, Tensor]:
    """Each term of the loss and their weighted ``total``.

    ``coverage_weight`` defaults to 1 for a model configured with coverage and 0 otherwise.
    The REINFORCE reward of a sampled position at step t is the log-likelihood of target token t
    (``-cross_entropy``), which that sample directly produced. With ``reinforce_samples=K > 1`` a
    model whose attention samples (in training) sees each example K times, and each sample's
    baseline is the mean reward of the other K-1 (see :meth:`HardNormalizer.reinforce_loss`); the
    cross-entropy is then the mean over the K copies.
    """
    if reinforce_samples < 1:
        raise ValueError(f"reinforce_samples must be at least 1, got {reinforce_samples}")
    samples = reinforce_samples if model.training and reinforce_normalizers(model) else 1
    if samples > 1:
        batch = repeat_batch(batch, samples)
    out = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=teacher_forcing_ratio,
                generator=generator)
    valid = batch.tgt_out != PAD
    token_nll = F.cross_entropy(out.logits.transpose(1, 2), batch.tgt_out, ignore_index=PAD,
                                reduction="none")                                  # [B, T]
    terms = {"cross_entropy": token_nll[valid].mean()}
    total = terms["cross_entropy"]
    config = getattr(model, "config", None)
    if coverage_weight is None:
        coverage_weight = 1.0 if getattr(config, "coverage", False) else 0.0
    if coverage_weight and out.attention is not None:
        terms["coverage"] = coverage_loss(out.attention, valid)
        total = total + coverage_weight * terms["coverage"]
    log_prob = output_terms(out).get("attention_log_prob")
    if log_prob is not None and reinforce_weight:
        normalizers = reinforce_normalizers(model)
        if not normalizers:
            raise ValueError("the output carries sample log-probabilities but the model has no REINFORCE normaliser")
        terms["reinforce"] = normalizers[0].reinforce_loss(log_prob, -token_nll, valid, samples=samples)
        total = total + reinforce_weight * terms["reinforce"]
    terms["total"] = total
    return terms


def variant_loss(model: nn.Module, batch: Batch, teacher_forcing_ratio: float = 1.0,
                 generator: torch.Generator | None = None, **weights: float) -> Tensor:
    """The total of :func:`variant_loss_terms`: a drop-in ``loss_fn`` for ``fit`` (``functools.partial``
    passes its options, e.g. ``reinforce_samples=4``)."""
    return variant_loss_terms(model, batch, teacher_forcing_ratio, generator, **weights)["total"]
