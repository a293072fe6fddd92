"""The training loop every lesson uses: progress bar, clipping, validation, early stopping."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from course.batching import Batch
from course.vocab import PAD


@dataclass
class History:
    """What happened during :func:`fit`, epoch by epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False


def sequence_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over real target tokens (PAD excluded)."""
    return nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                       ignore_index=PAD)


def seq2seq_loss(model: nn.Module, batch: Batch, teacher_forcing_ratio: float = 1.0,
                 generator: torch.Generator | None = None) -> Tensor:
    out = model(batch.src, batch.src_lengths, batch.tgt_in,
                teacher_forcing_ratio=teacher_forcing_ratio, generator=generator)
    return sequence_loss(out.logits, batch.tgt_out)


LossFn = Callable[..., Tensor]


def train_epoch(model: nn.Module, batches: Iterable[Batch], optimizer: torch.optim.Optimizer,
                clip: float | None = 1.0, teacher_forcing_ratio: float = 1.0,
                generator: torch.Generator | None = None, loss_fn: LossFn = seq2seq_loss,
                progress: bool = False, description: str = "train",
                device: torch.device | str | None = None) -> float:
    """One pass over the data; returns the mean loss. Gradients are clipped by global norm."""
    model.train()
    total, count = 0.0, 0
    for batch in tqdm(batches, desc=description, leave=False, disable=not progress):
        batch = to_device(batch, device)
        optimizer.zero_grad()
        loss = loss_fn(model, batch, teacher_forcing_ratio=teacher_forcing_ratio, generator=generator)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()}; lower the learning rate or clip harder")
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total += loss.item() * len(batch)
        count += len(batch)
    return total / max(count, 1)


def to_device(batch, device: torch.device | str | None):
    """Move a batch to ``device`` when both are given and the batch knows how (``.to``)."""
    if device is None or not hasattr(batch, "to"):
        return batch
    return batch.to(device)


@torch.no_grad()
def evaluate_loss(model: nn.Module, batches: Iterable[Batch], loss_fn: LossFn = seq2seq_loss,
                  device: torch.device | str | None = None) -> float:
    """Mean teacher-forced loss on held-out data."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = to_device(batch, device)
        total += loss_fn(model, batch, teacher_forcing_ratio=1.0).item() * len(batch)
        count += len(batch)
    return total / max(count, 1)


def fit(model: nn.Module, train_batches: Iterable[Batch], val_batches: Iterable[Batch] | None = None,
        *, epochs: int = 10, lr: float = 1e-3, clip: float | None = 1.0,
        teacher_forcing_ratio: float | Callable[[int], float] = 1.0, patience: int | None = None,
        checkpoint: Callable[[nn.Module, int], object] | str | Path | None = None,
        generator: torch.Generator | None = None, loss_fn: LossFn = seq2seq_loss,
        progress: bool = True, batch_progress: bool = False,
        device: torch.device | str | None = None) -> History:
    """Train with Adam, validating after each epoch and keeping the best weights.

    ``teacher_forcing_ratio`` may be a function of the epoch (scheduled sampling). With
    ``patience`` set, training stops after that many epochs without a better validation loss and
    the best weights are restored. ``checkpoint`` is a path (weights saved as safetensors) or a
    callable called with the model and epoch whenever validation improves. With ``device``, the
    model and each batch are moved there (batches need a ``.to`` method, as ``Batch`` has).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be at least 1 or None, got {patience}")
    if patience is not None and val_batches is None:
        raise ValueError("early stopping needs validation batches: pass val_batches or patience=None")
    if device is not None:
        model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = History()
    best_loss, best_state, waited = math.inf, None, 0
    bar = tqdm(range(epochs), desc="epochs", disable=not progress)
    for epoch in bar:
        ratio = teacher_forcing_ratio(epoch) if callable(teacher_forcing_ratio) else teacher_forcing_ratio
        start = time.perf_counter()
        train_loss = train_epoch(model, train_batches, optimizer, clip, ratio, generator, loss_fn,
                                 progress=batch_progress, description=f"epoch {epoch + 1}",
                                 device=device)
        history.epoch_seconds.append(time.perf_counter() - start)
        history.train_loss.append(train_loss)
        postfix = {"train": f"{train_loss:.3f}"}
        if val_batches is not None:
            val_loss = evaluate_loss(model, val_batches, loss_fn, device=device)
            history.val_loss.append(val_loss)
            postfix["val"] = f"{val_loss:.3f}"
            if val_loss < best_loss:
                best_loss, waited, history.best_epoch = val_loss, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
                save_best(checkpoint, model, epoch)
            else:
                waited += 1
        bar.set_postfix(postfix)
        if patience is not None and waited >= patience:
            history.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return history


def save_best(checkpoint: Callable[[nn.Module, int], object] | str | Path | None,
              model: nn.Module, epoch: int) -> None:
    if checkpoint is None:
        return
    if callable(checkpoint):
        checkpoint(model, epoch)
        return
    from course.checkpoint import save_checkpoint

    save_checkpoint(checkpoint, model, {"epoch": epoch})
