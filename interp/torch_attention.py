"""``nn.MultiheadAttention`` weights, read beside the call instead of by changing it.

The weights of a call are recomputed from that call's own inputs and parameters with
``F.multi_head_attention_forward(need_weights=True, average_attn_weights=False)`` (dropout off):
the module itself runs exactly as the caller asked, so its output, and everything downstream, is
what it is without capture. Attention dropout is not part of the recorded weights.

Inside an ``nn.TransformerEncoderLayer`` no hook is attached at all, since any hook on the layer
or its submodules turns off its fused inference fast path (and ``nn.TransformerEncoder``'s
nested-tensor path, whose padded rows come back as exact zeros). Instead the layer's ``forward``
is wrapped while captured: the layer runs unchanged, then the weights are recomputed from its
input (nested inputs are padded back, with their lengths as the key padding mask; the weights
then span the longest sequence of the batch). Calls of that ``self_attn`` made directly, not
through its layer, are not seen.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .extractors import _REGISTRY, Deliver, Extractor, _patches

_MHA_SIGNATURE = inspect.signature(nn.MultiheadAttention.forward)
_LAYER_SIGNATURE = inspect.signature(nn.TransformerEncoderLayer.forward)


def mha_weights(
    mha: nn.MultiheadAttention,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None = None,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
) -> Tensor:
    """Per-head weights ``[batch, heads, queries, keys]`` ``mha`` computes for these inputs."""
    batched = query.dim() == 3
    if mha.batch_first and batched:
        query, key, value = (x.transpose(0, 1) for x in (query, key, value))
    with torch.no_grad():
        _, weights = F.multi_head_attention_forward(
            query, key, value, mha.embed_dim, mha.num_heads, mha.in_proj_weight,
            mha.in_proj_bias, mha.bias_k, mha.bias_v, mha.add_zero_attn, 0.0,
            mha.out_proj.weight, mha.out_proj.bias, training=False,
            key_padding_mask=key_padding_mask, need_weights=True, attn_mask=attn_mask,
            use_separate_proj_weight=not mha._qkv_same_embed_dim,
            q_proj_weight=mha.q_proj_weight, k_proj_weight=mha.k_proj_weight,
            v_proj_weight=mha.v_proj_weight, average_attn_weights=False, is_causal=is_causal,
        )
    assert weights is not None
    return weights if batched else weights.unsqueeze(0)


def _from_call(module: nn.Module, output: Any, args: tuple, kwargs: dict) -> Tensor | None:
    bound = _MHA_SIGNATURE.bind(module, *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    if any(getattr(a[k], "is_nested", False) for k in ("query", "key", "value")):
        return None
    return mha_weights(module, a["query"], a["key"], a["value"], a["key_padding_mask"],
                       a["attn_mask"], a["is_causal"])


def _layer_weights(layer: nn.TransformerEncoderLayer, args: tuple, kwargs: dict) -> Tensor:
    bound = _LAYER_SIGNATURE.bind(layer, *args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    x, pad = a["src"], a["src_key_padding_mask"]
    if x.is_nested:
        lengths = torch.tensor([t.size(0) for t in x.unbind()], device=x.device)
        x = x.to_padded_tensor(0.0)
        pad = torch.arange(x.size(1), device=x.device)[None] >= lengths[:, None]
    with torch.no_grad():
        x = layer.norm1(x) if layer.norm_first else x
    return mha_weights(layer.self_attn, x, x, x, pad, a["src_mask"], a["is_causal"])


_listeners: dict[int, list[tuple[int, Deliver]]] = {}


def _install_tap(layer: nn.TransformerEncoderLayer) -> Callable[[], None]:
    listeners = _listeners.setdefault(id(layer), [])
    own = layer.__dict__.get("forward")
    inner = layer.forward

    def forward(*args: Any, **kwargs: Any) -> Any:
        output = inner(*args, **kwargs)
        me = threading.get_ident()
        mine = [deliver for thread, deliver in list(listeners) if thread == me]
        if mine:
            weights = _layer_weights(layer, args, kwargs)
            for deliver in mine:
                deliver(layer.self_attn, weights, output)
        return output

    layer.forward = forward  # type: ignore[method-assign]

    def undo() -> None:
        if own is None:
            layer.__dict__.pop("forward", None)
        else:
            layer.forward = own  # type: ignore[method-assign]
        _listeners.pop(id(layer), None)

    return undo


def _encoder_layer_of(name: str, module: nn.Module, root: nn.Module) -> nn.Module | None:
    if not name:
        return None
    parent_name = name.rpartition(".")[0]
    parent = root.get_submodule(parent_name) if parent_name else root
    if isinstance(parent, nn.TransformerEncoderLayer) and parent.self_attn is module:
        return parent
    return None


def _attach(name: str, module: nn.Module, root: nn.Module, deliver: Deliver, thread: int
            ) -> Callable[[], None]:
    layer = _encoder_layer_of(name, module, root)
    if layer is None:
        def hook(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if threading.get_ident() == thread:
                deliver(mod, _from_call(mod, output, args, kwargs), output)

        return module.register_forward_hook(hook, with_kwargs=True).remove
    return _patches.subscribe(layer, "encoder_layer_tap", lambda: _install_tap(layer), _listeners,
                              (thread, deliver))


_REGISTRY[nn.MultiheadAttention] = Extractor(
    _from_call, name="nn.MultiheadAttention per head (recomputed beside the call)",
    with_inputs=True, attach=_attach,
)

__all__ = ["mha_weights"]
