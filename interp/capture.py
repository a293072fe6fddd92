"""Capture attention weights from any model with forward hooks, without editing the model.

    with interp.capture(model, "encoder.*attn") as cap:
        model(batch)
    cap["encoder.layers.0.self_attn"]          # [batch, (heads,) queries, keys]

Modules are chosen by name (a glob such as ``"decoder.*attention"``, or a compiled regex matched
against the whole name), by class (``nn.MultiheadAttention``, ``GPT2Attention``), by predicate
``(name, module) -> bool``, or a list mixing these; with no selection, the modules whose class
has an extractor are found automatically (:func:`interp.extractors.is_attention`). Each call of
a selected module is read by its extractor and validated (:mod:`interp.validate`) before it is
recorded; repeated calls (a decoder stepping one query at a time) stack along the query axis.
``inline=`` records softmax / scaled-dot-product calls made inside the selected modules instead
(:mod:`interp.inline`). A capture records the calls made by the thread that entered it. Hooks are
removed when the block ends, also when the forward raises.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from . import compiled, hf
from . import inline as inline_module
from .extractors import Extractor, find_extractor
from .selection import (
    ModuleSelectionError,
    Selection,
    Selector,
    attention_modules,
    is_building_block,
    meant,
    preview,
    select_modules,
)
from .validate import ExtractionError, Finding, InvalidWeightsError, problems


@dataclass(frozen=True)
class Record:
    """One call of one module: its name, the call's index, the weights, and for inline calls the
    call site (``file.py:line (function)``)."""

    module: str
    call: int
    weights: Tensor
    site: str | None = None


def stack_calls(calls: Sequence[Tensor], name: str = "module") -> Tensor:
    """Stack repeated calls along the query axis (``-2``), zero-padding keys to the longest.

    Padding with zeros keeps the convention that keys a query cannot see have weight exactly 0
    (a decoder's self-attention sees one more key at each step). Key counts must not shrink from
    one call to the next: that means the calls came from different inputs.
    """
    if not calls:
        raise KeyError(f"{name} was selected but never called during the capture")
    if len(calls) == 1:
        return calls[0]
    lead = {tuple(c.shape[:-2]) for c in calls}
    if len(lead) != 1:
        raise ValueError(
            f"cannot stack the {len(calls)} calls of {name}: their leading shapes differ "
            f"({sorted(lead)}); read them one by one with Capture.calls({name!r}), or call "
            f"Capture.clear() between batches"
        )
    for i in range(1, len(calls)):
        if calls[i].shape[-1] < calls[i - 1].shape[-1]:
            raise ValueError(
                f"cannot stack the calls of {name}: call {i} has {calls[i].shape[-1]} keys after "
                f"a call with {calls[i - 1].shape[-1]}, so they come from different inputs; read "
                f"them one by one with Capture.calls({name!r}), or call Capture.clear() between "
                f"batches"
            )
    width = max(c.shape[-1] for c in calls)
    padded = [
        c if c.shape[-1] == width else torch.nn.functional.pad(c, (0, width - c.shape[-1]))
        for c in calls
    ]
    return torch.cat(padded, dim=-2)


def _inline_kinds(inline: bool | str | Sequence[str] | None) -> frozenset[str]:
    if inline is None or inline is False:
        return frozenset()
    if inline is True or inline == "all":
        return frozenset(inline_module.KINDS)
    kinds = {inline} if isinstance(inline, str) else set(inline)
    unknown = kinds - set(inline_module.KINDS)
    if unknown:
        raise ValueError(
            f"inline= takes True, 'all' or some of {inline_module.KINDS}, got {sorted(unknown)}"
        )
    return frozenset(kinds)



class Capture(Mapping[str, Tensor]):
    """Context manager recording attention weights from selected modules of ``model``.

    Read it as a read-only mapping ``{module name: weights}`` over the modules that were called:
    ``cap[name]`` stacks the calls along the query axis (``[batch, (heads,) queries, keys]``, a
    decoder's steps become its queries), ``list(cap)``, ``len(cap)``, ``cap.items()``,
    ``dict(cap)``. ``cap.calls(name)`` is the one way to read the calls one by one (a
    decoder's steps, in order); ``cap.records`` lists every call of every module in call order.

    Parameters: ``modules`` (selection, see :func:`select_modules`), ``to_cpu`` (move weights to
    the CPU as they are recorded, so GPU memory is not held), ``dtype`` (cast, e.g.
    ``torch.float16``, to halve memory and disk), ``strict`` (raise when a selected module's
    output holds no weights or they fail validation; ``False`` warns once per module and skips
    them), ``normalized`` (``False`` accepts rows that do not sum to 1, for deliberately
    unnormalised weights; finiteness, sign and shape are still checked), ``inline`` (``True``,
    ``"softmax"`` or ``"sdpa"``: record those calls made inside the selected modules' forward
    instead of reading their output).

    ``model`` may be a ``torch.compile`` wrapper: it runs uncompiled while captured (see
    :mod:`interp.compiled`). Only calls made by the thread that entered the capture are recorded;
    other threads calling the model meanwhile are neither recorded nor changed. Captures nest:
    each keeps its own records. Entering twice is an error; create a new one (cheap).
    """

    def __init__(
        self,
        model: nn.Module,
        modules: Selection = None,
        *,
        to_cpu: bool = True,
        dtype: torch.dtype | None = None,
        strict: bool = True,
        normalized: bool = True,
        inline: bool | str | Sequence[str] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"capture needs an nn.Module, got {type(model).__name__}")
        self.model = model
        self.root = compiled.unwrap(model)
        if self.root is not model:
            modules = _strip_compiled_prefix(modules)
        self.inline = _inline_kinds(inline)
        self.strict = strict
        self.selected = self._check_selection(select_modules(self.root, modules))
        self.to_cpu = to_cpu
        self.dtype = dtype
        self.normalized = normalized
        self.records: list[Record] = []
        self._calls: dict[str, list[Tensor]] = {}
        self._sites: dict[str, list[str | None]] = {}
        self._layout: dict[str, tuple[int, int | None]] = {}
        self._undo: list[Callable[[], None]] = []
        self._active = False
        self._warned: set[str] = set()
        self._thread: int | None = None
        self._seen = 0
        self._warn_idle = True  # capture_dataset reports an idle run itself
        #: ``{module name: first error message}`` for modules skipped with ``strict=False``.
        self.problems: dict[str, str] = {}

    def _check_selection(self, chosen: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
        if self.inline:
            return chosen
        bad = [(n, m) for n, m in chosen if is_building_block(m)]
        if not bad:
            return chosen
        what = ", ".join(f"{n or '(root)'!r} is a {type(m).__name__}" for n, m in bad[:6])
        more = f" (and {len(bad) - 6} more)" if len(bad) > 6 else ""
        msg = (f"{what}{more}: not attention modules, whatever their names say; "
               f"{meant(self.root, [n for n, _ in bad])}.")
        kept = [(n, m) for n, m in chosen if not is_building_block(m)]
        if self.strict or not kept:
            raise ModuleSelectionError(msg)
        warnings.warn(f"interp: skipping {msg}", RuntimeWarning, stacklevel=4)
        return kept

    @property
    def names(self) -> list[str]:
        """Names of the modules this capture hooks."""
        return [n for n, _ in self.selected]

    def __enter__(self) -> Capture:
        if self._active:
            raise RuntimeError("this Capture is already active; create a new one to nest")
        self._active = True
        self._thread = threading.get_ident()
        try:
            self._undo.append(compiled.run_uncompiled(self.model))
            for name, module in self.selected:
                self._calls.setdefault(name, [])
                self._sites.setdefault(name, [])
                self._undo.append(self._attach(name, module))
        except BaseException:
            self._detach()
            raise
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._detach()
        if exc_type is None and self._seen == 0 and self.selected and self._warn_idle:
            warnings.warn(
                f"interp: none of the {len(self.selected)} selected modules "
                f"({preview(self.names, 4)}) ran while the capture was active, so nothing was "
                f"recorded. If the model is called through torch.compile(...), capture the "
                f"compiled module itself (it runs uncompiled while captured).",
                RuntimeWarning,
                stacklevel=2,
            )

    def _attach(self, name: str, module: nn.Module) -> Callable[[], None]:
        thread = self._thread
        assert thread is not None
        if self.inline:

            def on_inline(mod: nn.Module, weights: Tensor, site: str) -> None:
                self._deliver(name, mod, weights, None, None, site)

            return inline_module.attach(module, self.inline, on_inline, thread)
        ext = find_extractor(module)
        assert ext is not None  # every module has the fallback
        undo: list[Callable[[], None]] = []
        try:

            def deliver(mod: nn.Module, weights: Tensor | None, output: Any) -> None:
                self._deliver(name, mod, weights, output, ext, None)

            if ext.attach is not None:  # custom wiring does its own setup
                undo.append(ext.attach(name, module, self.root, deliver, thread))
            else:
                if ext.setup is not None:
                    undo.append(ext.setup(module, self.root))

                def hook(mod: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
                    if threading.get_ident() == thread:
                        deliver(mod, ext.read(mod, args, kwargs, output), output)

                undo.append(module.register_forward_hook(hook, with_kwargs=True).remove)
        except BaseException:
            for fn in reversed(undo):
                fn()
            raise

        def undo_all() -> None:
            for fn in reversed(undo):
                fn()

        return undo_all

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

    # ------------------------------------------------------------------ recording

    def _deliver(self, name: str, module: nn.Module, weights: Tensor | None, output: Any,
                 ext: Extractor | None, site: str | None) -> None:
        self._seen += 1
        if weights is None:
            self._missing(name, module, output, ext)
            return
        weights = weights.detach()
        if weights.dim() == 2:  # [batch, keys]: one query per call (a decoding step, pooling)
            weights = weights.unsqueeze(1)
        finding = problems(weights, normalized=self.normalized) or self._consistency(name, weights)
        if finding is not None:
            self._invalid(name, module, ext, finding, site)
            return
        if (self.to_cpu and weights.device.type != "cpu") or (
            self.dtype is not None and weights.dtype != self.dtype
        ):
            weights = weights.to(
                device="cpu" if self.to_cpu else weights.device,
                dtype=self.dtype or weights.dtype,
            )
        calls = self._calls[name]
        self.records.append(Record(name, len(calls), weights, site))
        calls.append(weights)
        self._sites[name].append(site)

    def _consistency(self, name: str, weights: Tensor) -> Finding | None:
        layout = (weights.dim(), weights.shape[1] if weights.dim() == 4 else None)
        first = self._layout.setdefault(name, layout)
        if first == layout:
            return None
        was = f"[batch, {first[1]} heads, queries, keys]" if first[1] else "[batch, queries, keys]"
        return Finding(
            "inconsistent across calls",
            f"shape {tuple(weights.shape)} after earlier calls shaped {was}",
        )

    def _fail(self, name: str, msg: str, error: type[ExtractionError]) -> None:
        if self.strict:
            raise error(msg)
        self.problems.setdefault(name, msg)
        if name not in self._warned:
            self._warned.add(name)
            warnings.warn("interp: " + msg, RuntimeWarning, stacklevel=4)

    def _invalid(self, name: str, module: nn.Module, ext: Extractor | None, finding: Finding,
                 site: str | None) -> None:
        cls = type(module).__name__
        source = f"inline call at {site}" if site else f"extractor {ext.name if ext else '?'!r}"
        todo = [
            f"if another element of its output holds the weights, register a layout or "
            f"extractor: interp.register_extractor({cls}, interp.OUTPUT_STATE_WEIGHTS) or "
            f"@interp.register_extractor({cls})"
        ]
        if finding.reason == "rows sum to more than 1":
            if module.training and _has_dropout(module):
                todo.insert(0, "the module is in training mode: attention dropout rescales "
                               "rows, so capture in eval mode")
            todo.append("if these weights are deliberately unnormalised, pass normalized=False")
        if finding.reason == "inconsistent across calls":
            todo = ["call capture.clear() between inputs of different layouts, or capture them "
                    "separately"]
        self._fail(name, (
            f"{name!r} ({cls}): the tensor read by {source} is not attention weights: "
            f"{finding.reason} ({finding.evidence}). Nothing was recorded for this call. "
            f"To fix: {'; '.join(todo)}."
        ), InvalidWeightsError)

    def _missing(self, name: str, module: nn.Module, output: Any, ext: Extractor | None) -> None:
        label = type(module).__name__
        impl = hf.implementation(module)
        if impl is not None and impl != "eager":
            setup = ext.setup_name if ext is not None and ext.setup is not None else "no setup"
            msg = (
                f"cannot read attention weights from {name!r} ({label}): it ran with "
                f"attn_implementation={impl!r}, which never forms the weights. Its extractor "
                f"{ext.name if ext else '?'!r} runs with {setup}; register extractors for "
                f"Hugging Face classes with setup=None (the default keeps the eager switch), or "
                f"load the model with attn_implementation='eager'."
            )
        elif isinstance(module, nn.MultiheadAttention):
            msg = (
                f"cannot read attention weights from {name!r} ({label}): its extractor "
                f"{ext.name if ext else '?'!r} got {_summarise(output)}; nn.MultiheadAttention "
                f"returns no weights when called with need_weights=False (as the Transformer "
                f"layers do). The built-in extractor recomputes them beside the call: unregister "
                f"yours (interp.unregister_extractor(nn.MultiheadAttention)), or compute them in "
                f"it with interp.torch_attention.mha_weights."
            )
        elif isinstance(output, (tuple, list)) and len(output) > 2:
            msg = (
                f"cannot read attention weights from {name!r} ({label}): its output is "
                f"{_summarise(output)}; interp does not guess which element holds the weights. "
                f"Register its layout, e.g. interp.register_extractor({label}, "
                f"interp.OUTPUT_STATE_WEIGHTS) for (output, state, weights), "
                f"interp.OUTPUT_BIAS_WEIGHTS for (output, bias, weights), or "
                f"interp.tuple_item(i, 'description') for element i."
            )
        else:
            msg = (
                f"cannot read attention weights from {name!r} ({label}): its output is "
                f"{_summarise(output)}, neither (context, weights) nor an object with a "
                f"`weights` tensor. If this module computes attention, register an extractor:\n"
                f"    @interp.register_extractor({label})\n"
                f"    def weights(module, output):\n"
                f"        return ...  # [batch, (heads,) queries, keys]\n"
                f"or, if the weights are computed inline with softmax, pass inline=True; "
                f"otherwise {meant(self.root, [name])}."
            )
        self._fail(name, msg, ExtractionError)

    # ------------------------------------------------------------------ results

    def calls(self, name: str, site: str | None = None) -> list[Tensor]:
        """Weights of each call of ``name``, in call order (only those from ``site`` if given)."""
        if name not in self._calls:
            raise KeyError(f"{name!r} is not captured here; captured: {self.names}")
        calls = self._calls[name]
        if site is None:
            return list(calls)
        return [c for c, s in zip(calls, self._sites[name]) if s == site]

    def sites(self, name: str) -> list[str]:
        """Distinct call sites of ``name``'s inline records, in first-seen order."""
        if name not in self._sites:
            raise KeyError(f"{name!r} is not captured here; captured: {self.names}")
        return list(dict.fromkeys(s for s in self._sites[name] if s is not None))

    def __getitem__(self, name: str) -> Tensor:
        """Weights of ``name``, calls stacked along the query axis."""
        if name not in self:
            if name in self._calls:
                raise KeyError(f"{name!r} is selected but was not called while capturing")
            raise KeyError(f"{name!r} is not captured here; captured: {self.names}")
        return stack_calls(self._one_site(name), name)

    def __iter__(self) -> Iterator[str]:
        """Names of the modules that recorded at least one call, in selection order."""
        return iter([n for n, c in self._calls.items() if c])

    def __len__(self) -> int:
        return sum(1 for c in self._calls.values() if c)

    # a capture is one recording, not a value: compared and hashed by identity
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<interp.Capture of {len(self)} module(s): {list(self)}>"

    def _one_site(self, name: str) -> list[Tensor]:
        sites = self.sites(name)
        if len(sites) > 1:
            raise ValueError(
                f"{name!r} recorded inline weights from {len(sites)} call sites "
                f"({', '.join(sites)}); read one with Capture.calls({name!r}, site=...)"
            )
        return self.calls(name)

    def __contains__(self, name: object) -> bool:
        return name in self._calls and bool(self._calls[name])

    def as_dict(self) -> dict[str, Tensor]:
        """``{module name: stacked weights}`` for every module that was called (``dict(cap)``)."""
        return {n: self[n] for n in self}

    def clear(self) -> None:
        """Drop the records (keep the hooks): call between batches to bound memory."""
        self.records.clear()
        self._layout.clear()
        for calls in self._calls.values():
            calls.clear()
        for sites in self._sites.values():
            sites.clear()


def _strip_compiled_prefix(modules: Selection) -> Selection:
    """Let names of a ``torch.compile`` wrapper (``_orig_mod.x``) select in the original model."""

    def strip(s: Any) -> Any:
        return s[len(compiled.PREFIX):] if isinstance(s, str) and s.startswith(compiled.PREFIX) else s

    if isinstance(modules, (list, tuple)):
        return [strip(s) for s in modules]
    return strip(modules)


def _has_dropout(module: nn.Module) -> bool:
    rates = [getattr(m, "p", 0.0) for m in module.modules() if isinstance(m, nn.Dropout)]
    rates += [getattr(module, a, 0.0) for a in ("dropout", "dropout_p", "attention_dropout")]
    return any(isinstance(r, float) and r > 0 for r in rates)


def _summarise(output: Any) -> str:
    if isinstance(output, Tensor):
        return f"a Tensor of shape {tuple(output.shape)}"
    if isinstance(output, (tuple, list)):
        inner = ", ".join(
            f"Tensor{tuple(o.shape)}" if isinstance(o, Tensor) else type(o).__name__ for o in output[:4]
        )
        return f"a {type(output).__name__} of {len(output)} ({inner})"
    return f"a {type(output).__name__}"


def capture(
    model: nn.Module,
    modules: Selection = None,
    *,
    to_cpu: bool = True,
    dtype: torch.dtype | None = None,
    strict: bool = True,
    normalized: bool = True,
    inline: bool | str | Sequence[str] | None = None,
) -> Capture:
    """Context manager form: ``with capture(model, "encoder.*attn") as cap: model(x)``."""
    return Capture(model, modules, to_cpu=to_cpu, dtype=dtype, strict=strict,
                   normalized=normalized, inline=inline)


def capture_attention(
    model: nn.Module,
    inputs: Any,
    modules: Selection = None,
    *,
    to_cpu: bool = True,
    dtype: torch.dtype | None = None,
    strict: bool = True,
    no_grad: bool = True,
    normalized: bool = True,
    inline: bool | str | Sequence[str] | None = None,
) -> tuple[Any, dict[str, Tensor]]:
    """Plain function form: run ``model`` on ``inputs`` and return ``(output, {name: weights})``.

    ``inputs`` is a tensor (``model(x)``), a tuple (``model(*x)``) or a mapping
    (``model(**x)``).
    """
    with Capture(model, modules, to_cpu=to_cpu, dtype=dtype, strict=strict,
                 normalized=normalized, inline=inline) as cap:
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
    "InvalidWeightsError",
    "ModuleSelectionError",
    "Record",
    "Selection",
    "Selector",
    "attention_modules",
    "capture",
    "capture_attention",
    "hooks_attached",
    "is_building_block",
    "select_modules",
    "stack_calls",
]
