"""Capture attention weights from any model with forward hooks, without editing the model.

    with interp.capture(model, "encoder.*attn") as cap:
        model(batch)
    cap["encoder.layers.0.self_attn"]          # [batch, (heads,) queries, keys]

Modules are chosen by name (a glob such as ``"decoder.*attention"``, or a compiled regex matched
against the whole name), by type (``nn.MultiheadAttention``), by predicate ``(name, module) ->
bool``, or a list mixing these; with no selection, attention-like modules are found
automatically. Each call of a selected module is recorded through its extractor (see
:mod:`interp.extractors`); repeated calls (a decoder stepping one query at a time) stack along
the query axis. Hooks are removed when the block ends, also when the forward raises.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import Tensor, nn

from .extractors import Extractor, find_extractor

Selector = Union[str, "re.Pattern[str]", type, Callable[[str, nn.Module], bool]]
Selection = Selector | Sequence[Selector] | None


class ModuleSelectionError(LookupError):
    """The module selection matched nothing; the message lists names that do exist."""


class ExtractionError(RuntimeError):
    """A selected module's output holds no weights its extractor can read."""


@dataclass(frozen=True)
class Record:
    """One call of one module: its name, the call's index, and the weights it produced."""

    module: str
    call: int
    weights: Tensor


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


def _looks_like_attention(name: str, module: nn.Module) -> bool:
    if find_extractor(module, generic=False) is not None:
        return True
    cls = type(module).__name__.lower()
    last = name.rsplit(".", 1)[-1].lower()
    return any(word in text for word in ("attention", "attn") for text in (cls, last))


def _describe_selector(selector: Selector) -> str:
    if isinstance(selector, type):
        return f"type {selector.__qualname__}"
    if isinstance(selector, re.Pattern):
        return f"regex {selector.pattern!r}"
    if isinstance(selector, str):
        return f"{selector!r}"
    return f"predicate {getattr(selector, '__name__', repr(selector))}"


def select_modules(model: nn.Module, modules: Selection = None) -> list[tuple[str, nn.Module]]:
    """Resolve a selection to ``[(name, module)]`` in definition order.

    ``None`` picks attention-like modules automatically: those with a dedicated extractor or
    whose class name contains "attention"/"attn", keeping only the innermost when they nest (a
    Hugging Face ``BertAttention`` wraps ``BertSelfAttention``; the inner one holds the weights).
    Raises :class:`ModuleSelectionError` naming the closest existing names when nothing matches.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"capture needs an nn.Module, got {type(model).__name__}")
    named = list(model.named_modules())
    names = [n for n, _ in named if n]
    if modules is None:
        chosen = [(n, m) for n, m in named if _looks_like_attention(n, m)]
        chosen_ids = {id(m) for _, m in chosen}
        inner = [
            (n, m) for n, m in chosen
            if not any(id(sub) in chosen_ids for sub in m.modules() if sub is not m)
        ]
        if not inner:
            raise ModuleSelectionError(
                f"found no attention-like module in {type(model).__name__} automatically; pass "
                f"modules= a name glob, type or predicate. Modules: {_preview(names)}"
            )
        return inner
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
            "; ".join(lines) + f". Module names: {_preview(names)} "
            "(globs match whole dotted names: use '*' for any part, e.g. 'encoder.*attn')"
        )
    return chosen


def _preview(names: Sequence[str], limit: int = 25) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def stack_calls(calls: Sequence[Tensor], name: str = "module") -> Tensor:
    """Stack repeated calls along the query axis (``-2``), zero-padding keys to the longest.

    Padding with zeros keeps the convention that keys a query cannot see have weight exactly 0
    (a decoder's self-attention sees one more key at each step).
    """
    if not calls:
        raise KeyError(f"{name} was selected but never called during the capture")
    if len(calls) == 1:
        return calls[0]
    lead = {tuple(c.shape[:-2]) for c in calls}
    if len(lead) != 1:
        raise ValueError(
            f"cannot stack the {len(calls)} calls of {name}: their leading shapes differ "
            f"({sorted(lead)}); read them one by one with Capture.calls({name!r})"
        )
    width = max(c.shape[-1] for c in calls)
    padded = [
        c if c.shape[-1] == width else torch.nn.functional.pad(c, (0, width - c.shape[-1]))
        for c in calls
    ]
    return torch.cat(padded, dim=-2)


class Capture:
    """Context manager recording attention weights from selected modules of ``model``.

    Parameters: ``modules`` (selection, see :func:`select_modules`), ``to_cpu`` (move weights to
    the CPU as they are recorded, so GPU memory is not held), ``dtype`` (cast, e.g.
    ``torch.float16``, to halve memory and disk), ``strict`` (raise :class:`ExtractionError` when
    a selected module's output holds no weights; ``False`` warns once and skips it),
    ``check_nan`` (warn, naming the module and call, when weights read back contain NaN).

    Captures nest: each keeps its own records. Entering twice is an error; reuse by creating a
    new one (cheap).
    """

    def __init__(
        self,
        model: nn.Module,
        modules: Selection = None,
        *,
        to_cpu: bool = True,
        dtype: torch.dtype | None = None,
        strict: bool = True,
        check_nan: bool = True,
    ) -> None:
        self.model = model
        self.selected = select_modules(model, modules)
        self.to_cpu = to_cpu
        self.dtype = dtype
        self.strict = strict
        self.check_nan = check_nan
        self.records: list[Record] = []
        self._calls: dict[str, list[Tensor]] = {}
        self._undo: list[Callable[[], None]] = []
        self._active = False
        self._warned: set[str] = set()
        self._nan_checked: dict[str, int] = {}

    @property
    def names(self) -> list[str]:
        """Names of the modules this capture hooks."""
        return [n for n, _ in self.selected]

    def __enter__(self) -> Capture:
        if self._active:
            raise RuntimeError("this Capture is already active; create a new one to nest")
        self._active = True
        try:
            for name, module in self.selected:
                ext = find_extractor(module)
                assert ext is not None  # nn.Module always has the duck-typed fallback
                if ext.setup is not None:
                    self._undo.append(ext.setup(module, self.model))
                handle = module.register_forward_hook(self._hook(name, ext), prepend=True)
                self._undo.append(handle.remove)
        except BaseException:
            self._detach()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._detach()

    def _detach(self) -> None:
        undo, self._undo = self._undo, []
        errors = []
        for fn in reversed(undo):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - undo everything, then report
                errors.append(e)
        self._active = False
        if errors:
            raise errors[0]

    def _hook(self, name: str, ext: Extractor) -> Callable[[nn.Module, Any, Any], None]:
        calls = self._calls.setdefault(name, [])

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            weights = ext.extract(module, output)
            if weights is None:
                self._missing(name, module, output)
                return
            weights = weights.detach()
            if weights.dim() == 2:  # [batch, keys]: a single query (attention pooling)
                weights = weights.unsqueeze(1)
            if weights.dim() not in (3, 4):
                raise ExtractionError(
                    f"{name} ({type(module).__name__}): weights must be [batch, (heads,) queries, "
                    f"keys], got shape {tuple(weights.shape)} from extractor {ext.name!r}"
                )
            if (self.to_cpu and weights.device.type != "cpu") or (
                self.dtype is not None and weights.dtype != self.dtype
            ):
                weights = weights.to(
                    device="cpu" if self.to_cpu else weights.device,
                    dtype=self.dtype or weights.dtype,
                )
            self.records.append(Record(name, len(calls), weights))
            calls.append(weights)

        return hook

    def _missing(self, name: str, module: nn.Module, output: Any) -> None:
        cls = type(module)
        hf = cls.__module__.startswith("transformers.")
        hint = (
            " For Hugging Face models load with attn_implementation='eager' (older versions also "
            "need output_attentions=True)." if hf else ""
        )
        msg = (
            f"cannot read attention weights from {name!r} ({cls.__qualname__}): its output is "
            f"{_summarise(output)}, neither (context, weights) nor an object with a `weights` "
            f"tensor. Narrow the selection, or register an extractor:\n"
            f"    @interp.register_extractor({cls.__qualname__})\n"
            f"    def weights(module, output):\n"
            f"        return ...  # [batch, (heads,) queries, keys]{hint}"
        )
        if self.strict:
            raise ExtractionError(msg)
        if name not in self._warned:
            self._warned.add(name)
            warnings.warn("interp: " + msg, RuntimeWarning, stacklevel=3)

    # ------------------------------------------------------------------ results

    def calls(self, name: str) -> list[Tensor]:
        """Weights of each call of ``name``, in call order."""
        if name not in self._calls:
            raise KeyError(f"{name!r} is not captured here; captured: {self.names}")
        calls = self._calls[name]
        self._check_nan(name, calls)
        return list(calls)

    def _check_nan(self, name: str, calls: list[Tensor]) -> None:
        # Checked when results are read, not in the hook: one pass over new calls instead of a
        # reduction (and, on a GPU, a sync) inside every forward.
        start = self._nan_checked.get(name, 0)
        if not self.check_nan or start >= len(calls):
            return
        self._nan_checked[name] = len(calls)
        for i in range(start, len(calls)):
            w = calls[i]
            if w.is_floating_point() and bool(torch.isnan(w).any()):
                module = dict(self.selected).get(name)
                warnings.warn(
                    f"interp: NaN attention weights from {name} ({type(module).__name__}) on call "
                    f"{i}; check the mask (a fully masked row softmaxes to NaN)",
                    RuntimeWarning,
                    stacklevel=3,
                )

    def __getitem__(self, name: str) -> Tensor:
        """Weights of ``name``, calls stacked along the query axis."""
        return stack_calls(self.calls(name), name)

    def __contains__(self, name: object) -> bool:
        return name in self._calls and bool(self._calls[name])

    def as_dict(self) -> dict[str, Tensor]:
        """``{module name: stacked weights}`` for every module that was called."""
        return {n: stack_calls(self.calls(n), n) for n, c in self._calls.items() if c}

    def clear(self) -> None:
        """Drop the records (keep the hooks): call between batches to bound memory."""
        self.records.clear()
        self._nan_checked.clear()
        for calls in self._calls.values():
            calls.clear()


def _summarise(output: Any) -> str:
    if isinstance(output, Tensor):
        return f"a Tensor of shape {tuple(output.shape)}"
    if isinstance(output, (tuple, list)):
        inner = ", ".join(
            f"Tensor{tuple(o.shape)}" if isinstance(o, Tensor) else type(o).__name__ for o in output[:4]
        )
        return f"a {type(output).__name__} ({inner})"
    return f"a {type(output).__name__}"


def capture(
    model: nn.Module,
    modules: Selection = None,
    *,
    to_cpu: bool = True,
    dtype: torch.dtype | None = None,
    strict: bool = True,
    check_nan: bool = True,
) -> Capture:
    """Context manager form: ``with capture(model, "encoder.*attn") as cap: model(x)``."""
    return Capture(model, modules, to_cpu=to_cpu, dtype=dtype, strict=strict, check_nan=check_nan)


def capture_attention(
    model: nn.Module,
    inputs: Any,
    modules: Selection = None,
    *,
    to_cpu: bool = True,
    dtype: torch.dtype | None = None,
    strict: bool = True,
    no_grad: bool = True,
) -> tuple[Any, dict[str, Tensor]]:
    """Plain function form: run ``model`` on ``inputs`` and return ``(output, {name: weights})``.

    ``inputs`` is a tensor (``model(x)``), a tuple (``model(*x)``) or a mapping
    (``model(**x)``).
    """
    with Capture(model, modules, to_cpu=to_cpu, dtype=dtype, strict=strict) as cap:
        with torch.no_grad() if no_grad else contextlib.nullcontext():
            output = call_model(model, inputs)
    return output, cap.as_dict()


def call_model(model: Callable[..., Any], inputs: Any) -> Any:
    """Call ``model`` with a tensor, a tuple/list of positional inputs, or a mapping of kwargs."""
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    return model(inputs)


def hooks_attached(model: nn.Module) -> int:
    """Number of forward (pre-)hooks on ``model`` and its submodules (0 after every capture)."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks)
    return total


__all__ = [
    "Capture",
    "ExtractionError",
    "ModuleSelectionError",
    "Record",
    "capture",
    "capture_attention",
    "hooks_attached",
    "select_modules",
    "stack_calls",
]
