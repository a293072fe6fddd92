"""The store's exceptions, in one place so every store module raises the same types."""

from __future__ import annotations

from .errors import InterpError


class StoreError(InterpError, RuntimeError):
    """The store file cannot be used: not a store, a newer schema, corrupt or truncated."""


class CorruptRecordError(StoreError):
    """One record failed validation (its array or its metadata); other records are unaffected."""


__all__ = ["CorruptRecordError", "StoreError"]
