"""Hugging Face attention classes: which element of their output holds the weights, and the switch.

How the weights are read depends on the implementation the module runs with:

- ``"eager"`` returns the weights: they are read from the output, nothing is changed;
- ``"sdpa"`` never forms them: the module keeps running on SDPA, and the weights
  ``softmax(q k^T * scale + mask)`` are recomputed from the arguments of its
  ``F.scaled_dot_product_attention`` call (:mod:`interp.inline`), so outputs stay bit-identical;
- anything else (flash kernels, ...): the module's ``config._attn_implementation`` is set to
  ``"eager"`` while captured and restored afterwards (reference-counted across overlapping
  captures); outputs then agree with the uncaptured ones up to float rounding.

An extractor registered for one of these classes keeps the eager switch (:func:`eager_setup`)
unless registered with ``setup=False``. Classes are registered by qualified name, so
``transformers`` is never imported here.

Tested families and layouts (transformers 5.x):

=============  =============================================  ============================
family         attention classes                              output layout
=============  =============================================  ============================
BERT           ``BertSelfAttention``, ``BertCrossAttention``  ``(output, weights)``
RoBERTa        ``RobertaSelfAttention``, ``...CrossAttention``  ``(output, weights)``
DistilBERT     ``DistilBertSelfAttention``                    ``(output, weights)``
GPT-2          ``GPT2Attention`` (self and cross)             ``(output, weights)``
BART           ``BartAttention`` (encoder, decoder, cross)    ``(output, weights)``
T5             ``T5Attention`` (encoder, decoder, cross)      ``(output, bias, weights)``
=============  =============================================  ============================
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from torch import nn

from . import inline
from .extractors import (
    _BY_NAME,
    OUTPUT_BIAS_WEIGHTS,
    OUTPUT_WEIGHTS,
    AttachFn,
    Deliver,
    ExtractFn,
    Extractor,
    _patches,
)

_M = "transformers.models."

#: qualified class name -> layout of its output.
FAMILIES: dict[str, ExtractFn] = {
    _M + "bert.modeling_bert.BertSelfAttention": OUTPUT_WEIGHTS,
    _M + "bert.modeling_bert.BertCrossAttention": OUTPUT_WEIGHTS,
    _M + "roberta.modeling_roberta.RobertaSelfAttention": OUTPUT_WEIGHTS,
    _M + "roberta.modeling_roberta.RobertaCrossAttention": OUTPUT_WEIGHTS,
    _M + "distilbert.modeling_distilbert.DistilBertSelfAttention": OUTPUT_WEIGHTS,
    _M + "gpt2.modeling_gpt2.GPT2Attention": OUTPUT_WEIGHTS,
    _M + "bart.modeling_bart.BartAttention": OUTPUT_WEIGHTS,
    _M + "t5.modeling_t5.T5Attention": OUTPUT_BIAS_WEIGHTS,
}

EAGER_SWITCH = "eager-attention switch (config._attn_implementation='eager' while captured)"


def is_hf_module(module: nn.Module) -> bool:
    """Whether ``module`` is a Hugging Face module with a switchable attention implementation."""
    config = getattr(module, "config", None)
    return type(module).__module__.startswith("transformers.") and hasattr(
        config, "_attn_implementation"
    )


def implementation(module: nn.Module) -> str | None:
    """The attention implementation ``module`` uses now (``None`` if it is not Hugging Face)."""
    return getattr(getattr(module, "config", None), "_attn_implementation", None) if is_hf_module(
        module) else None


def eager_setup(module: nn.Module, root: nn.Module) -> Callable[[], None]:
    """Switch a Hugging Face attention module's config to eager attention while captured."""
    if not is_hf_module(module):
        return lambda: None
    config = module.config

    def apply() -> Callable[[], None]:
        previous = config._attn_implementation
        config._attn_implementation = "eager"

        def undo() -> None:
            config._attn_implementation = previous

        return undo

    return _patches.acquire(config, "attn_implementation", apply)


def _attach_for(layout: ExtractFn) -> AttachFn:
    def attach(name: str, module: nn.Module, root: nn.Module, deliver: Deliver, thread: int
               ) -> Callable[[], None]:
        if implementation(module) == "sdpa":
            return inline.attach(module, frozenset({"sdpa"}),
                                 lambda mod, weights, site: deliver(mod, weights, None), thread)
        release = eager_setup(module, root)

        def hook(mod: nn.Module, args: tuple, output: Any) -> None:
            if threading.get_ident() == thread:
                deliver(mod, layout(mod, output), output)

        handle = module.register_forward_hook(hook)

        def undo() -> None:
            handle.remove()
            release()

        return undo

    return attach


for _name, _layout in FAMILIES.items():
    _BY_NAME[_name] = Extractor(
        _layout, eager_setup,
        f"Hugging Face {_layout.__name__}; on SDPA recomputed from the SDPA call, on other "
        f"kernels with the eager switch",
        attach=_attach_for(_layout), setup_name=EAGER_SWITCH,
    )

__all__ = ["EAGER_SWITCH", "FAMILIES", "eager_setup", "implementation", "is_hf_module"]
