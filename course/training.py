"""The training loop every lesson uses: progress bar, clipping, validation, early stopping.

One loss protocol: a loss is a callable ``loss_fn(model, batch) -> Tensor``. What is special to
a model family lives in its loss, not in the loop: teacher forcing and scheduled sampling belong
to :class:`course.seq2seq.losses.Seq2SeqLoss`. A loss that changes with the epoch (scheduled
sampling) has a ``start_epoch(epoch)`` method, which the loop calls before each epoch.

:func:`fit` trains once; a :class:`Trainer` keeps the optimiser, the history and the best
weights, so calling :meth:`Trainer.fit` again continues the same run (Adam's moments included),
and its callbacks see the history after every epoch and may stop the run.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from course.data.vocab import PAD


@dataclass
class History:
    """What happened during training, epoch by epoch (across every call of :meth:`Trainer.fit`)."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    stop_reason: str = ""


@runtime_checkable
class LossFn(Protocol):
    """``loss_fn(model, batch)``: a scalar loss for one batch (mean over its examples)."""

    def __call__(self, model: nn.Module, batch: Any) -> Tensor: ...


Callback = Callable[[int, History], "bool | None"]
"""Called after each epoch with the epoch (0-based) and the history so far; True stops the run."""


def sequence_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over real target tokens (PAD excluded)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                       ignore_index=PAD)


def seq2seq_loss(model: nn.Module, batch: Any) -> Tensor:
    """Teacher-forced cross-entropy of a seq2seq model: the default loss of :func:`fit`.

    Any batch with the seq2seq fields works (``src``, ``src_lengths``, ``tgt_in``, ``tgt_out``,
    as :class:`course.data.batches.Batch` has). For scheduled sampling, coverage or REINFORCE use
    :class:`course.seq2seq.losses.Seq2SeqLoss`.
    """
    return sequence_loss(model(batch.src, batch.src_lengths, batch.tgt_in).logits, batch.tgt_out)


def to_device(batch: Any, device: torch.device | str | None) -> Any:
    """Move a batch to ``device`` when both are given and the batch knows how (``.to``)."""
    if device is None or not hasattr(batch, "to"):
        return batch
    return batch.to(device)


def train_epoch(model: nn.Module, batches: Iterable[Any], optimizer: torch.optim.Optimizer,
                clip: float | None = 1.0, loss_fn: LossFn = seq2seq_loss, progress: bool = False,
                description: str = "train", device: torch.device | str | None = None) -> float:
    """One pass over the data; returns the mean loss. Gradients are clipped by global norm."""
    model.train()
    total, count = 0.0, 0
    for batch in tqdm(batches, desc=description, leave=False, disable=not progress):
        batch = to_device(batch, device)
        optimizer.zero_grad()
        loss = loss_fn(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()}; lower the learning rate or clip harder")
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / max(count, 1)


@torch.no_grad()
def evaluate_loss(model: nn.Module, batches: Iterable[Any], loss_fn: LossFn = seq2seq_loss,
                  device: torch.device | str | None = None) -> float:
    """Mean loss on held-out data, the model in eval mode (a seq2seq loss is then teacher-forced)."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = to_device(batch, device)
        total += loss_fn(model, batch).item() * len(batch)
        count += len(batch)
    return total / max(count, 1)


_MOVED = {
    "teacher_forcing_ratio": "Seq2SeqLoss(teacher_forcing=...)",
    "generator": "Seq2SeqLoss(generator=...) (only sampling needs it: scheduled sampling, REINFORCE)",
}


def _refuse_moved(options: dict[str, Any]) -> None:
    if not options:
        return
    moved = [f"{name} -> loss_fn={_MOVED[name]}" for name in options if name in _MOVED]
    unknown = [name for name in options if name not in _MOVED]
    if unknown:
        raise TypeError(f"fit got unexpected keyword arguments {unknown}")
    raise TypeError("teacher forcing and sampling belong to the seq2seq loss, not to the training "
                    "loop: from course.seq2seq.losses import Seq2SeqLoss, then " + "; ".join(moved))


class Trainer:
    """Adam over ``model``'s parameters, the best-validation weights, and the history of a run.

    ``Trainer(model, lr=...).fit(train, val, epochs=5)`` trains five epochs; calling ``fit``
    again continues from where the run was (the last weights and Adam's moments, not the best
    weights that ``fit`` leaves in the model for evaluation), so two calls of five epochs give
    the same weights as one call of ten. ``state_dict`` / ``load_state_dict`` carry a run
    across processes (tensors and plain values only: ``torch.save`` / ``torch.load`` with
    ``weights_only=True``).
    """

    def __init__(self, model: nn.Module, *, lr: float = 1e-3, clip: float | None = 1.0,
                 loss_fn: LossFn = seq2seq_loss,
                 checkpoint: Callable[[nn.Module, int], object] | str | Path | None = None,
                 device: torch.device | str | None = None,
                 optimizer: torch.optim.Optimizer | None = None):
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable as loss_fn(model, batch), got {type(loss_fn).__name__}")
        self.model = model
        self.loss_fn = loss_fn
        self.clip = clip
        self.checkpoint = checkpoint
        self.device = device
        if device is not None:
            model.to(device)
        self.optimizer = optimizer if optimizer is not None else torch.optim.Adam(model.parameters(), lr=lr)
        self.history = History()
        self.best_loss = math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.last_state: dict[str, Tensor] | None = None

    @property
    def epochs_done(self) -> int:
        return len(self.history.train_loss)

    def fit(self, train_batches: Iterable[Any], val_batches: Iterable[Any] | None = None, *,
            epochs: int = 10, patience: int | None = None, callbacks: Sequence[Callback] = (),
            progress: bool = True, batch_progress: bool = False) -> History:
        """Train ``epochs`` more epochs, validating after each; returns the whole run's history.

        With ``patience``, training stops after that many epochs without a better validation
        loss. Each callback is called after every epoch as ``callback(epoch, history)``; one that
        returns True stops the run. The best-validation weights are in the model afterwards.
        """
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be at least 1 or None, got {patience}")
        if patience is not None and val_batches is None:
            raise ValueError("early stopping needs validation batches: pass val_batches or patience=None")
        for callback in callbacks:
            if not callable(callback):
                raise TypeError(f"callbacks must be callables (epoch, history) -> bool | None, "
                                f"got {type(callback).__name__}")
        model, history = self.model, self.history
        if self.last_state is not None:  # continue from where training was, not from the best
            model.load_state_dict(self.last_state)
        history.stopped_early, history.stop_reason = False, ""
        start_epoch_hook = getattr(self.loss_fn, "start_epoch", None)
        waited = 0
        bar = tqdm(range(self.epochs_done, self.epochs_done + epochs), desc="epochs", disable=not progress)
        for epoch in bar:
            if start_epoch_hook is not None:
                start_epoch_hook(epoch)
            start = time.perf_counter()
            train_loss = train_epoch(model, train_batches, self.optimizer, self.clip, self.loss_fn,
                                     progress=batch_progress, description=f"epoch {epoch + 1}",
                                     device=self.device)
            history.epoch_seconds.append(time.perf_counter() - start)
            history.train_loss.append(train_loss)
            postfix = {"train": f"{train_loss:.3f}"}
            if val_batches is not None:
                val_loss = evaluate_loss(model, val_batches, self.loss_fn, device=self.device)
                history.val_loss.append(val_loss)
                postfix["val"] = f"{val_loss:.3f}"
                if val_loss < self.best_loss:
                    self.best_loss, waited, history.best_epoch = val_loss, 0, epoch
                    self.best_state = copy.deepcopy(model.state_dict())
                    save_best(self.checkpoint, model, epoch)
                else:
                    waited += 1
            bar.set_postfix(postfix)
            if patience is not None and waited >= patience:
                history.stopped_early, history.stop_reason = True, f"no better validation loss in {patience} epochs"
                break
            stops = [callback for callback in callbacks if callback(epoch, history)]
            if stops:
                name = getattr(stops[0], "__name__", type(stops[0]).__name__)
                history.stopped_early, history.stop_reason = True, f"stopped by callback {name}"
                break
        self.last_state = copy.deepcopy(model.state_dict())
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
        return history

    def state_dict(self) -> dict[str, Any]:
        """The run so far: optimiser, history, best and last weights (tensors and plain values)."""
        h = self.history
        return {"optimizer": self.optimizer.state_dict(), "best_loss": self.best_loss,
                "best_state": self.best_state, "last_state": self.last_state,
                "history": {"train_loss": list(h.train_loss), "val_loss": list(h.val_loss),
                            "epoch_seconds": list(h.epoch_seconds), "best_epoch": h.best_epoch}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a run saved with :meth:`state_dict` (the model must have the same parameters)."""
        missing = {"optimizer", "best_loss", "best_state", "last_state", "history"} - set(state)
        if missing:
            raise KeyError(f"not a Trainer state: missing {sorted(missing)}")
        self.optimizer.load_state_dict(state["optimizer"])
        self.best_loss, self.best_state, self.last_state = state["best_loss"], state["best_state"], state["last_state"]
        self.history = History(**state["history"])
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def fit(model: nn.Module, train_batches: Iterable[Any], val_batches: Iterable[Any] | None = None,
        *, epochs: int = 10, lr: float = 1e-3, clip: float | None = 1.0, patience: int | None = None,
        checkpoint: Callable[[nn.Module, int], object] | str | Path | None = None,
        loss_fn: LossFn = seq2seq_loss, callbacks: Sequence[Callback] = (), progress: bool = True,
        batch_progress: bool = False, device: torch.device | str | None = None,
        **moved: Any) -> History:
    """Train with Adam, validating after each epoch and keeping the best weights.

    ``loss_fn(model, batch)`` gives each batch's loss (default: teacher-forced seq2seq
    cross-entropy). With ``patience`` set, training stops after that many epochs without a better
    validation loss and the best weights are restored. ``checkpoint`` is a path (weights saved as
    safetensors) or a callable called with the model and epoch whenever validation improves.
    ``callbacks`` are called after each epoch with ``(epoch, history)``; True stops. With
    ``device``, the model and each batch are moved there. To continue a run later, use a
    :class:`Trainer` (this function is ``Trainer(model, ...).fit(...)``).
    """
    _refuse_moved(moved)
    trainer = Trainer(model, lr=lr, clip=clip, loss_fn=loss_fn, checkpoint=checkpoint, device=device)
    return trainer.fit(train_batches, val_batches, epochs=epochs, patience=patience,
                       callbacks=callbacks, progress=progress, batch_progress=batch_progress)


def save_best(checkpoint: Callable[[nn.Module, int], object] | str | Path | None,
              model: nn.Module, epoch: int) -> None:
    if checkpoint is None:
        return
    if callable(checkpoint):
        checkpoint(model, epoch)
        return
    from course.checkpoint import save_checkpoint

    save_checkpoint(checkpoint, model, {"epoch": epoch})
