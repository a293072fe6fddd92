"""The base of every error interp raises on purpose, so callers can catch them all at once.

Each concrete error also keeps its built-in base (``ValueError``, ``LookupError``,
``RuntimeError``), so ``except ValueError`` written before the base existed still works.
"""

from __future__ import annotations


class InterpError(Exception):
    """An input, model or store interp cannot use; the message says what was wrong and what to do."""


__all__ = ["InterpError"]
