"""``torch.compile``: run compiled models uncompiled while they are captured.

A compiled graph does not call Python forward hooks added after compilation, so a capture on it
would record nothing. When a capture is given a ``torch.compile(model)`` wrapper, it selects in
the original model (names with or without the ``_orig_mod.`` prefix) and, while active, the
wrapper calls the original model eagerly; modules compiled in place (``module.compile()``) run
their uncompiled forward. Compilation comes back when the capture ends; the compiled code is kept.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .extractors import _patches

PREFIX = "_orig_mod."


def is_compiled_wrapper(model: nn.Module) -> bool:
    """Whether ``model`` is what ``torch.compile(module)`` returns."""
    return type(model).__name__ == "OptimizedModule" and isinstance(
        getattr(model, "_orig_mod", None), nn.Module
    )


def unwrap(model: nn.Module) -> nn.Module:
    """The original module behind ``torch.compile`` wrappers (``model`` itself otherwise)."""
    while is_compiled_wrapper(model):
        model = model._orig_mod  # type: ignore[assignment]
    return model


def run_uncompiled(model: nn.Module) -> Callable[[], None]:
    """Make ``model`` (a wrapper or a tree with in-place compiled modules) run eagerly; undo."""
    releases = []
    wrapper = model
    while is_compiled_wrapper(wrapper):
        inner = wrapper._orig_mod

        def apply(w: nn.Module = wrapper, eager: Callable = inner.__call__) -> Callable[[], None]:
            saved = w.__dict__.get("forward")
            w.__dict__["forward"] = eager

            def undo() -> None:
                if saved is None:
                    w.__dict__.pop("forward", None)
                else:
                    w.__dict__["forward"] = saved

            return undo

        releases.append(_patches.acquire(wrapper, "run_uncompiled", apply))
        wrapper = inner
    for module in wrapper.modules():
        if getattr(module, "_compiled_call_impl", None) is not None:

            def apply_inplace(m: nn.Module = module) -> Callable[[], None]:
                saved = m._compiled_call_impl
                m._compiled_call_impl = None

                def undo() -> None:
                    m._compiled_call_impl = saved

                return undo

            releases.append(_patches.acquire(module, "run_uncompiled", apply_inplace))

    def release_all() -> None:
        for release in reversed(releases):
            release()

    return release_all


__all__ = ["PREFIX", "is_compiled_wrapper", "run_uncompiled", "unwrap"]
