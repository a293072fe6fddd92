"""Arguments renamed for one name per concept across interp; the old names keep working.

The names: ``baseline_id`` (the token that replaces a real one), ``batch_size`` (rows or
perturbations per forward pass), ``target`` (what is explained: classes or target tokens).
"""

from __future__ import annotations

import warnings
from typing import Any


def renamed(new_value: Any, old_value: Any, *, new: str, old: str, where: str, default: Any = None) -> Any:
    """The value of an argument given under its new or (with a DeprecationWarning) its old name.

    Giving both is an error, since one of them would be silently ignored.
    """
    if old_value is None:
        return new_value
    if new_value is not None and new_value != default:
        raise TypeError(f"{where}() got both {new}= and its old name {old}=; pass only {new}=")
    warnings.warn(f"{where}(): {old}= is renamed {new}=; the old name will be removed",
                  DeprecationWarning, stacklevel=3)
    return old_value
