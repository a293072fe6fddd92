"""The seq2seq loss: teacher forcing and scheduled sampling, coverage and REINFORCE in one place.

``fit(model, ..., loss_fn=Seq2SeqLoss())`` trains any variant: cross-entropy, plus the coverage
loss when the model was built with ``coverage=True``, plus the REINFORCE term when its attention
samples hard positions (``normalizer='hard_reinforce'``). :meth:`Seq2SeqLoss.terms` reports each
term so a lesson can plot them. (``course.training.seq2seq_loss`` is the plain teacher-forced
cross-entropy, the default of ``fit``.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.attention.coverage import coverage_loss
from course.attention.normalizers import HardNormalizer
from course.data.batches import Batch
from course.data.vocab import PAD
from course.seq2seq.decoders import output_terms


def reinforce_normalizers(model: nn.Module) -> list[HardNormalizer]:
    """The hard-attention normalisers inside ``model`` that train with REINFORCE."""
    return [m for m in model.modules() if isinstance(m, HardNormalizer) and m.estimator == "reinforce"]


def repeat_batch(batch: Batch, times: int) -> Batch:
    """Each example ``times`` times in consecutive rows (``repeat_interleave``)."""
    return batch.map(lambda t: t.repeat_interleave(times, 0))


class Seq2SeqLoss:
    """The loss of a seq2seq model: cross-entropy, plus the terms its attention needs.

    - ``teacher_forcing``: the probability of feeding the reference token (1.0: always), or a
      function of the epoch for scheduled sampling; evaluation (``model.eval()``) always feeds
      the reference. The training loop calls :meth:`start_epoch` before each epoch.
    - ``generator``: the random numbers of scheduled sampling and of hard-attention samples.
    - ``coverage_weight``: weight of the coverage loss (default 1 for a model configured with
      coverage, 0 otherwise).
    - ``reinforce_weight`` and ``reinforce_samples``: the REINFORCE term of hard attention
      (``normalizer='hard_reinforce'``); with ``K > 1`` samples, each example is seen K times and
      each sample's baseline is the mean reward of the other K-1
      (:meth:`~course.attention.normalizers.HardNormalizer.reinforce_loss`). The reward of a
      sampled position at step t is the log-likelihood of target token t, which it produced.

    ``terms(model, batch)`` returns every term and their weighted ``total``, so a lesson can
    plot them; calling the loss returns the total.
    """

    def __init__(self, *, teacher_forcing: float | Callable[[int], float] = 1.0,
                 generator: torch.Generator | None = None, coverage_weight: float | None = None,
                 reinforce_weight: float = 1.0, reinforce_samples: int = 1):
        if reinforce_samples < 1:
            raise ValueError(f"reinforce_samples must be at least 1, got {reinforce_samples}")
        if not callable(teacher_forcing) and not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1] or be a function of the epoch, "
                             f"got {teacher_forcing}")
        self.teacher_forcing = teacher_forcing
        self.generator = generator
        self.coverage_weight = coverage_weight
        self.reinforce_weight = reinforce_weight
        self.reinforce_samples = reinforce_samples
        self.epoch = 0

    def start_epoch(self, epoch: int) -> None:
        """Called by the training loop: scheduled sampling reads the epoch."""
        self.epoch = epoch

    def ratio(self, model: nn.Module) -> float:
        """The teacher-forcing ratio of the current epoch (1.0 when the model is evaluated)."""
        if not model.training:
            return 1.0
        if callable(self.teacher_forcing):
            return float(self.teacher_forcing(self.epoch))
        return float(self.teacher_forcing)

    def terms(self, model: nn.Module, batch: Batch) -> dict[str, Tensor]:
        """Each term of the loss and their weighted ``total``."""
        samples = self.reinforce_samples if model.training and reinforce_normalizers(model) else 1
        if samples > 1:
            batch = repeat_batch(batch, samples)
        out = model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing_ratio=self.ratio(model),
                    generator=self.generator)
        valid = batch.tgt_out != PAD
        token_nll = F.cross_entropy(out.logits.transpose(1, 2), batch.tgt_out, ignore_index=PAD,
                                    reduction="none")                              # [B, T]
        terms = {"cross_entropy": token_nll[valid].mean()}
        total = terms["cross_entropy"]
        coverage_weight = self.coverage_weight
        if coverage_weight is None:
            coverage_weight = 1.0 if getattr(getattr(model, "config", None), "coverage", False) else 0.0
        if coverage_weight and out.attention is not None:
            terms["coverage"] = coverage_loss(out.attention, valid)
            total = total + coverage_weight * terms["coverage"]
        log_prob = output_terms(out).get("attention_log_prob")
        if log_prob is not None and self.reinforce_weight:
            normalizers = reinforce_normalizers(model)
            if not normalizers:
                raise ValueError("the output carries sample log-probabilities but the model has no REINFORCE normaliser")
            terms["reinforce"] = normalizers[0].reinforce_loss(log_prob, -token_nll, valid, samples=samples)
            total = total + self.reinforce_weight * terms["reinforce"]
        terms["total"] = total
        return terms

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return self.terms(model, batch)["total"]
