"""Which modules a capture hooks: by name, class or predicate, or automatically by class.

Automatic selection picks the modules whose class has an extractor
(:func:`interp.extractors.is_attention`), innermost when they nest; names such as ``attn`` play
no part, so a GPT-2 ``Conv1D`` called ``c_attn`` or a BART ``self_attn_layer_norm`` is never
taken for attention. :func:`is_building_block` and :func:`meant` let a capture refuse a
selection of non-attention modules with the names of the attention modules it probably meant.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Union

from torch import nn

from .errors import InterpError
from .extractors import is_attention, qualified_name

Selector = Union[str, "re.Pattern[str]", type, Callable[[str, nn.Module], bool]]
Selection = Selector | Sequence[Selector] | None

#: Classes that are building blocks, never attention, whatever they are called.
_NOT_ATTENTION_NAMES = {"transformers.pytorch_utils.Conv1D"}


class ModuleSelectionError(InterpError, LookupError):
    """The module selection matched nothing, or matched modules that are not attention."""


def _matches(selector: Selector, name: str, module: nn.Module) -> bool:
    if isinstance(selector, str):
        return fnmatch.fnmatchcase(name, selector)
    if isinstance(selector, re.Pattern):
        return selector.fullmatch(name) is not None
    if isinstance(selector, type):
        return isinstance(module, selector)
    if callable(selector):
        return bool(selector(name, module))
    raise TypeError(
        f"cannot select modules with {selector!r}: use a name glob (str), a compiled regex, "
        f"an nn.Module subclass, or a predicate (name, module) -> bool"
    )


def _describe_selector(selector: Selector) -> str:
    if isinstance(selector, type):
        return f"type {selector.__qualname__}"
    if isinstance(selector, re.Pattern):
        return f"regex {selector.pattern!r}"
    if isinstance(selector, str):
        return f"{selector!r}"
    return f"predicate {getattr(selector, '__name__', repr(selector))}"


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules whose class is known attention, innermost when they nest, in definition order."""
    chosen = [(n, m) for n, m in model.named_modules() if is_attention(m)]
    chosen_ids = {id(m) for _, m in chosen}
    return [
        (n, m) for n, m in chosen
        if not any(id(sub) in chosen_ids for sub in m.modules() if sub is not m)
    ]


def is_building_block(module: nn.Module) -> bool:
    """A layer of ``torch.nn`` (Linear, Dropout, LayerNorm, Embedding, ...) or Hugging Face's
    ``Conv1D`` without an extractor: never attention, whatever its name says."""
    if is_attention(module):
        return False
    cls = type(module)
    return cls.__module__.startswith("torch.nn.modules.") or qualified_name(cls) in _NOT_ATTENTION_NAMES


def select_modules(model: nn.Module, modules: Selection = None) -> list[tuple[str, nn.Module]]:
    """Resolve a selection to ``[(name, module)]`` in definition order.

    ``None`` picks the modules whose class has an extractor (registered by class or by name,
    built in, from a plugin, or declared by a ``forward`` returning a type with ``weights``),
    keeping the innermost when they nest. Names like ``attn`` play no part. Raises
    :class:`ModuleSelectionError` naming the closest existing names when nothing matches.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"capture needs an nn.Module, got {type(model).__name__}")
    named = list(model.named_modules())
    names = [n for n, _ in named if n]
    if modules is None:
        found = attention_modules(model)
        if not found:
            raise ModuleSelectionError(
                f"found no attention module in {type(model).__name__}: automatic selection picks "
                f"classes with an extractor (nn.MultiheadAttention, the Hugging Face families in "
                f"interp.hf, modules whose forward returns a type with a `weights` field, and "
                f"registered classes). Pass modules= a name glob, class or predicate, and register "
                f"an extractor for its class if needed. Modules: {preview(names)}"
            )
        return found
    selectors: list[Selector]
    if isinstance(modules, (str, re.Pattern, type)) or (
        callable(modules) and not isinstance(modules, Sequence)
    ):
        selectors = [modules]  # type: ignore[list-item]
    else:
        selectors = list(modules)  # type: ignore[arg-type]
    chosen = []
    for name, module in named:
        if any(_matches(s, name, module) for s in selectors):
            chosen.append((name, module))
    hit = {s_i for s_i, s in enumerate(selectors) if any(_matches(s, n, m) for n, m in named)}
    missing = [s for i, s in enumerate(selectors) if i not in hit]
    if missing:
        lines = []
        for s in missing:
            if isinstance(s, str):
                close = difflib.get_close_matches(s, names, n=5, cutoff=0.3)
                hint = f"; closest: {', '.join(close)}" if close else ""
            elif isinstance(s, type):
                types = sorted({type(m).__name__ for _, m in named})
                hint = f"; types present: {', '.join(types[:20])}"
            else:
                hint = ""
            lines.append(f"{_describe_selector(s)} matches no module of {type(model).__name__}{hint}")
        raise ModuleSelectionError(
            "; ".join(lines) + f". Module names: {preview(names)} "
            "(globs match whole dotted names: use '*' for any part, e.g. 'encoder.*attn')"
        )
    return chosen


def preview(names: Sequence[str], limit: int = 25) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def meant(model: nn.Module, bad: Iterable[str]) -> str:
    """The attention modules a selection of non-attention modules probably meant."""
    found = attention_modules(model)
    near = []
    for name in bad:
        parent = name.rpartition(".")[0]
        for n, m in found:
            close = n == parent or n.startswith(name + ".") or (parent and n.startswith(parent + "."))
            if close and (n, m) not in near:
                near.append((n, m))
    shown = near or found
    if not shown:
        return (f"{type(model).__name__} has no module of a known attention class; register an "
                f"extractor for the class that computes attention (interp.register_extractor)")
    classes = sorted({type(m).__name__ for _, m in shown})
    listed = ", ".join(f"{n} ({type(m).__name__})" for n, m in shown[:8])
    more = f", ... ({len(shown)} in all)" if len(shown) > 8 else ""
    return (f"did you mean {listed}{more}? Select attention by class (modules="
            f"{classes[0]}) or by name")



__all__ = [
    "ModuleSelectionError",
    "Selection",
    "Selector",
    "attention_modules",
    "is_building_block",
    "meant",
    "preview",
    "select_modules",
]
