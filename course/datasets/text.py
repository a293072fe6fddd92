"""Shared helpers of the corpus readers: a simple tokenizer and file:line errors."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from course.datasets.errors import CorpusMissingError, FormatError

__all__ = ["FormatError", "format_error", "numbered_lines", "open_text", "read_utf8", "require_file",
           "simple_tokenize", "utf8_error"]

WORD = re.compile(r"\w+(?:'\w+)?|[^\w\s]", re.UNICODE)


def simple_tokenize(text: str, lower: bool = True) -> list[str]:
    """Words (with an inner apostrophe: "don't") and single punctuation marks, lower-cased."""
    return WORD.findall(text.lower() if lower else text)


def format_error(path: Path | str, line_no: int, message: str, line: str = "") -> FormatError:
    """A :class:`FormatError` naming ``path:line_no``, what was wrong and (shortened) the line."""
    shown = f": {line.rstrip()[:80]!r}" if line else ""
    return FormatError(f"{path}:{line_no}: {message}{shown}")


def require_file(path: Path, what: str) -> Path:
    """``path`` itself when it is a file; else a :class:`CorpusMissingError` naming ``what``."""
    if not path.is_file():
        raise CorpusMissingError(f"{what} not found at {path}; check the path (or download the corpus)")
    return path


def is_gzipped(path: Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def open_text(path: Path) -> TextIO:
    """Open a UTF-8 text file for reading, gunzipping it when it starts with the gzip magic bytes
    (so ``fra.txt`` and ``fra.txt.gz`` read the same)."""
    if is_gzipped(path):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def first_non_utf8(path: Path) -> tuple[int, int, bytes, str] | None:
    """``(line number, byte offset, bad byte, reason)`` of the first bytes of ``path`` (unpacked
    when gzipped) that are not UTF-8, or None when there are none or the file cannot be reread.

    A decoder's own error offset counts from the start of its read buffer, not of the file, and
    the buffer runs ahead of the line being read, so the place is found by rereading the bytes a
    line at a time (a UTF-8 sequence never contains a newline byte)."""
    offset = 0
    try:
        with (gzip.open(path, "rb") if is_gzipped(path) else open(path, "rb")) as f:
            for line_no, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    return line_no, offset + err.start, raw[err.start:err.start + 1], err.reason
                offset += len(raw)
    except (OSError, EOFError):
        return None
    return None


def utf8_error(path: Path, err: UnicodeDecodeError) -> FormatError:
    """The :class:`FormatError` for a corpus file that is not UTF-8: the file, the line and byte
    offset of its first bad byte, and that corpus files must be UTF-8."""
    advice = ("corpus files must be UTF-8: check this is the right file, or convert it to UTF-8 "
              "(for example with iconv -f latin1 -t utf-8 OLD > NEW if it is Latin-1)")
    where = first_non_utf8(path)
    if where is None:
        return FormatError(f"{path}: not UTF-8 text ({err.reason}); {advice}")
    line_no, offset, bad, reason = where
    unpacked = " of the unpacked text" if is_gzipped(path) else ""
    return format_error(path, line_no, f"not UTF-8 text: byte 0x{bad.hex()} at offset {offset}{unpacked} "
                        f"({reason}); {advice}")


def read_utf8(path: Path) -> str:
    """The whole text of a UTF-8 file; bytes that are not UTF-8 raise :func:`utf8_error`'s error."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise utf8_error(path, err) from None


def numbered_lines(path: Path, first: int = 1) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file (plain or gzip), turning a truncated gzip stream into a
    :class:`FormatError` at the line where reading stopped, and bytes that are not UTF-8 into one
    at the line (numbered from 1) and byte offset of the first bad byte."""
    line_no = first - 1
    try:
        with open_text(path) as f:
            for line_no, line in enumerate(f, first):
                yield line_no, line
    except (EOFError, gzip.BadGzipFile) as err:
        raise format_error(path, line_no + 1, f"the file is truncated or damaged ({err}); "
                           "download or copy it again") from None
    except UnicodeDecodeError as err:
        raise utf8_error(path, err) from None
