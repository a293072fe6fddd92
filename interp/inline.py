"""Attention computed inline: softmax and scaled-dot-product calls inside a selected forward.

Many models never give their attention a module of its own: a decoder's ``forward`` calls
``F.softmax(scores, dim=-1)`` or ``F.scaled_dot_product_attention(q, k, v)`` between other
work. While such a selected module runs, a :class:`torch.overrides.TorchFunctionMode` sees those
calls: a softmax result is recorded as is (its ``dim`` moved last), and for scaled-dot-product
attention the weights ``softmax(q k^T * scale + mask)`` are recomputed from the call's own
arguments (the call itself runs unchanged). Each record carries its call site
(``file.py:line (function)``), since one forward may normalise more than one thing.

The mode is only active in the thread that entered the capture, and only while the selected
module runs. Fused fast paths that step aside for any torch-function override (e.g.
``nn.TransformerEncoderLayer``'s) take their standard path inside an inline-captured module.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from .extractors import _patches

KINDS = ("softmax", "sdpa")
_SOFTMAX = {F.softmax, torch.softmax, Tensor.softmax}
_SDPA = {F.scaled_dot_product_attention}
_SKIP_DIRS = tuple(
    os.path.dirname(m.__file__) + os.sep for m in (torch,) if m.__file__
) + (os.path.dirname(__file__) + os.sep,)

#: ``on_weights(module, weights, site)`` for one inline call.
OnWeights = Callable[[nn.Module, Tensor, str], None]


def call_site() -> str:
    """``file.py:line (function)`` of the innermost frame outside torch and interp."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP_DIRS):
        frame = frame.f_back
    if frame is None:
        return "unknown"
    code = frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.f_lineno} ({code.co_name})"


def sdpa_weights(query: Tensor, key: Tensor, value: Tensor | None = None,
                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                 is_causal: bool = False, scale: float | None = None,
                 enable_gqa: bool = False) -> Tensor:
    """The weights ``F.scaled_dot_product_attention`` applies to ``value`` (before dropout)."""
    with torch.no_grad():
        q, k = query.float(), key.float()
        if enable_gqa and k.dim() >= 3 and q.size(-3) != k.size(-3):
            k = k.repeat_interleave(q.size(-3) // k.size(-3), dim=-3)
        factor = 1.0 / math.sqrt(q.size(-1)) if scale is None else scale
        scores = q @ k.transpose(-2, -1) * factor
        # The most negative float rather than -inf: a row with every key masked comes out
        # uniform, as with the additive masks of eager implementations, instead of NaN.
        lowest = torch.finfo(scores.dtype).min
        if is_causal:
            keep = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~keep, lowest)
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, lowest)
            else:
                scores = scores + attn_mask.float()
        return torch.softmax(scores, dim=-1).to(query.dtype)


def _softmax_dim(func: Any, args: tuple, kwargs: dict) -> int | None:
    if "dim" in kwargs:
        return kwargs["dim"]
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


class _InlineMode(TorchFunctionMode):
    def __init__(self, module: nn.Module, listeners: list[tuple[int, frozenset, OnWeights]]) -> None:
        super().__init__()
        self.module = module
        self.listeners = listeners

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func in _SOFTMAX:
            kind = "softmax"
        elif func in _SDPA:
            kind = "sdpa"
        else:
            return result
        me = threading.get_ident()
        wanted = [fn for thread, kinds, fn in list(self.listeners) if thread == me and kind in kinds]
        if not wanted:
            return result
        if kind == "softmax":
            dim = _softmax_dim(func, args, kwargs)
            if dim is None or not isinstance(result, Tensor):
                return result
            weights = result.detach().movedim(dim, -1)
        else:
            weights = sdpa_weights(*args, **kwargs)
        site = call_site()
        for fn in wanted:
            fn(self.module, weights, site)
        return result


_local = threading.local()
_listeners: dict[int, list[tuple[int, frozenset, OnWeights]]] = {}


def _install(module: nn.Module) -> Callable[[], None]:
    listeners = _listeners.setdefault(id(module), [])

    def pre_hook(mod: nn.Module, args: tuple) -> None:
        me = threading.get_ident()
        stack = _local.__dict__.setdefault("stack", [])
        if any(thread == me for thread, _, _ in listeners):
            mode = _InlineMode(mod, listeners)
            mode.__enter__()
            stack.append(mode)
        else:
            stack.append(None)

    def hook(mod: nn.Module, args: tuple, output: Any) -> None:
        stack = _local.__dict__.get("stack")
        if stack:
            mode = stack.pop()
            if mode is not None:
                mode.__exit__(None, None, None)

    handles = [module.register_forward_pre_hook(pre_hook),
               module.register_forward_hook(hook, always_call=True)]

    def undo() -> None:
        for handle in handles:
            handle.remove()
        _listeners.pop(id(module), None)

    return undo


def attach(module: nn.Module, kinds: frozenset, on_weights: OnWeights, thread: int
           ) -> Callable[[], None]:
    """Record ``kinds`` of inline calls made while ``module`` runs in ``thread``; returns undo."""
    return _patches.subscribe(module, "inline_attention", lambda: _install(module), _listeners,
                              (thread, kinds, on_weights))


__all__ = ["KINDS", "attach", "call_site", "sdpa_weights"]
