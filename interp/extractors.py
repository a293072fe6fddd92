"""Extractors: how to pull attention weights out of one module call.

An extractor is looked up by module type (walking the class's MRO, so a subclass inherits its
parent's extractor). Three are built in:

- :class:`torch.nn.MultiheadAttention`: a kwargs pre-hook forces ``need_weights=True,
  average_attn_weights=False`` so every call yields per-head weights ``[batch, heads, q, k]``;
  the output the caller asked for is restored afterwards, so the model computes exactly what it
  did without capture. Enclosing ``nn.TransformerEncoder`` stacks are kept off their nested-tensor
  fast path while captured (the encoder *layer*'s fused fast path already steps aside whenever a
  hook is attached to one of its submodules).
- Hugging Face attention modules (when ``transformers`` is installed): while captured, the
  module's ``config._attn_implementation`` is switched to ``"eager"``, the only implementation that
  materialises the weights; its ``(context, weights)`` output is then read like any other.
- any other module (the fallback, registered for :class:`torch.nn.Module`): an output with a
  tensor attribute ``weights`` (the course's ``AttentionOutput``), or a tuple/list
  ``(context, weights, ...)`` whose second element is a tensor of rank 3 or 4.

Third-party packages add their own with :func:`register_extractor` or through the
``interp.extractors`` entry-point group: each entry point names a module (importing it registers
extractors with the decorator) or a zero-argument callable that registers them.
"""

from __future__ import annotations

import importlib.metadata
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

ENTRY_POINT_GROUP = "interp.extractors"

ExtractFn = Callable[[nn.Module, Any], "Tensor | None"]
SetupFn = Callable[[nn.Module, nn.Module], Callable[[], None]]


@dataclass(frozen=True)
class Extractor:
    """How to read weights from one module type.

    ``extract(module, output)`` returns the weights tensor of one call, or ``None`` when the
    output holds none. ``setup(module, root)``, if given, runs when a capture attaches to the
    module and returns a function that undoes it (e.g. removing a pre-hook).
    """

    extract: ExtractFn
    setup: SetupFn | None = None
    name: str = ""


_REGISTRY: dict[type, Extractor] = {}
_plugins_loaded = False
_plugin_lock = threading.Lock()


def register_extractor(
    module_type: type[nn.Module], *, setup: SetupFn | None = None
) -> Callable[[ExtractFn], ExtractFn]:
    """Decorator: register ``fn(module, output) -> Tensor | None`` for ``module_type``.

    Example::

        @interp.register_extractor(MyAttention)
        def my_weights(module, output):
            return output.alignment
    """
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_extractor expects an nn.Module subclass, got {module_type!r}")

    def decorate(fn: ExtractFn) -> ExtractFn:
        _REGISTRY[module_type] = Extractor(fn, setup, getattr(fn, "__name__", repr(fn)))
        return fn

    return decorate


def unregister_extractor(module_type: type[nn.Module]) -> None:
    """Remove the extractor registered for exactly ``module_type`` (no error if there is none)."""
    _REGISTRY.pop(module_type, None)


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
        loaded = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
                if callable(obj) and not isinstance(obj, type):
                    obj()
                loaded.append(ep.name)
            except Exception as exc:  # noqa: BLE001 - report and carry on
                warnings.warn(
                    f"interp: extractor plugin {ep.name!r} ({ep.value}) failed to load: "
                    f"{type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return loaded


def find_extractor(module: nn.Module, *, generic: bool = True) -> Extractor | None:
    """The extractor for ``module``'s type (nearest class in its MRO).

    With ``generic=False`` the duck-typed fallback registered for ``nn.Module`` is not returned,
    so callers can tell "a dedicated extractor exists" from "we will try duck typing".
    """
    load_plugins()
    for cls in type(module).__mro__:
        if cls is nn.Module and not generic:
            return None
        ext = _REGISTRY.get(cls)
        if ext is not None:
            return ext
    return None


def registered_types() -> list[type]:
    """Module types with an extractor, in registration order."""
    load_plugins()
    return list(_REGISTRY)


# --------------------------------------------------------------------------- shared patches


class _RefCounted:
    """Apply a patch to an object once, however many captures ask; undo when the last leaves.

    Nested or overlapping captures on the same module must not stack pre-hooks or restore
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

    def __len__(self) -> int:
        return len(self._state)


_patches = _RefCounted()


# --------------------------------------------------------------------------- built-ins


def _duck_weights(output: Any) -> Tensor | None:
    weights = getattr(output, "weights", None)
    if isinstance(weights, Tensor):
        return weights
    if isinstance(output, (tuple, list)) and len(output) >= 2:
        second = output[1]
        if isinstance(second, Tensor) and second.dim() in (3, 4):
            return second
    return None


def _generic_setup(module: nn.Module, root: nn.Module) -> Callable[[], None]:
    """Switch a Hugging Face attention module's config to eager attention while captured."""
    if not type(module).__module__.startswith("transformers."):
        return lambda: None
    config = getattr(module, "config", None)
    if config is None or not hasattr(config, "_attn_implementation"):
        return lambda: None

    def apply() -> Callable[[], None]:
        previous = config._attn_implementation
        config._attn_implementation = "eager"

        def undo() -> None:
            config._attn_implementation = previous

        return undo

    return _patches.acquire(config, "attn_implementation", apply)


def _generic_extract(module: nn.Module, output: Any) -> Tensor | None:
    return _duck_weights(output)


_REGISTRY[nn.Module] = Extractor(_generic_extract, _generic_setup, "duck-typed (context, weights)")


# nn.MultiheadAttention.forward(query, key, value, key_padding_mask, need_weights, attn_mask,
#                               average_attn_weights, is_causal)
_MHA_NEED_WEIGHTS, _MHA_AVERAGE = 4, 6


class _MHAState:
    """What the caller asked for on the current call, so the output can be restored."""

    __slots__ = ("need_weights", "average")

    def __init__(self) -> None:
        self.need_weights = True
        self.average = True


def _mha_force(module: nn.Module) -> Callable[[], None]:
    state = _MHAState()

    def pre_hook(mod: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        args = list(args)
        if len(args) > _MHA_NEED_WEIGHTS:
            state.need_weights = bool(args[_MHA_NEED_WEIGHTS])
            args[_MHA_NEED_WEIGHTS] = True
        else:
            state.need_weights = bool(kwargs.get("need_weights", True))
            kwargs["need_weights"] = True
        if len(args) > _MHA_AVERAGE:
            state.average = bool(args[_MHA_AVERAGE])
            args[_MHA_AVERAGE] = False
        else:
            state.average = bool(kwargs.get("average_attn_weights", True))
            kwargs["average_attn_weights"] = False
        return tuple(args), kwargs

    def restore_hook(mod: nn.Module, args: tuple, output: Any) -> Any:
        # Runs after every capture's recording hook (those are prepended): give the caller the
        # output it asked for, so capture never changes what the model computes downstream.
        if not isinstance(output, tuple) or len(output) != 2 or output[1] is None:
            return None
        if not state.need_weights:
            return output[0], None
        if state.average:
            weights = output[1]
            return output[0], weights.mean(dim=-3)
        return None

    handles = [
        module.register_forward_pre_hook(pre_hook, with_kwargs=True),
        module.register_forward_hook(restore_hook),
    ]

    def undo() -> None:
        for handle in handles:
            handle.remove()

    return undo


def _mha_setup(module: nn.Module, root: nn.Module) -> Callable[[], None]:
    releases = [_patches.acquire(module, "mha_force_weights", lambda: _mha_force(module))]
    # nn.TransformerEncoder turns padded input into a nested tensor in eval mode; the layers'
    # slow path (taken once a hook is attached) cannot return weights for that, so keep every
    # encoder stack that contains this module off the nested-tensor path while captured.
    for encoder in root.modules():
        if isinstance(encoder, nn.TransformerEncoder) and getattr(encoder, "use_nested_tensor", False):
            if any(sub is module for sub in encoder.modules()):

                def apply(enc: nn.TransformerEncoder = encoder) -> Callable[[], None]:
                    enc.use_nested_tensor = False

                    def undo() -> None:
                        enc.use_nested_tensor = True

                    return undo

                releases.append(_patches.acquire(encoder, "no_nested_tensor", apply))

    def release_all() -> None:
        for release in reversed(releases):
            release()

    return release_all


def _mha_extract(module: nn.Module, output: Any) -> Tensor | None:
    if not isinstance(output, tuple) or len(output) < 2 or not isinstance(output[1], Tensor):
        return None
    weights = output[1]
    if weights.dim() == 3:  # unbatched input: [heads, q, k]
        weights = weights.unsqueeze(0)
    return weights


_REGISTRY[nn.MultiheadAttention] = Extractor(_mha_extract, _mha_setup, "nn.MultiheadAttention per head")


def describe(module: nn.Module) -> str:
    """One line naming the extractor that would handle ``module``."""
    ext = find_extractor(module)
    return ext.name if ext is not None else "none"


__all__ = [
    "ENTRY_POINT_GROUP",
    "Extractor",
    "describe",
    "find_extractor",
    "load_plugins",
    "register_extractor",
    "registered_types",
    "unregister_extractor",
]
