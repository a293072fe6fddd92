"""Writing an output file without ever destroying an input or someone's existing file.

Every command that writes a file goes through :func:`check_output` (refuse to write over an
input, or over an existing file unless asked) and :func:`replace_atomically` (write a temporary
file beside the target and rename it into place, so a failure leaves the target as it was).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .store_errors import StoreError

# SQLite keeps a store's recent commits and locks in these companion files.
COMPANIONS = ("", "-wal", "-shm", "-journal")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(
    path: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]], overwrite: bool,
    flag: str = "overwrite=True",
) -> Path:
    """The output path, once it is known not to be an input (or an input's SQLite companion)
    and not an existing file (unless ``overwrite``). Raises :class:`StoreError` otherwise."""
    out = Path(path)
    for source in inputs:
        for suffix in COMPANIONS:
            if _same_file(out, Path(f"{source}{suffix}")):
                raise StoreError(
                    f"{out} is the input {source} (or one of its files); writing there would destroy "
                    f"it. Choose another output file."
                )
    if out.is_dir():
        raise StoreError(f"{out} is a directory; give a file name for the output")
    if out.exists() and not overwrite:
        raise StoreError(f"{out} already exists; choose a new file name, or pass {flag} to replace it")
    if not out.parent.exists():
        raise StoreError(f"{out.parent} does not exist; create the folder first or choose another output")
    return out


@contextlib.contextmanager
def replace_atomically(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``, on failure
    delete it (``path`` is untouched either way until the rename)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers create it themselves (SQLite wants a missing or empty file)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        for suffix in COMPANIONS:
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)


__all__ = ["check_output", "replace_atomically"]
