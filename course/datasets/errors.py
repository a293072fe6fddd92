"""The errors a corpus loader raises, under one base class a lesson can catch.

``except CorpusError`` covers a corpus that is missing, a file whose checksum is not the trusted
one, an archive laid out differently from the published one and a malformed line; each subclass
also derives from the built-in error it refines (``FileNotFoundError`` or ``ValueError``), so older
``except`` clauses keep working.
"""

from __future__ import annotations


class CorpusError(Exception):
    """Any problem with a real corpus; the message says what was wrong and what to do."""

    def one_line(self) -> str:
        """The message on one line, for command-line output."""
        return " ".join(line.strip() for line in str(self).splitlines() if line.strip())


class CorpusMissingError(CorpusError, FileNotFoundError):
    """The corpus is not on disk and was not (or could not be) downloaded; the message says how."""


class ChecksumError(CorpusError, ValueError):
    """A file does not match the checksum it is trusted under; the message says how to accept it."""


class CorpusLayoutError(CorpusError, FileNotFoundError):
    """An unpacked corpus lacks the file a loader needs (or has several candidates for it)."""


class FormatError(CorpusError, ValueError):
    """A line of a corpus file is not in the format its reader expects."""
