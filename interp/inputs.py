"""What every analysis function needs from a user's inputs, turned out in one place.

Token ids, padding (from an ``attention_mask``, ``lengths`` or a ``pad_id``), targets, the extra
forward arguments that travel with each example, the model's output (a tensor, or a Hugging Face
``ModelOutput`` unwrapped to its logits) and the attention mask a model takes: used by
``interp.attribute``, ``interp.faithfulness`` and ``interp.compare`` alike, so they accept the same
inputs and refuse bad ones with the same messages. Arrays of any dtype become numpy through
:func:`interp.arrays.to_numpy`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "as_target",
    "logits_of",
    "padding_mask",
    "split_kwargs",
    "validate_target",
    "with_attention_mask",
]


def padding_mask(
    input_ids: Tensor,
    *,
    attention_mask: Tensor | None = None,
    lengths: Tensor | Sequence[int] | None = None,
    pad_id: int | None = None,
) -> Tensor:
    """Bool mask ``[batch, seq]`` of real tokens, from whichever of the three is given.

    Priority: ``attention_mask`` (nonzero = real), then ``lengths`` (right padding), then
    ``pad_id``; with none of them every position is real.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"token ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    b, s = input_ids.shape
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the token ids have "
                f"shape {tuple(input_ids.shape)}; they must match"
            )
        return attention_mask.to(input_ids.device) != 0
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=input_ids.device).long().reshape(-1)
        if lengths.numel() != b:
            raise ValueError(f"lengths has {lengths.numel()} entries for a batch of {b}")
        if (lengths < 0).any() or (lengths > s).any():
            raise ValueError(f"lengths must lie in 0..{s} (the padded length), got {lengths.tolist()}")
        return torch.arange(s, device=input_ids.device)[None, :] < lengths[:, None]
    if pad_id is not None:
        return input_ids != pad_id
    return torch.ones_like(input_ids, dtype=torch.bool)



def logits_of(out: Any) -> Any:
    """A model output's logits: a tensor as is; a Hugging Face ``ModelOutput`` (or any object or
    mapping with a ``logits`` tensor) unwrapped to it. Anything else is returned unchanged for the
    caller's check to report."""
    if isinstance(out, Tensor):
        return out
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, Mapping):
        logits = out.get("logits")
    return logits if isinstance(logits, Tensor) else out


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` (a module's forward or a function) takes a keyword argument ``name``."""
    target = fn.forward if isinstance(fn, nn.Module) else fn
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def with_attention_mask(fn: Callable[..., Any], forward_kwargs: Mapping[str, Any] | None,
                        attention_mask: Tensor | None) -> dict[str, Any]:
    """``forward_kwargs`` with the ``attention_mask`` passed on to a model that takes one.

    A padding mask given to interp also reaches the model (a Hugging Face model otherwise
    attends to its padding); a model whose forward has no ``attention_mask`` parameter is called
    as before. An ``attention_mask`` already in ``forward_kwargs`` wins.
    """
    kwargs = dict(forward_kwargs or {})
    if attention_mask is not None and "attention_mask" not in kwargs and _accepts(fn, "attention_mask"):
        kwargs["attention_mask"] = torch.as_tensor(attention_mask)
    return kwargs



def as_target(target: Any, n: int, device: torch.device) -> Tensor | None:
    if target is None:
        return None
    t = torch.as_tensor(target, device=device)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} entries for a batch of {n}; give one per example or one for all")
    return t


def validate_target(target: Tensor, n_outputs: int, what: str) -> None:
    bad = (target < 0) | (target >= n_outputs)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{what} index {int(target.reshape(-1)[i])} (row {i}) is out of range for a model with "
            f"{n_outputs} outputs; valid indices are 0..{n_outputs - 1}"
        )


def split_kwargs(forward_kwargs: Mapping[str, Any] | None, n: int) -> tuple[list[str], list[Tensor], dict[str, Any]]:
    """Per-example tensors (first dim = batch) travel with the rows; the rest is passed as is."""
    names, tensors, static = [], [], {}
    for k, v in (forward_kwargs or {}).items():
        if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n:
            names.append(k)
            tensors.append(v)
        else:
            static[k] = v
    return names, tensors, static
