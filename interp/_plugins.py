"""Loading what other packages advertise under one of interp's entry-point groups."""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable
from typing import Any


def load_entry_points(group: str, use: Callable[[Any], None], what: str) -> list[str]:
    """Load every entry point of ``group`` and hand the loaded object to ``use``.

    A plugin that fails to import (or that ``use`` refuses) is reported with a warning naming it,
    not raised: one broken plugin must not stop everyone else's work. Returns the names loaded.
    """
    loaded = []
    for ep in importlib.metadata.entry_points(group=group):
        try:
            use(ep.load())
            loaded.append(ep.name)
        except Exception as exc:  # noqa: BLE001 - report and carry on
            warnings.warn(
                f"interp: {what} plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
                RuntimeWarning, stacklevel=3,
            )
    return loaded
