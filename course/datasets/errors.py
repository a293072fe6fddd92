"""The errors a corpus loader raises, under one base class a lesson can catch.

``except CorpusError`` covers a corpus that is missing, a file whose checksum is not the trusted
one, an archive laid out differently from the published one, a malformed line (or one that is
not UTF-8) and a loader argument that cannot work (a malformed checksum, say); each subclass also
derives from the built-in error it refines (``FileNotFoundError`` or ``ValueError``), so older
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
    """A line of a corpus file is not in the format its reader expects (or is not UTF-8 text)."""


class CorpusArgumentError(CorpusError, ValueError):
    """A loader argument is malformed or does not fit the others (a checksum that is not
    ``sha256:<64 hex digits>``, a checksum given with a folder); the message gives the form expected.

    ``parameters`` names the arguments a fix may change: ``"checksum"``, ``"path"`` or both.
    """

    def __init__(self, message: str = "", *, parameters: tuple[str, ...] = ("checksum",)):
        super().__init__(message)
        self.parameters = parameters


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
    elif isinstance(error, CorpusArgumentError):
        fixes = []
        if "path" in error.parameters:
            fixes.append(f"set {path_parameter} to the file or folder the message asks for")
        if "checksum" in error.parameters and checksum_parameter:
            fixes.append(f"set {checksum_parameter} = None" if fixes else
                         f"correct {checksum_parameter} as the message says (or set it to None)")
        if fixes:
            lines.append(f"In the parameters cell: {', or '.join(fixes)}.")
    elif isinstance(error, CorpusLayoutError):
        lines.append(f"In the parameters cell: set {path_parameter} to the file or folder the message asks for.")
    return "\n".join(lines)
