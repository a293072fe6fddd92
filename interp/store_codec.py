"""How a record becomes bytes and back: arrays as raw little-endian bytes, metadata as JSON,
and the two checksums that let a read prove both are what was written.

Nothing here can run code: the dtype comes from a fixed allow-list and decoding is
``frombuffer + reshape``. ``crc32`` covers the array's bytes; ``meta_crc32`` covers every
metadata field *and* ``crc32``, so one verified pair proves the array belongs to these labels.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .store_errors import CorruptRecordError
from .store_record import CHECKED

# dtype name -> itemsize. Only plain numeric types: a dtype such as "object" would need pickle,
# so it can never be stored or loaded.
ALLOWED_DTYPES: dict[str, int] = {
    "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8,
    "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "bool": 1,
}

# The stored metadata columns a record's ``meta_crc32`` covers, in this order.
CHECKED_COLUMNS = CHECKED


def to_bytes(value: Any) -> tuple[bytes, str, tuple[int, ...]]:
    """Raw little-endian C-order bytes, dtype name and shape of a tensor or array."""
    if hasattr(value, "detach") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        import torch

        t = value.detach().to("cpu").contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in ALLOWED_DTYPES:
            raise TypeError(f"cannot store tensors of dtype {t.dtype}; allowed: {', '.join(ALLOWED_DTYPES)}")
        shape = tuple(t.shape)
        if dtype == "bfloat16":
            raw = t.reshape(-1).view(torch.int16).numpy().astype("<i2", copy=False).tobytes()
        else:
            raw = np_bytes(t.numpy())
        return raw, dtype, shape
    arr = np.asarray(value)
    dtype = arr.dtype.name
    if dtype not in ALLOWED_DTYPES or dtype == "bfloat16":
        raise TypeError(f"cannot store arrays of dtype {arr.dtype}; allowed: {', '.join(ALLOWED_DTYPES)}")
    return np_bytes(arr), dtype, tuple(arr.shape)


def np_bytes(arr: np.ndarray) -> bytes:
    """C-order little-endian bytes of a numpy array."""
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr).tobytes()


def _looks_pickled(blob: bytes) -> bool:
    return len(blob) >= 2 and blob[0] == 0x80 and 2 <= blob[1] <= 5


def decode_array(blob: bytes, dtype: str, shape: Sequence[int], *, where: str = "record") -> np.ndarray:
    """Validate and decode a stored array (never unpickles). bfloat16 comes back as float32."""
    if dtype not in ALLOWED_DTYPES:
        raise CorruptRecordError(
            f"{where}: dtype {dtype!r} is not allowed (allowed: {', '.join(ALLOWED_DTYPES)}); "
            f"interp never unpickles, so this record is refused. The file may have been "
            f"written by another tool or tampered with."
        )
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError) as exc:
        raise CorruptRecordError(f"{where}: shape {shape!r} is not a list of integers") from exc
    if any(d < 0 for d in dims):
        raise CorruptRecordError(f"{where}: negative dimension in shape {dims}")
    expected = math.prod(dims) * ALLOWED_DTYPES[dtype]
    if not isinstance(blob, bytes) or len(blob) != expected:
        size = len(blob) if isinstance(blob, (bytes, bytearray)) else type(blob).__name__
        extra = " (the bytes look like a pickle payload, which is never loaded)" if (
            isinstance(blob, bytes) and _looks_pickled(blob)) else ""
        raise CorruptRecordError(
            f"{where}: {size} bytes stored but dtype {dtype} shape {dims} needs {expected}{extra}"
        )
    if dtype == "bfloat16":
        bits = np.frombuffer(blob, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(dims)
    return np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).reshape(dims)


def json_tokens(tokens: Sequence[Any] | None) -> str | None:
    """Tokens as the JSON text stored in the ``source``/``target`` columns."""
    if tokens is None:
        return None
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of strings, not one string (split it first)")
    return json.dumps([str(t) for t in tokens], ensure_ascii=False)


def json_params(params: Mapping[str, Any] | None) -> str:
    """Parameters as the canonical JSON text stored in the ``params`` column."""
    return json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"), default=str)


def meta_checksum(columns: Mapping[str, Any]) -> int:
    """CRC32 of a record's stored metadata columns (:data:`CHECKED_COLUMNS`, as stored).

    The columns are taken exactly as SQLite holds them (JSON text stays text), so the value
    is the same when written and when read back, whatever the JSON library does.
    """
    values = []
    for name in CHECKED_COLUMNS:
        value = columns[name]
        if isinstance(value, float):
            value = value.hex()  # exact, independent of float printing
        elif isinstance(value, (bytes, bytearray)):
            value = bytes(value).hex()
        values.append(value)
    text = json.dumps(values, ensure_ascii=True, separators=(",", ":"), default=repr)
    return zlib.crc32(text.encode("ascii"))


__all__ = [
    "ALLOWED_DTYPES",
    "CHECKED_COLUMNS",
    "decode_array",
    "json_params",
    "json_tokens",
    "meta_checksum",
    "np_bytes",
    "to_bytes",
]
