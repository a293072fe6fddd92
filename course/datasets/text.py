"""Shared helpers of the corpus readers: a simple tokenizer and file:line errors."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from course.datasets.errors import CorpusMissingError, FormatError

__all__ = ["FormatError", "format_error", "numbered_lines", "open_text", "require_file", "simple_tokenize"]

WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)


def simple_tokenize(text: str, lower: bool = True) -> list[str]:
    """Words (with an inner apostrophe: "don't") and single punctuation marks, lower-cased."""
    return WORD.findall(text.lower() if lower else text)


def format_error(path: Path | str, line_no: int, message: str, line: str = "") -> FormatError:
    shown = f": {line.rstrip()[:80]!r}" if line else ""
    return FormatError(f"{path}:{line_no}: {message}{shown}")


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise CorpusMissingError(f"{what} not found at {path}; check the path (or download the corpus)")
    return path


def open_text(path: Path) -> TextIO:
    """Open a UTF-8 text file for reading, gunzipping it when it starts with the gzip magic bytes
    (so ``fra.txt`` and ``fra.txt.gz`` read the same)."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def numbered_lines(path: Path, first: int = 1) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file (plain or gzip), turning a truncated gzip stream or
    bytes that are not UTF-8 into a :class:`FormatError` at the line where reading stopped."""
    line_no = first - 1
    try:
        with open_text(path) as f:
            for line_no, line in enumerate(f, first):
                yield line_no, line
    except (EOFError, gzip.BadGzipFile) as err:
        raise format_error(path, line_no + 1, f"the file is truncated or damaged ({err}); "
                           "download or copy it again") from None
    except UnicodeDecodeError as err:
        raise format_error(path, line_no + 1, f"not UTF-8 text ({err.reason} at byte {err.start}); "
                           "is this the right file?") from None
