"""Shared helpers of the corpus readers: a simple tokenizer and file:line errors."""

from __future__ import annotations

import re
from pathlib import Path

WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)


def simple_tokenize(text: str, lower: bool = True) -> list[str]:
    """Words (with an inner apostrophe: "don't") and single punctuation marks, lower-cased."""
    return WORD.findall(text.lower() if lower else text)


class FormatError(ValueError):
    """A line of a corpus file is not in the format its reader expects."""


def format_error(path: Path | str, line_no: int, message: str, line: str = "") -> FormatError:
    shown = f": {line.rstrip()[:80]!r}" if line else ""
    return FormatError(f"{path}:{line_no}: {message}{shown}")


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path}; check the path (or download the corpus)")
    return path
