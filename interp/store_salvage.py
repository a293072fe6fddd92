"""Salvage: copy every readable, verified record of a damaged store into a new store.

Works on a private copy of the damaged file (never modifies it). A record is copied only when
its metadata checksum and its array checksum both verify, so an array is never filed under
labels that were damaged; everything left behind is listed in the report with the reason.
The new store is written to a temporary file and renamed into place; nothing is written when
nothing could be read.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._outputs import check_output, replace_atomically
from .store import SQLITE_MAGIC, Store
from .store_codec import json_params
from .store_errors import StoreError
from .store_record import KEY, labels_of


@dataclass
class SalvageReport:
    """What :func:`salvage` did. Unpacks as ``copied, lost = report``.

    ``copied``: records written to the new store; ``lost``: records known to exist that were
    left behind; ``dropped``: one line per record left behind, saying why; ``unverified``:
    records copied from a schema-1 store, whose metadata had no checksum to verify.
    """

    copied: int
    lost: int
    dropped: list[str] = field(default_factory=list)
    unverified: int = 0

    def __iter__(self) -> Iterator[int]:
        yield self.copied
        yield self.lost


def _private_copy(src: Path, tmp: Path) -> Path:
    """A copy of ``src`` (and its WAL) cut to whole pages, its page count corrected, so that
    SQLite reads whatever survives of a truncated file."""
    try:
        with open(src, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"{src}: cannot read: {exc}") from exc
    if not header.startswith(SQLITE_MAGIC) or len(header) < 100:
        raise StoreError(f"{src}: not a SQLite file (starts with {header[:16]!r}); nothing to salvage")
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    copy = tmp / "copy.sqlite"
    shutil.copyfile(src, copy)
    wal = Path(f"{src}-wal")
    if wal.exists():
        shutil.copyfile(wal, Path(f"{copy}-wal"))
    pages = copy.stat().st_size // page
    with open(copy, "r+b") as f:
        f.truncate(pages * page)
        f.seek(28)
        f.write(pages.to_bytes(4, "big"))
    return copy


def _raw_store(src: Path, copy: Path) -> Store:
    """A :class:`Store` over the private copy that skips the open-time checks (they may fail)."""
    raw = Store.__new__(Store)
    raw.path, raw.readonly = src, True
    raw._db = sqlite3.connect(copy, isolation_level=None)
    try:
        raw._db.execute("SELECT meta_crc32 FROM records LIMIT 0")
        raw._meta_crc = True
    except sqlite3.DatabaseError:
        raw._meta_crc = False
    return raw


def salvage(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], *, overwrite: bool = False
) -> SalvageReport:
    """Copy every readable record of a damaged (even unopenable) store into a new store ``dest``.

    Record ids are gathered from whatever table and index pages still read, then each record is
    fetched and verified on its own (metadata checksum, array checksum); a second record with
    the key of one already copied is left behind and reported, never merged. ``dest`` must not
    be ``src`` and must not exist unless ``overwrite``. Raises :class:`StoreError` when nothing
    is readable (``dest`` is then not written).
    """
    src = Path(src)
    out = check_output(dest, inputs=[src], overwrite=overwrite, flag="overwrite=True (--force)")
    with tempfile.TemporaryDirectory() as tmp:
        raw = _raw_store(src, _private_copy(src, Path(tmp)))
        try:
            with replace_atomically(out) as target:
                report = _copy_readable(raw, target)
                if report.copied == 0:
                    reasons = "; ".join(report.dropped[:5]) or "no record could be found"
                    raise StoreError(
                        f"{src}: no readable record to salvage ({reasons}); {out} was not written"
                    )
        finally:
            raw._db.close()
    return report


def _copy_readable(raw: Store, dest: Path) -> SalvageReport:
    ids, unreadable = raw.readable_ids(thorough=True)
    known = set(ids)
    report = SalvageReport(0, 0)
    failed: list[int] = list(unreadable)
    last_good = 0
    keys: set[tuple[Any, ...]] = set()
    rows: list[dict[str, Any]] = []
    with Store(dest) as out:
        for rid in ids:
            try:
                rec = raw.get(rid)
                arr: Any = rec.tensor() if rec.dtype == "bfloat16" else rec.array()
            except KeyError:
                continue
            except StoreError as exc:
                failed.append(rid)
                report.dropped.append(f"record {rid}: {exc}")
                continue
            last_good = max(last_good, rid)
            key = tuple(json_params(rec.params) if name == "params" else getattr(rec, name) for name in KEY)
            if key in keys:
                failed.append(rid)
                report.dropped.append(f"record {rid}: {rec.where} has the key of a record already "
                                      f"copied (a damaged unique index?); left behind, not merged")
                continue
            keys.add(key)
            report.unverified += rec.meta_crc32 is None
            rows.append(dict(array=arr, **labels_of(rec)))
            if len(rows) >= 256:
                report.copied += out.add_many(rows, on_conflict="raise")
                rows = []
        report.copied += out.add_many(rows, on_conflict="raise")
    # Ids past a truncation point cannot be told from ids never written: count as lost only
    # records known to exist (listed by a scan, or below a record that was read).
    for rid in unreadable:
        if rid < last_good:
            report.dropped.append(f"record {rid}: unreadable (damaged page)")
    report.lost = sum(1 for rid in failed if rid in known or rid < last_good)
    return report


__all__ = ["SalvageReport", "salvage"]
