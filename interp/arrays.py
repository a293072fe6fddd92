"""One conversion from whatever a user holds (tensors of any dtype, numpy arrays, lists) to numpy.

numpy has no bfloat16, so ``tensor.numpy()`` fails on it; half-precision tensors are widened to
float32 first (exactly: every bfloat16 and float16 value is a float32 value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def to_numpy(x: Any, what: str = "array", dtype: Any = None) -> np.ndarray:
    """``x`` as a numpy array (a tensor is detached and moved to the CPU; half precision widened).

    ``dtype`` converts the result (e.g. ``np.float64``). Ragged lists and non-numeric input raise
    a TypeError naming ``what``.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        x = x.numpy()
    try:
        arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a numeric array or tensor, got {type(x).__name__}") from exc
    if arr.dtype == object:
        raise TypeError(f"{what} must be a numeric array or tensor, not ragged lists or objects")
    return arr


__all__ = ["to_numpy"]
