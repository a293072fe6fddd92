"""Extractors: how to read attention weights out of one call of one module.

An extractor is looked up by module class, walking the class's MRO (a subclass inherits its
parent's extractor); a class may be registered by its type or, for libraries interp does not
import, by its qualified name (``"transformers.models.bert.modeling_bert.BertSelfAttention"``).
Automatic selection picks exactly the modules that have one of these (see :func:`is_attention`);
names such as ``attn`` play no part.

Built in:

- :class:`torch.nn.MultiheadAttention`, also inside ``nn.Transformer`` stacks
  (:mod:`interp.torch_attention`): per-head weights are recomputed from the call's own inputs
  beside it, so the model's call and its fused fast paths run exactly as without capture;
- Hugging Face attention classes of BERT, RoBERTa, DistilBERT, GPT-2, BART and T5
  (:mod:`interp.hf`), each with its tuple layout and the switch to eager attention;
- any module whose ``forward`` is annotated to return a type with a ``weights`` field (the
  course's ``AttentionOutput`` and any ``NamedTuple``/dataclass like it): ``output.weights``.

A module selected by name that has none of these is read by the fallback: an output object with
a tensor attribute ``weights``, or a two-element ``(context, weights)`` tuple. Longer tuples are
never guessed at: ``(output, hidden, weights)`` and ``(output, bias, weights)`` need a layout,
e.g. ``register_extractor(MyDecoder, OUTPUT_STATE_WEIGHTS)``. Whatever an extractor returns is
validated (:mod:`interp.validate`) before it is recorded.

Third-party packages add their own with :func:`register_extractor` or through the
``interp.extractors`` entry-point group: each entry point names a module (importing it registers
extractors with the decorator) or a zero-argument callable that registers them.
"""

from __future__ import annotations

import dataclasses
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, overload

from torch import Tensor, nn

from ._plugins import load_entry_points

ENTRY_POINT_GROUP = "interp.extractors"

ExtractFn = Callable[..., "Tensor | None"]
SetupFn = Callable[[nn.Module, nn.Module], Callable[[], None]]
#: ``deliver(module, weights_or_None, output)``: hand one call's weights to the capture.
Deliver = Callable[[nn.Module, "Tensor | None", Any], None]
#: ``attach(name, module, root, deliver, thread) -> undo``: custom wiring instead of a hook.
AttachFn = Callable[[str, nn.Module, nn.Module, Deliver, int], Callable[[], None]]


@dataclass(frozen=True)
class Extractor:
    """How to read weights from one module class.

    ``extract(module, output)`` returns one call's weights or ``None`` when the output holds
    none (``with_inputs=True``: ``extract(module, output, args, kwargs)``). ``setup(module,
    root)``, if given, runs when a capture attaches and returns a function that undoes it (the
    eager-attention switch of a Hugging Face module). ``attach`` replaces the default forward
    hook for modules whose weights must be computed elsewhere (see
    :mod:`interp.torch_attention`); it then applies any setup itself, and ``setup`` is only
    what an extractor registered over this one inherits. ``name`` describes it in errors and ``python -m interp
    modules``; ``setup_name`` names the setup.
    """

    extract: ExtractFn
    setup: SetupFn | None = None
    name: str = ""
    with_inputs: bool = False
    attach: AttachFn | None = None
    setup_name: str = ""

    def read(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> Tensor | None:
        """One call's weights (``None`` if the output holds none)."""
        if self.with_inputs:
            return self.extract(module, output, args, kwargs)
        return self.extract(module, output)


_REGISTRY: dict[type, Extractor] = {}
_BY_NAME: dict[str, Extractor] = {}
_plugins_loaded = False
_plugin_lock = threading.Lock()


def qualified_name(cls: type) -> str:
    """``module.QualName`` of a class, the key of name-based registrations."""
    return f"{cls.__module__}.{cls.__qualname__}"


# --------------------------------------------------------------------------- layouts


def tuple_item(index: int, layout: str) -> ExtractFn:
    """An extractor reading element ``index`` of a tuple output (``layout`` names it in errors)."""

    def extract(module: nn.Module, output: Any) -> Tensor | None:
        if isinstance(output, (tuple, list)) and len(output) > index:
            item = output[index]
            return item if isinstance(item, Tensor) else None
        return None

    extract.__name__ = extract.__qualname__ = layout
    return extract


#: ``(output, weights)``: Bahdanau/Luong modules, Hugging Face BERT-style attention.
OUTPUT_WEIGHTS = tuple_item(1, "(output, weights)")
#: ``(output, state, weights)``: an attention decoder returning its recurrent state in between.
OUTPUT_STATE_WEIGHTS = tuple_item(2, "(output, state, weights)")
#: ``(output, bias, weights)``: Hugging Face ``T5Attention`` (position bias in between).
OUTPUT_BIAS_WEIGHTS = tuple_item(2, "(output, bias, weights)")


# --------------------------------------------------------------------------- registry

_KEEP: Any = object()


@overload
def register_extractor(
    module_type: type[nn.Module] | str, fn: None = None, *,
    setup: SetupFn | None | Literal[False] = ..., name: str | None = ...,
) -> Callable[[ExtractFn], ExtractFn]: ...


@overload
def register_extractor(
    module_type: type[nn.Module] | str, fn: ExtractFn, *,
    setup: SetupFn | None | Literal[False] = ..., name: str | None = ...,
) -> ExtractFn: ...


def register_extractor(
    module_type: type[nn.Module] | str,
    fn: ExtractFn | None = None,
    *,
    setup: SetupFn | None | Literal[False] = None,
    name: str | None = None,
) -> Any:
    """Register ``fn(module, output) -> Tensor | None`` for ``module_type``; usable as decorator.

    ``module_type`` is a class or a qualified class name (``"pkg.mod.Class"``, for classes whose
    library should not be imported). ``setup=None`` keeps the setup of the extractor this one
    replaces (e.g. the eager-attention switch of a Hugging Face class); ``setup=False`` drops it.
    A layout such as :data:`OUTPUT_STATE_WEIGHTS` can be passed as ``fn``::

        interp.register_extractor(AttnDecoder, interp.OUTPUT_STATE_WEIGHTS)

        @interp.register_extractor(MyAttention)
        def my_weights(module, output):
            return output.alignment
    """
    if isinstance(module_type, str):
        if "." not in module_type:
            raise TypeError(
                f"register_extractor: a class name must be qualified ('package.module.Class'), "
                f"got {module_type!r}"
            )
    elif not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_extractor expects an nn.Module subclass, got {module_type!r}")

    def decorate(extract: ExtractFn) -> ExtractFn:
        if not callable(extract):
            raise TypeError(f"register_extractor: the extractor must be callable, got {extract!r}")
        previous = _previous(module_type)
        if setup is None and previous is not None:
            kept, kept_name = previous.setup, previous.setup_name
        elif setup is None or setup is False:
            kept, kept_name = None, ""
        else:
            kept, kept_name = setup, getattr(setup, "__name__", "setup")
        ext = Extractor(
            extract, kept, name or getattr(extract, "__name__", repr(extract)),
            setup_name=kept_name,
        )
        if isinstance(module_type, str):
            _BY_NAME[module_type] = ext
        else:
            _REGISTRY[module_type] = ext
        return extract

    return decorate if fn is None else decorate(fn)


def _previous(module_type: type | str) -> Extractor | None:
    if isinstance(module_type, str):
        return _BY_NAME.get(module_type)
    return _lookup(module_type, generic=True)


def unregister_extractor(module_type: type[nn.Module] | str) -> None:
    """Remove the extractor registered for exactly ``module_type`` (no error if there is none);
    a built-in one registered over comes back."""
    if isinstance(module_type, str):
        _BY_NAME.pop(module_type, None)
        if module_type in _BUILTIN_BY_NAME:
            _BY_NAME[module_type] = _BUILTIN_BY_NAME[module_type]
    else:
        _REGISTRY.pop(module_type, None)
        if module_type in _BUILTIN:
            _REGISTRY[module_type] = _BUILTIN[module_type]


def load_plugins(force: bool = False) -> list[str]:
    """Load extractors advertised under the ``interp.extractors`` entry-point group.

    Runs once per process (``force=True`` reloads). A plugin that fails to import is reported
    with a warning naming it, not raised: one broken plugin must not stop every capture.
    Returns the names of the entry points loaded.
    """
    global _plugins_loaded
    with _plugin_lock:
        if _plugins_loaded and not force:
            return []
        _plugins_loaded = True
        return load_entry_points(ENTRY_POINT_GROUP, _call_if_function, "extractor")


def _call_if_function(obj: Any) -> None:
    """An extractor plugin is a module (registering on import) or a function that registers."""
    if callable(obj) and not isinstance(obj, type):
        obj()


def _lookup(cls: type, *, generic: bool) -> Extractor | None:
    for base in cls.__mro__:
        if base is nn.Module:
            return _FALLBACK if generic else None
        ext = _REGISTRY.get(base) or _BY_NAME.get(qualified_name(base))
        if ext is not None:
            return ext
        declared = _declared_output(base)
        if declared is not None:
            return declared
    return _FALLBACK if generic else None


def find_extractor(module: nn.Module, *, generic: bool = True) -> Extractor | None:
    """The extractor for ``module``'s class (nearest class in its MRO).

    With ``generic=False`` the fallback (a ``weights`` attribute or a ``(context, weights)``
    pair) is not returned, so callers can tell "this class is attention" from "we will try".
    """
    load_plugins()
    return _lookup(type(module), generic=generic)


def is_attention(module: nn.Module) -> bool:
    """Whether ``module``'s class is known attention: a registered or declared extractor."""
    return find_extractor(module, generic=False) is not None


def registered_types() -> list[type | str]:
    """Module classes (or qualified class names) with an extractor, in registration order."""
    load_plugins()
    return [*_REGISTRY, *_BY_NAME]


# --------------------------------------------------------------------------- declared outputs

_DECLARED: dict[type, Extractor | None] = {}


def _has_weights_field(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    if "weights" in getattr(tp, "_fields", ()):
        return True
    if dataclasses.is_dataclass(tp):
        return any(f.name == "weights" for f in dataclasses.fields(tp))
    return False


def _declared_output(cls: type) -> Extractor | None:
    """An extractor for a class whose own ``forward`` declares a return type with ``weights``."""
    if cls in _DECLARED:
        return _DECLARED[cls]
    ext = None
    forward = cls.__dict__.get("forward")
    if forward is not None:
        try:
            ret = typing.get_type_hints(forward).get("return")
        except Exception:  # noqa: BLE001 - unresolvable annotations declare nothing
            ret = None
        if _has_weights_field(ret):
            ext = Extractor(_declared_extract, name=f"declared output {ret.__qualname__}.weights")
    _DECLARED[cls] = ext
    return ext


def _declared_extract(module: nn.Module, output: Any) -> Tensor | None:
    weights = getattr(output, "weights", None)
    return weights if isinstance(weights, Tensor) else None


# --------------------------------------------------------------------------- fallback


def _fallback_extract(module: nn.Module, output: Any) -> Tensor | None:
    weights = getattr(output, "weights", None)
    if isinstance(weights, Tensor):
        return weights
    if isinstance(output, (tuple, list)) and len(output) == 2 and isinstance(output[1], Tensor):
        return output[1]
    return None


def describe(module: nn.Module) -> str:
    """One line naming the extractor (and the setup it applies) that would handle ``module``."""
    ext = find_extractor(module)
    if ext is None:
        return "none"
    applies = ext.setup_name and ext.attach is None and (
        ext.setup is not hf.eager_setup or hf.is_hf_module(module))
    return ext.name + (f" + {ext.setup_name}" if applies else "")


# --------------------------------------------------------------------------- shared patches


class _RefCounted:
    """Apply a patch to an object once, however many captures ask; undo when the last leaves.

    Nested or overlapping captures on the same module must not stack patches or restore
    attributes out of order, so patches are reference-counted per (object, key). Objects are
    keyed by identity (configs are often unhashable) and held only while patched.
    """

    def __init__(self) -> None:
        self._state: dict[tuple[int, str], list[Any]] = {}
        self._lock = threading.Lock()

    def acquire(self, obj: Any, key: str, apply: Callable[[], Callable[[], None]]) -> Callable[[], None]:
        slot_key = (id(obj), key)
        with self._lock:
            slot = self._state.get(slot_key)
            if slot is None:
                slot = self._state[slot_key] = [0, apply(), obj]
            slot[0] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            with self._lock:
                slot = self._state.get(slot_key)
                if slot is None:
                    return
                slot[0] -= 1
                if slot[0] > 0:
                    return
                del self._state[slot_key]
            slot[1]()

        return release

    def subscribe(self, obj: Any, key: str, apply: Callable[[], Callable[[], None]],
                  listeners: dict[int, list[Any]], listener: Any) -> Callable[[], None]:
        """Acquire the patch ``key`` on ``obj`` and add ``listener`` to ``listeners[id(obj)]``;
        the returned undo removes the listener, then releases the patch."""
        release = self.acquire(obj, key, apply)
        listeners[id(obj)].append(listener)

        def undo() -> None:
            current = listeners.get(id(obj))
            if current is not None and listener in current:
                current.remove(listener)
            release()

        return undo

    def __len__(self) -> int:
        return len(self._state)


_patches = _RefCounted()


__all__ = [
    "ENTRY_POINT_GROUP",
    "OUTPUT_BIAS_WEIGHTS",
    "OUTPUT_STATE_WEIGHTS",
    "OUTPUT_WEIGHTS",
    "Extractor",
    "describe",
    "find_extractor",
    "is_attention",
    "load_plugins",
    "qualified_name",
    "register_extractor",
    "registered_types",
    "tuple_item",
    "unregister_extractor",
]

from . import hf, torch_attention  # noqa: E402,F401 - register the built-in extractors

_BUILTIN, _BUILTIN_BY_NAME = dict(_REGISTRY), dict(_BY_NAME)

# The fallback keeps the eager switch for Hugging Face classes outside the tested families, so an
# extractor registered for one of them inherits it (a no-op for every other module).
_FALLBACK = Extractor(
    _fallback_extract, hf.eager_setup, "fallback when selected by name: .weights or (context, weights)",
    setup_name=hf.EAGER_SWITCH,
)
