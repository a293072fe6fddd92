"""A durable store of captured arrays: one SQLite file in WAL mode, no server, no pickle.

Why SQLite: ACID transactions (a killed writer loses at most its open transaction), readers
that never block the writer in WAL mode, a single file to copy, and SQL for metadata queries.
Arrays are stored as raw little-endian bytes plus a dtype from a fixed allow-list, a shape and a
CRC32, so loading is ``frombuffer + reshape``: nothing in a store can run code. A second CRC32
covers every metadata field and the array's CRC32, so a damaged label is caught too; a damaged
record is detected and reported on its own without taking its neighbours down.

Each record carries: run, model name, model fingerprint (hash of the weights), module, example
id, source and target tokens, step, kind (``"attention"`` or an attribution method's name) with
its parameters (JSON), and the time it was written. ``(run, model, module, example, step, kind,
params)`` is unique, so re-running a capture never duplicates records. Parquet export/import
live in :mod:`interp.store_parquet`, salvage in :mod:`interp.store_salvage`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .store_codec import (
    ALLOWED_DTYPES,
    CHECKED_COLUMNS,
    decode_array,
    json_params,
    json_tokens,
    meta_checksum,
    to_bytes,
)
from .store_errors import CorruptRecordError, StoreError
from .store_record import FILTERS, LABELS, METADATA, REQUIRED, table_sql

SCHEMA_VERSION = 2
APPLICATION_ID = 0x696E7470  # "intp": marks the file as an interp store
FORMAT_NAME = "interp-store"
SQLITE_MAGIC = b"SQLite format 3\x00"
# Parquet import refuses files that would add more array bytes than this (override: max_bytes=).
DEFAULT_MAX_IMPORT_BYTES = 1 << 30

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{table_sql()};
CREATE INDEX IF NOT EXISTS records_run_example ON records (run, example);
CREATE INDEX IF NOT EXISTS records_model ON records (model, fingerprint);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, run);
"""

_META_COLUMNS = METADATA
_FILTERS = FILTERS
Errors = Literal["raise", "warn", "skip"]


def fingerprint(model: Any) -> str:
    """A hash of a model's weights: equal for equal ``state_dict`` tensors, names and shapes.

    Accepts an ``nn.Module`` or a ``state_dict``-like mapping of tensors/arrays. Used to tell
    checkpoints apart in the store without trusting file names.
    """
    state = model.state_dict() if hasattr(model, "state_dict") else model
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        value = state[name]
        raw, dtype, shape = to_bytes(value)
        h.update(name.encode())
        h.update(f"|{dtype}|{shape}|".encode())
        h.update(raw)
    return h.hexdigest()


_INSERT = {
    mode: f"{verb} INTO records ({', '.join(CHECKED_COLUMNS)}, data, meta_crc32) "
          f"VALUES ({', '.join('?' * (len(CHECKED_COLUMNS) + 2))})"
    for mode, verb in (("ignore", "INSERT OR IGNORE"), ("replace", "INSERT OR REPLACE"), ("raise", "INSERT"))
}


def _check_errors(errors: str) -> None:
    if errors not in ("raise", "warn", "skip"):
        raise ValueError(f"errors must be 'raise', 'warn' or 'skip', got {errors!r}")


@dataclass
class StoredRecord:
    """Metadata of one stored array; the array itself loads on :meth:`array` (lazily)."""

    id: int
    run: str
    model: str
    fingerprint: str
    module: str
    example: str
    step: int
    kind: str
    params: dict[str, Any]
    source: list[str] | None
    target: list[str] | None
    dtype: str
    shape: tuple[int, ...]
    crc32: int
    created: float
    meta_crc32: int | None = None
    _store: Store | None = field(default=None, repr=False, compare=False)

    def array(self) -> np.ndarray:
        """Load, check (size, CRC32, dtype) and return the array (read-only view).

        The record's metadata was verified against its checksum when it was read, and that
        checksum covers the array's CRC32: the array returned is the one written with these
        labels."""
        if self._store is None:
            raise StoreError("this record is detached from its store")
        return self._store._load(self)

    def tensor(self) -> Any:
        """The array as a ``torch.Tensor`` (bfloat16 records come back as bfloat16)."""
        import torch

        arr = self.array()
        t = torch.from_numpy(arr.copy())
        return t.to(torch.bfloat16) if self.dtype == "bfloat16" else t

    @property
    def where(self) -> str:
        return (
            f"record {self.id} (run={self.run!r}, module={self.module!r}, example={self.example!r}, "
            f"step={self.step}, kind={self.kind!r})"
        )


def _refuse_foreign_file(path: Path) -> None:
    """Refuse to open (and so overwrite) a non-empty file that is not a SQLite database."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc}") from exc
    if head != SQLITE_MAGIC:
        raise StoreError(
            f"{path}: not a readable interp store: the file exists and is not a SQLite database "
            f"(it starts with {head[:8]!r}). Refusing to turn it into a store, which would destroy "
            f"it; choose another file name."
        )


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def _busy_error(path: Path, exc: BaseException, timeout: float | None, doing: str = "opening") -> StoreError:
    waited = f" after waiting {timeout:g} s" if timeout is not None else ""
    return StoreError(
        f"{path}: {doing} failed{waited}: another process holds the store's write lock ({exc}). "
        f"The file is not damaged: wait for the other writer to finish and retry, or open the "
        f"store with a longer timeout (Store(path, timeout=...))."
    )


class Store:
    """An interp store file. Open with ``Store(path)`` (created if missing) and close, or use
    ``with Store(path) as store:``.

    Several processes may write and read the same file: transactions are short (one per
    :meth:`add_many` call) and a busy timeout waits for the lock instead of failing. ``readonly``
    opens without creating or changing anything. ``synchronous="NORMAL"`` (the default) is safe
    against a killed process; use ``"FULL"`` to also survive power loss.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        timeout: float = 30.0,
        synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL",
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise StoreError(f"{self.path}: no such store")
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a store file")
        _refuse_foreign_file(self.path)
        if not readonly and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if readonly:
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
            else:
                self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._check_or_init()
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute(f"PRAGMA synchronous = {synchronous}")
        except sqlite3.OperationalError as exc:
            self._db.close()
            if _is_busy(exc):
                raise _busy_error(self.path, exc, timeout) from exc
            raise self._unreadable(exc) from exc
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise self._unreadable(exc) from exc
        except BaseException:
            self._db.close()
            raise

    def _unreadable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"{self.path}: not a readable interp store ({exc}). If it is a store that was "
            f"truncated or damaged, copy its readable records into a new store with "
            f"`python -m interp salvage {self.path} rescued.sqlite`."
        )

    # ------------------------------------------------------------------ lifecycle

    def _check_or_init(self) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id == 0 and not tables:
            if self.readonly:
                raise StoreError(f"{self.path}: empty file, not an interp store")
            with self._transaction():
                # Re-check under the write lock: another process may have created it meanwhile.
                if not {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT_NAME,))
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self._meta_crc = True
            return
        if app_id != APPLICATION_ID:
            raise StoreError(
                f"{self.path}: a SQLite database but not an interp store (application_id={app_id}, "
                f"tables: {', '.join(sorted(tables)) or 'none'}); refusing to write into it"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by a newer interp (schema {version}; this version reads up to "
                f"{SCHEMA_VERSION}); upgrade interp to read it"
            )
        if version < 1 or "records" not in tables:
            raise StoreError(f"{self.path}: interp store with unknown schema {version}; it may be damaged")
        if version == 1 and not self.readonly:
            self._upgrade_from_1()
            version = SCHEMA_VERSION
        # Schema 1 records carry no metadata checksum: they read as before (array CRC only).
        self._meta_crc = version >= 2

    def _upgrade_from_1(self) -> None:
        """Schema 1 -> 2: add the metadata checksum column. Old records keep it NULL (their
        metadata was never checksummed and cannot be vouched for now); new ones fill it."""
        db = self._db
        with self._transaction():
            if db.execute("PRAGMA user_version").fetchone()[0] == 1:
                db.execute("ALTER TABLE records ADD COLUMN meta_crc32 INTEGER")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed into the main file by SQLite)."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def _wrap(self, exc: sqlite3.DatabaseError, doing: str) -> StoreError:
        if _is_busy(exc):
            return _busy_error(self.path, exc, None, doing)
        return StoreError(
            f"{self.path}: {doing} failed: {exc}. If the file is damaged, run "
            f"`python -m interp check {self.path}` and copy the readable records into a new store "
            f"with `python -m interp salvage {self.path} rescued.sqlite`"
        )

    # ------------------------------------------------------------------ writing

    def add(
        self,
        array: Any,
        *,
        run: str,
        module: str,
        example: Any,
        model: str = "",
        fingerprint: str = "",
        step: int = 0,
        kind: str = "attention",
        params: Mapping[str, Any] | None = None,
        source: Sequence[Any] | None = None,
        target: Sequence[Any] | None = None,
        on_conflict: Literal["ignore", "replace", "raise"] = "ignore",
    ) -> int:
        """Store one array; returns 1 if written, 0 if an equal key existed (``ignore``)."""
        row = dict(
            array=array, run=run, module=module, example=example, model=model,
            fingerprint=fingerprint, step=step, kind=kind, params=params, source=source, target=target,
        )
        return self.add_many([row], on_conflict=on_conflict)

    def add_many(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        on_conflict: Literal["ignore", "replace", "raise"] = "ignore",
    ) -> int:
        """Store many records in one transaction (all or none). Returns how many were written.

        Each row is a mapping with the keyword arguments of :meth:`add` (``array`` required).
        """
        if on_conflict not in _INSERT:
            raise ValueError(f"on_conflict must be 'ignore', 'replace' or 'raise', got {on_conflict!r}")
        now = time.time()
        encoded = [self._encode(row, now) for row in rows]
        if not encoded:
            return 0
        return self._write(_INSERT[on_conflict], encoded)

    def _write(self, sql: str, rows: list[tuple]) -> int:
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        db = self._db
        try:
            with self._transaction():
                before = db.total_changes
                db.executemany(sql, rows)
                written = db.total_changes - before
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: a record with the same key exists ({exc}); "
                             f"use on_conflict='ignore' or 'replace'") from exc
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, "writing") from exc
        return written

    @staticmethod
    def _encode(row: Mapping[str, Any], now: float) -> tuple:
        unknown = set(row) - {"array", *LABELS}
        if unknown:
            raise TypeError(f"unknown record fields {sorted(unknown)}; a record has {['array', *LABELS]}")
        for key in ("array", *REQUIRED):
            if key not in row or row[key] is None:
                raise TypeError(f"a record needs {key!r}")
        raw, dtype, shape = to_bytes(row["array"])
        columns = dict(
            run=str(row["run"]), model=str(row.get("model") or ""),
            fingerprint=str(row.get("fingerprint") or ""), module=str(row["module"]),
            example=str(row["example"]), step=int(row.get("step") or 0),
            kind=str(row.get("kind") or "attention"), params=json_params(row.get("params")),
            source=json_tokens(row.get("source")), target=json_tokens(row.get("target")),
            dtype=dtype, shape=json.dumps(list(shape)), crc32=zlib.crc32(raw), created=now,
        )
        return (*(columns[c] for c in CHECKED_COLUMNS), raw, meta_checksum(columns))

    def delete(self, **filters: Any) -> int:
        """Delete the records matching ``filters`` (same keywords as :meth:`query`)."""
        where, args = self._where(filters)
        if not where:
            raise ValueError("delete() needs at least one filter (refusing to empty the store)")
        return self._write(f"DELETE FROM records WHERE {where}", [tuple(args)])

    # ------------------------------------------------------------------ reading

    @staticmethod
    def _where(filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
        clauses, args = [], []
        for key, value in filters.items():
            if value is None:
                continue
            if key in _FILTERS:
                values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
                conv = int if key == "step" else str
                values = [conv(v) for v in values]
                clauses.append(f"{key} IN ({', '.join('?' * len(values))})")
                args.extend(values)
            elif key == "params":
                for pk, pv in dict(value).items():
                    clauses.append("json_extract(params, ?) = json_extract(?, '$.v')")
                    args.extend([f'$."{pk}"', json.dumps({"v": pv})])
            elif key == "since":
                clauses.append("created >= ?")
                args.append(float(value))
            elif key == "until":
                clauses.append("created < ?")
                args.append(float(value))
            else:
                raise TypeError(
                    f"unknown filter {key!r}; filter by {', '.join(_FILTERS)}, params, since, until"
                )
        return " AND ".join(clauses), args

    def query(self, *, limit: int | None = None, order: str = "id", **filters: Any) -> list[StoredRecord]:
        """Records matching every filter, arrays not loaded.

        Filters: ``run, model, fingerprint, module, example, step, kind`` (a value or a list of
        values), ``params`` (a dict; each key must equal), ``since``/``until`` (Unix times).
        """
        return list(self.iter(limit=limit, order=order, **filters))

    def iter(
        self, *, limit: int | None = None, order: str = "id", errors: Errors = "raise", **filters: Any
    ) -> Iterator[StoredRecord]:
        """Like :meth:`query`, streaming (bounded memory for any number of records).

        Every record's metadata is checked against its checksum as it is read. With
        ``errors="warn"`` or ``"skip"`` a damaged record is reported (or passed over) and the
        scan goes on; when a damaged page stops SQLite's scan, the remaining records are looked
        up one by one, so everything readable is still returned (then in id order).
        """
        _check_errors(errors)
        if order not in ("id", "created", "example", "module"):
            raise ValueError(f"order must be id, created, example or module, got {order!r}")
        where, args = self._where(filters)
        sql = f"SELECT {self._columns()} FROM records"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order}, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        seen: set[int] = set()
        try:
            for row in self._db.execute(sql, args):
                seen.add(int(row[0]))
                rec = self._checked(row, errors)
                if rec is not None:
                    yield rec
            return
        except sqlite3.DatabaseError as exc:
            if errors == "raise":
                raise self._wrap(exc, "querying") from exc
            self._report(errors, f"{self.path}: the scan stopped at a damaged page ({exc}); "
                                 f"looking the remaining records up one by one")
        ids, unreadable = self.readable_ids(where, args)
        for rid in unreadable:
            self._report(errors, f"{self.path}: record {rid}: unreadable (damaged page)")
        left = None if limit is None else int(limit) - len(seen)
        for rid in ids:
            if rid in seen:
                continue
            if left is not None and left <= 0:
                return
            try:
                row = self._db.execute(f"SELECT {self._columns()} FROM records WHERE id = ?", (rid,)).fetchone()
            except sqlite3.DatabaseError as exc:
                self._report(errors, f"{self.path}: record {rid}: unreadable ({exc})")
                continue
            if row is None:
                continue
            if left is not None:
                left -= 1
            rec = self._checked(row, errors)
            if rec is not None:
                yield rec

    def _checked(self, row: Sequence[Any], errors: Errors) -> StoredRecord | None:
        try:
            return self._record(row)
        except CorruptRecordError as exc:
            if errors == "raise":
                raise
            self._report(errors, str(exc))
            return None

    @staticmethod
    def _report(errors: Errors, message: str) -> None:
        if errors == "warn":
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def readable_ids(
        self, where: str = "", args: Sequence[Any] = (), *, thorough: bool = False
    ) -> tuple[list[int], list[int]]:
        """Ids of the records matching a ``WHERE`` clause, found around damaged pages.

        A full scan first; if a damaged page stops it (or ``thorough``), the indexes are scanned
        too and every id up to 1000 past the highest one seen is looked up on its own. Returns
        ``(ids, unreadable)``: the ids found, and the ids whose lookup failed (contents unknown).
        """
        cond = f" WHERE {where}" if where else ""
        ids: set[int] = set()
        for index in ("", " INDEXED BY records_run_example", " INDEXED BY records_kind"):
            try:
                for (rid,) in self._db.execute(f"SELECT id FROM records{index}{cond}", list(args)):
                    ids.add(int(rid))
            except sqlite3.DatabaseError:
                continue  # a damaged page ends this scan; the others and the probes fill in
            if not index and not thorough:
                return sorted(ids), []  # the full scan read every page
        unreadable: list[int] = []
        probe = f"SELECT id FROM records WHERE id = ?{' AND (' + where + ')' if where else ''}"
        for rid in range(1, max(ids, default=0) + 1001):
            if rid in ids:
                continue
            try:
                if self._db.execute(probe, [rid, *args]).fetchone() is not None:
                    ids.add(rid)
            except sqlite3.DatabaseError:
                unreadable.append(rid)
        return sorted(ids), unreadable

    def one(self, **filters: Any) -> StoredRecord:
        """The single record matching ``filters``; a clear error for none or several."""
        found = self.query(limit=2, **filters)
        if not found:
            raise KeyError(f"no record in {self.path} matches {filters}")
        if len(found) > 1:
            raise KeyError(f"several records in {self.path} match {filters}; add filters")
        return found[0]

    def get(self, record_id: int) -> StoredRecord:
        """The record with this id (metadata checked against its checksum)."""
        try:
            row = self._db.execute(
                f"SELECT {self._columns()} FROM records WHERE id = ?", (int(record_id),)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, f"reading record {record_id}") from exc
        if row is None:
            raise KeyError(f"no record {record_id} in {self.path}")
        return self._record(row)

    def _columns(self) -> str:
        cols = ", ".join(_META_COLUMNS)
        return cols if self._meta_crc else cols.replace("meta_crc32", "NULL AS meta_crc32")

    def _record(self, row: Sequence[Any]) -> StoredRecord:
        d = dict(zip(_META_COLUMNS, row, strict=True))
        where = f"record {d['id']} (run={d['run']!r}, module={d['module']!r}, example={d['example']!r})"
        if d["meta_crc32"] is not None and meta_checksum(d) != d["meta_crc32"]:
            raise CorruptRecordError(
                f"{self.path}: {where}: metadata checksum mismatch: its labels (run, module, example, "
                f"tokens, ...) are damaged, so its array is not returned under them. Run "
                f"`python -m interp check {self.path}`; salvage leaves this record out."
            )
        try:
            params = json.loads(d["params"]) if d["params"] else {}
            source = json.loads(d["source"]) if d["source"] is not None else None
            target = json.loads(d["target"]) if d["target"] is not None else None
            shape = tuple(int(x) for x in json.loads(d["shape"]))
        except (ValueError, TypeError) as exc:
            raise CorruptRecordError(f"{self.path}: {where}: unreadable metadata ({exc})") from exc
        return StoredRecord(
            id=d["id"], run=d["run"], model=d["model"], fingerprint=d["fingerprint"],
            module=d["module"], example=d["example"], step=d["step"], kind=d["kind"],
            params=params, source=source, target=target, dtype=d["dtype"], shape=shape,
            crc32=d["crc32"], created=d["created"], meta_crc32=d["meta_crc32"], _store=self,
        )

    def _load(self, rec: StoredRecord) -> np.ndarray:
        try:
            row = self._db.execute("SELECT data FROM records WHERE id = ?", (rec.id,)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise CorruptRecordError(f"{self.path}: {rec.where}: cannot read its bytes ({exc})") from exc
        if row is None:
            raise KeyError(f"{rec.where} no longer exists in {self.path}")
        blob = row[0]
        if not isinstance(blob, bytes):
            raise CorruptRecordError(f"{self.path}: {rec.where}: data is {type(blob).__name__}, not bytes")
        arr = decode_array(blob, rec.dtype, rec.shape, where=f"{self.path}: {rec.where}")
        if zlib.crc32(blob) != rec.crc32:
            raise CorruptRecordError(
                f"{self.path}: {rec.where}: checksum mismatch, the stored bytes are damaged"
            )
        return arr

    def arrays(
        self, *, errors: Errors = "raise", **filters: Any
    ) -> Iterator[tuple[StoredRecord, np.ndarray]]:
        """Stream ``(record, array)`` pairs. With ``errors="warn"`` or ``"skip"`` a damaged
        record (bytes, metadata or its page) is reported (or silently passed) and every other
        readable record is still returned."""
        _check_errors(errors)
        for rec in self.iter(errors=errors, **filters):
            try:
                arr = rec.array()
            except CorruptRecordError as exc:
                if errors == "raise":
                    raise
                if errors == "warn":
                    warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
                continue
            yield rec, arr

    def examples(self, *, run: str, kind: str | None = None, model: str | None = None,
                 among: Iterable[Any] | None = None) -> set[str]:
        """Example ids with at least one record in ``run`` (optionally only those ``among``)."""
        filters: dict[str, Any] = {"run": run, "kind": kind, "model": model}
        if among is not None:
            filters["example"] = [str(e) for e in among]
            if not filters["example"]:
                return set()
        where, args = self._where(filters)
        try:
            return {r[0] for r in self._db.execute(f"SELECT DISTINCT example FROM records WHERE {where}", args)}
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, "listing examples") from exc

    def count(self, **filters: Any) -> int:
        """Number of records matching ``filters``."""
        where, args = self._where(filters)
        sql = "SELECT COUNT(*) FROM records" + (f" WHERE {where}" if where else "")
        try:
            return int(self._db.execute(sql, args).fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, "counting") from exc

    def __len__(self) -> int:
        return self.count()

    def summary(self) -> list[dict[str, Any]]:
        """Record counts grouped by run, model, fingerprint, module and kind."""
        sql = (
            "SELECT run, model, fingerprint, module, kind, COUNT(*), COUNT(DISTINCT example), "
            "MIN(created), MAX(created) FROM records GROUP BY run, model, fingerprint, module, kind "
            "ORDER BY run, model, module, kind"
        )
        keys = ("run", "model", "fingerprint", "module", "kind", "records", "examples", "first", "last")
        try:
            return [dict(zip(keys, r, strict=True)) for r in self._db.execute(sql)]
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, "summarising") from exc

    def info(self) -> dict[str, Any]:
        """Schema version, record count and file size."""
        return {
            "path": str(self.path),
            "format": FORMAT_NAME,
            "schema_version": int(self._db.execute("PRAGMA user_version").fetchone()[0]),
            "records": self.count(),
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
        }

    def to_pandas(self, **filters: Any) -> Any:
        """Metadata of matching records as a ``pandas.DataFrame`` (arrays not loaded)."""
        import pandas as pd

        recs = self.query(**filters)
        cols = [c for c in _META_COLUMNS if c != "crc32"]
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in recs], columns=cols)

    # ------------------------------------------------------------------ integrity

    def check(self, *, arrays: bool = True) -> list[str]:
        """Problems found, empty when the store is sound.

        Runs SQLite's ``PRAGMA integrity_check``, verifies every record's metadata checksum and
        (``arrays=True``) its array's dtype, size and checksum. Never raises for a damaged file:
        problems are returned. A deleted ``-wal`` file cannot be noticed (see the README).
        """
        problems: list[str] = []
        try:
            for (line,) in self._db.execute("PRAGMA integrity_check"):
                if line != "ok":
                    problems.append(f"sqlite: {line}")
        except sqlite3.DatabaseError as exc:
            problems.append(f"sqlite: integrity check could not run: {exc}")
        ids, unreadable = self.readable_ids()
        problems.extend(f"{self.path}: record {rid}: unreadable (damaged page)" for rid in unreadable)
        for rid in ids:
            try:
                rec = self.get(rid)
                if arrays:
                    rec.array()
            except (StoreError, KeyError) as exc:
                problems.append(str(exc))
        return problems

    def salvage(self, dest: str | os.PathLike[str], *, overwrite: bool = False) -> Any:
        """Copy every readable record into a new store at ``dest``; see :func:`interp.store.salvage`."""
        from .store_salvage import salvage

        return salvage(self.path, dest, overwrite=overwrite)

    # ------------------------------------------------------------------ parquet

    def export_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 1024,
        errors: Errors = "raise",
        overwrite: bool = False,
        partition_by: Sequence[str] | None = None,
        **filters: Any,
    ) -> int:
        """Write matching records to a Parquet file (or, with ``partition_by``, a partitioned
        Parquet dataset folder); see :func:`interp.store_parquet.export_parquet`."""
        from .store_parquet import export_parquet

        return export_parquet(self, path, batch_size=batch_size, errors=errors, overwrite=overwrite,
                              partition_by=partition_by, **filters)

    def import_parquet(
        self, path: str | os.PathLike[str], *, batch_size: int = 256,
        max_bytes: int | None = DEFAULT_MAX_IMPORT_BYTES,
    ) -> int:
        """Add the records of a Parquet export in one transaction, at most ``max_bytes`` of
        arrays (``None``: no limit); see :func:`interp.store_parquet.import_parquet`."""
        from .store_parquet import import_parquet

        return import_parquet(self, path, batch_size=batch_size, max_bytes=max_bytes)


def open_store(path: str | os.PathLike[str], *, readonly: bool = False) -> Store:
    """Open (or create) a store; same as ``Store(path)``."""
    return Store(path, readonly=readonly)


def salvage(src: str | os.PathLike[str], dest: str | os.PathLike[str], *, overwrite: bool = False) -> Any:
    """Copy every readable, verified record of a damaged store into a new store ``dest``;
    see :func:`interp.store_salvage.salvage`."""
    from .store_salvage import salvage as _salvage

    return _salvage(src, dest, overwrite=overwrite)


__all__ = [
    "ALLOWED_DTYPES",
    "CorruptRecordError",
    "SCHEMA_VERSION",
    "Store",
    "StoreError",
    "StoredRecord",
    "decode_array",
    "fingerprint",
    "open_store",
    "salvage",
]
