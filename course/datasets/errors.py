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
    """A file does not match the checksum it is trusted under; the message says how to accept it.

    ``sha256`` is the file's own sha256 hex digest (None when unknown): the value to pass as
    ``checksum="sha256:<hex>"`` to accept the copy.
    """

    def __init__(self, message: str = "", *, sha256: str | None = None):
        super().__init__(message)
        self.sha256 = sha256


class CorpusLayoutError(CorpusError, FileNotFoundError):
    """An unpacked corpus lacks the file a loader needs (or has several candidates for it)."""


class FormatError(CorpusError, ValueError):
    """A line of a corpus file is not in the format its reader expects."""


def fallback_message(requested: str, error: CorpusError, fallback: str, *, path_parameter: str = "CORPUS_PATH",
                     checksum_parameter: str | None = "CORPUS_CHECKSUM",
                     download_parameter: str | None = "DOWNLOAD") -> str:
    """What a lesson prints when the real corpus it was asked for cannot be used and it runs on
    its bundled task instead: that it falls back, why (the error's own message), and which
    parameter of the lesson's parameters cell does what the message asks for."""
    lines = [f"The {requested} corpus could not be used, so this run falls back to {fallback}.",
             f"Why: {error}"]
    if isinstance(error, ChecksumError) and error.sha256 and checksum_parameter:
        lines.append(f"To use this copy (a repacked or newer release you trust), set "
                     f'{checksum_parameter} = "sha256:{error.sha256}" in the parameters cell and run again.')
    elif isinstance(error, CorpusMissingError):
        ways = [f"{download_parameter} = True downloads it"] if download_parameter else []
        lines.append(f"In the parameters cell: {' or '.join(ways + [f'{path_parameter} = your copy reads it'])}.")
    elif isinstance(error, CorpusLayoutError):
        lines.append(f"In the parameters cell: set {path_parameter} to the file or folder the message asks for.")
    return "\n".join(lines)
