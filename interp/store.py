"""A durable store of captured arrays: one SQLite file in WAL mode, no server, no pickle.

Why SQLite: ACID transactions (a killed writer loses at most its open transaction), readers
that never block the writer in WAL mode, a single file to copy, and SQL for metadata queries.
Arrays are stored as raw little-endian bytes plus a dtype from a fixed allow-list, a shape and a
CRC32, so loading is ``frombuffer + reshape``: nothing in a store can run code, and a damaged
record is detected and reported on its own without taking its neighbours down.

Each record carries: run, model name, model fingerprint (hash of the weights), module, example
id, source and target tokens, step, kind (``"attention"`` or an attribution method's name) with
its parameters (JSON), and the time it was written. ``(run, model, module, example, step, kind,
params)`` is unique, so re-running a capture never duplicates records.
"""

from __future__ import annotations

import hashlib
import json
import math
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

SCHEMA_VERSION = 1
APPLICATION_ID = 0x696E7470  # "intp": marks the file as an interp store
FORMAT_NAME = "interp-store"

# dtype name -> (numpy dtype or None for bfloat16, itemsize). Only plain numeric types: a dtype
# such as "object" would need pickle, so it can never be stored or loaded.
ALLOWED_DTYPES: dict[str, int] = {
    "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8,
    "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "bool": 1,
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id          INTEGER PRIMARY KEY,
    run         TEXT NOT NULL,
    model       TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL DEFAULT '',
    module      TEXT NOT NULL,
    example     TEXT NOT NULL,
    step        INTEGER NOT NULL DEFAULT 0,
    kind        TEXT NOT NULL DEFAULT 'attention',
    params      TEXT NOT NULL DEFAULT '{}',
    source      TEXT,
    target      TEXT,
    dtype       TEXT NOT NULL,
    shape       TEXT NOT NULL,
    crc32       INTEGER NOT NULL,
    data        BLOB NOT NULL,
    created     REAL NOT NULL,
    UNIQUE (run, model, module, example, step, kind, params)
);
CREATE INDEX IF NOT EXISTS records_run_example ON records (run, example);
CREATE INDEX IF NOT EXISTS records_model ON records (model, fingerprint);
CREATE INDEX IF NOT EXISTS records_kind ON records (kind, run);
"""

_META_COLUMNS = (
    "id", "run", "model", "fingerprint", "module", "example", "step", "kind", "params",
    "source", "target", "dtype", "shape", "crc32", "created",
)
_FILTERS = ("run", "model", "fingerprint", "module", "example", "step", "kind")


class StoreError(RuntimeError):
    """The store file cannot be used: not a store, a newer schema, corrupt or truncated."""


class CorruptRecordError(StoreError):
    """One record's array failed validation; other records are unaffected."""


def fingerprint(model: Any) -> str:
    """A hash of a model's weights: equal for equal ``state_dict`` tensors, names and shapes.

    Accepts an ``nn.Module`` or a ``state_dict``-like mapping of tensors/arrays. Used to tell
    checkpoints apart in the store without trusting file names.
    """
    state = model.state_dict() if hasattr(model, "state_dict") else model
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        value = state[name]
        raw, dtype, shape = _to_bytes(value)
        h.update(name.encode())
        h.update(f"|{dtype}|{shape}|".encode())
        h.update(raw)
    return h.hexdigest()


def _to_bytes(value: Any) -> tuple[bytes, str, tuple[int, ...]]:
    """Raw little-endian C-order bytes, dtype name and shape of a tensor or array."""
    if hasattr(value, "detach") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        import torch

        t = value.detach().to("cpu").contiguous()
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in ALLOWED_DTYPES:
            raise TypeError(f"cannot store tensors of dtype {t.dtype}; allowed: {', '.join(ALLOWED_DTYPES)}")
        shape = tuple(t.shape)
        if dtype == "bfloat16":
            raw = t.reshape(-1).view(torch.int16).numpy().astype("<i2", copy=False).tobytes()
        else:
            raw = _np_bytes(t.numpy())
        return raw, dtype, shape
    arr = np.asarray(value)
    dtype = arr.dtype.name
    if dtype not in ALLOWED_DTYPES or dtype == "bfloat16":
        raise TypeError(f"cannot store arrays of dtype {arr.dtype}; allowed: {', '.join(ALLOWED_DTYPES)}")
    return _np_bytes(arr), dtype, tuple(arr.shape)


def _np_bytes(arr: np.ndarray) -> bytes:
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return np.ascontiguousarray(arr).tobytes()


def _looks_pickled(blob: bytes) -> bool:
    return len(blob) >= 2 and blob[0] == 0x80 and 2 <= blob[1] <= 5


def decode_array(blob: bytes, dtype: str, shape: Sequence[int], *, where: str = "record") -> np.ndarray:
    """Validate and decode a stored array (never unpickles). bfloat16 comes back as float32."""
    if dtype not in ALLOWED_DTYPES:
        raise CorruptRecordError(
            f"{where}: dtype {dtype!r} is not allowed (allowed: {', '.join(ALLOWED_DTYPES)}); "
            f"interp never unpickles, so this record is refused. The file may have been "
            f"written by another tool or tampered with."
        )
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError) as exc:
        raise CorruptRecordError(f"{where}: shape {shape!r} is not a list of integers") from exc
    if any(d < 0 for d in dims):
        raise CorruptRecordError(f"{where}: negative dimension in shape {dims}")
    expected = math.prod(dims) * ALLOWED_DTYPES[dtype]
    if len(blob) != expected:
        extra = " (the bytes look like a pickle payload, which is never loaded)" if _looks_pickled(blob) else ""
        raise CorruptRecordError(
            f"{where}: {len(blob)} bytes stored but dtype {dtype} shape {dims} needs {expected}{extra}"
        )
    if dtype == "bfloat16":
        bits = np.frombuffer(blob, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(dims)
    return np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).reshape(dims)


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
    _store: Store | None = field(default=None, repr=False, compare=False)

    def array(self) -> np.ndarray:
        """Load, check (size, CRC32, dtype) and return the array (read-only view)."""
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


def _json_tokens(tokens: Sequence[Any] | None) -> str | None:
    if tokens is None:
        return None
    if isinstance(tokens, str):
        raise TypeError("tokens must be a sequence of strings, not one string (split it first)")
    return json.dumps([str(t) for t in tokens], ensure_ascii=False)


def _json_params(params: Mapping[str, Any] | None) -> str:
    return json.dumps(dict(params or {}), sort_keys=True, separators=(",", ":"), default=str)


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
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(
                f"{self.path}: not a readable interp store ({exc}). If it is a store that was "
                f"truncated or damaged, copy its readable records into a new store with "
                f"`python -m interp salvage {self.path} rescued.sqlite`."
            ) from exc
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------------ lifecycle

    def _check_or_init(self) -> None:
        db = self._db
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id == 0 and not tables:
            if self.readonly:
                raise StoreError(f"{self.path}: empty file, not an interp store")
            db.execute("BEGIN IMMEDIATE")
            try:
                # Re-check under the write lock: another process may have created it meanwhile.
                if not {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT_NAME,))
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
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
        verb = {"ignore": "INSERT OR IGNORE", "replace": "INSERT OR REPLACE", "raise": "INSERT"}
        if on_conflict not in verb:
            raise ValueError(f"on_conflict must be 'ignore', 'replace' or 'raise', got {on_conflict!r}")
        now = time.time()
        encoded = [self._encode(row, now) for row in rows]
        if not encoded:
            return 0
        sql = (
            f"{verb[on_conflict]} INTO records (run, model, fingerprint, module, example, step, kind, "
            "params, source, target, dtype, shape, crc32, data, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        return self._write(sql, encoded)

    def _write(self, sql: str, rows: list[tuple]) -> int:
        if self.readonly:
            raise StoreError(f"{self.path} is open read-only")
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                before = db.total_changes
                db.executemany(sql, rows)
                written = db.total_changes - before
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: a record with the same key exists ({exc}); "
                             f"use on_conflict='ignore' or 'replace'") from exc
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, "writing") from exc
        return written

    @staticmethod
    def _encode(row: Mapping[str, Any], now: float) -> tuple:
        unknown = set(row) - {
            "array", "run", "module", "example", "model", "fingerprint", "step", "kind",
            "params", "source", "target",
        }
        if unknown:
            raise TypeError(f"unknown record fields {sorted(unknown)}")
        for key in ("array", "run", "module", "example"):
            if key not in row or row[key] is None:
                raise TypeError(f"a record needs {key!r}")
        raw, dtype, shape = _to_bytes(row["array"])
        return (
            str(row["run"]), str(row.get("model") or ""), str(row.get("fingerprint") or ""),
            str(row["module"]), str(row["example"]), int(row.get("step") or 0),
            str(row.get("kind") or "attention"), _json_params(row.get("params")),
            _json_tokens(row.get("source")), _json_tokens(row.get("target")),
            dtype, json.dumps(list(shape)), zlib.crc32(raw), raw, now,
        )

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

    def iter(self, *, limit: int | None = None, order: str = "id", **filters: Any) -> Iterator[StoredRecord]:
        """Like :meth:`query`, streaming (bounded memory for any number of records)."""
        if order not in ("id", "created", "example", "module"):
            raise ValueError(f"order must be id, created, example or module, got {order!r}")
        where, args = self._where(filters)
        sql = f"SELECT {', '.join(_META_COLUMNS)} FROM records"
        if where:
            sql += f" WHERE {where}"
        sql += f" ORDER BY {order}, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            cursor = self._db.execute(sql, args)
            for row in cursor:
                yield self._record(row)
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, "querying") from exc

    def one(self, **filters: Any) -> StoredRecord:
        """The single record matching ``filters``; a clear error for none or several."""
        found = self.query(limit=2, **filters)
        if not found:
            raise KeyError(f"no record in {self.path} matches {filters}")
        if len(found) > 1:
            raise KeyError(f"several records in {self.path} match {filters}; add filters")
        return found[0]

    def get(self, record_id: int) -> StoredRecord:
        """The record with this id."""
        try:
            row = self._db.execute(
                f"SELECT {', '.join(_META_COLUMNS)} FROM records WHERE id = ?", (int(record_id),)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise self._wrap(exc, f"reading record {record_id}") from exc
        if row is None:
            raise KeyError(f"no record {record_id} in {self.path}")
        return self._record(row)

    def _record(self, row: Sequence[Any]) -> StoredRecord:
        d = dict(zip(_META_COLUMNS, row, strict=True))
        where = f"record {d['id']} (run={d['run']!r}, module={d['module']!r}, example={d['example']!r})"
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
            crc32=d["crc32"], created=d["created"], _store=self,
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
        self, *, errors: Literal["raise", "warn", "skip"] = "raise", **filters: Any
    ) -> Iterator[tuple[StoredRecord, np.ndarray]]:
        """Stream ``(record, array)`` pairs. With ``errors="warn"`` or ``"skip"`` a damaged
        record is reported (or silently passed) and the others are still read."""
        if errors not in ("raise", "warn", "skip"):
            raise ValueError(f"errors must be 'raise', 'warn' or 'skip', got {errors!r}")
        for rec in self.iter(**filters):
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

        Runs SQLite's ``PRAGMA integrity_check`` and (``arrays=True``) validates every record's
        dtype, size and checksum. Never raises for a damaged file: problems are returned.
        """
        problems: list[str] = []
        try:
            for (line,) in self._db.execute("PRAGMA integrity_check"):
                if line != "ok":
                    problems.append(f"sqlite: {line}")
        except sqlite3.DatabaseError as exc:
            problems.append(f"sqlite: integrity check could not run: {exc}")
        if arrays:
            try:
                ids = [r[0] for r in self._db.execute("SELECT id FROM records ORDER BY id")]
            except sqlite3.DatabaseError as exc:
                problems.append(f"records: cannot list: {exc}")
                ids = []
            for rid in ids:
                try:
                    self.get(rid).array()
                except (StoreError, KeyError) as exc:
                    problems.append(str(exc))
        return problems

    def salvage(self, dest: str | os.PathLike[str]) -> tuple[int, int]:
        """Copy every readable record into a new store at ``dest``; see :func:`salvage`."""
        return salvage(self.path, dest)

    # ------------------------------------------------------------------ parquet

    def export_parquet(
        self,
        path: str | os.PathLike[str],
        *,
        batch_size: int = 1024,
        errors: Literal["raise", "warn", "skip"] = "raise",
        **filters: Any,
    ) -> int:
        """Write matching records (metadata + raw array bytes) to a Parquet file, streaming.

        Columns: run, model, fingerprint, module, example, step, kind, params (JSON), source and
        target (lists of strings), dtype, shape (list of ints), data (bytes), created. Decode
        ``data`` with ``numpy.frombuffer(data, dtype).reshape(shape)`` in DuckDB/Spark/Dask.
        Returns the number of records written.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema(pa)
        written = 0
        writer = pq.ParquetWriter(str(path), schema)
        try:
            buf: list[tuple[StoredRecord, np.ndarray]] = []
            for rec, arr in self.arrays(errors=errors, **filters):
                buf.append((rec, arr))
                if len(buf) >= batch_size:
                    writer.write_table(_arrow_table(pa, schema, buf))
                    written += len(buf)
                    buf = []
            if buf:
                writer.write_table(_arrow_table(pa, schema, buf))
                written += len(buf)
        finally:
            writer.close()
        return written

    def import_parquet(self, path: str | os.PathLike[str], *, batch_size: int = 1024) -> int:
        """Add the records of a Parquet export (validated like any record); returns how many were
        new (records already present are skipped)."""
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(str(path))
        needed = {"run", "module", "example", "dtype", "shape", "data"}
        missing = needed - set(pf.schema_arrow.names)
        if missing:
            raise StoreError(f"{path}: not an interp Parquet export (missing columns {sorted(missing)})")
        added = 0
        for i, batch in enumerate(pf.iter_batches(batch_size=batch_size)):
            rows = []
            for j, r in enumerate(batch.to_pylist()):
                where = f"{path}: row {i * batch_size + j}"
                arr = decode_array(r["data"], r["dtype"], r["shape"], where=where)
                if r["dtype"] == "bfloat16":
                    import torch

                    arr = torch.from_numpy(arr.copy()).to(torch.bfloat16)
                rows.append(dict(
                    array=arr, run=r["run"], module=r["module"], example=r["example"],
                    model=r.get("model") or "", fingerprint=r.get("fingerprint") or "",
                    step=r.get("step") or 0, kind=r.get("kind") or "attention",
                    params=json.loads(r["params"]) if r.get("params") else {},
                    source=r.get("source"), target=r.get("target"),
                ))
            added += self.add_many(rows)
        return added


def _arrow_schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("run", pa.string()), ("model", pa.string()), ("fingerprint", pa.string()),
            ("module", pa.string()), ("example", pa.string()), ("step", pa.int64()),
            ("kind", pa.string()), ("params", pa.string()),
            ("source", pa.list_(pa.string())), ("target", pa.list_(pa.string())),
            ("dtype", pa.string()), ("shape", pa.list_(pa.int64())), ("data", pa.binary()),
            ("created", pa.float64()),
        ],
        metadata={b"format": FORMAT_NAME.encode(), b"schema_version": str(SCHEMA_VERSION).encode()},
    )


def _arrow_table(pa: Any, schema: Any, rows: list[tuple[StoredRecord, np.ndarray]]) -> Any:
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for rec, arr in rows:
        for name in ("run", "model", "fingerprint", "module", "example", "step", "kind",
                     "source", "target", "dtype", "created"):
            cols[name].append(getattr(rec, name))
        cols["params"].append(_json_params(rec.params))
        cols["shape"].append(list(rec.shape))
        if rec.dtype == "bfloat16":  # keep the stored bf16 bits, not the float32 view
            cols["data"].append((arr.view(np.uint32) >> 16).astype("<u2").tobytes())
        else:
            cols["data"].append(_np_bytes(arr))
    return pa.table(cols, schema=schema)


def salvage(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> tuple[int, int]:
    """Copy every readable record of a damaged (even unopenable) store into ``dest``.

    Works on a private copy of ``src`` (never modifies it): a truncated file is cut to whole
    pages and its header's page count corrected, so SQLite reads what survives; record ids are
    gathered from whatever table and index pages still read, then each record is fetched and
    validated on its own. Returns ``(copied, lost)``; ``lost`` counts records known to exist
    but unreadable (how many were past a truncation point cannot be known).
    """
    import shutil
    import tempfile

    src = Path(src)
    try:
        with open(src, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise StoreError(f"{src}: cannot read: {exc}") from exc
    if not header.startswith(b"SQLite format 3\x00") or len(header) < 100:
        raise StoreError(f"{src}: not a SQLite file (starts with {header[:16]!r}); nothing to salvage")
    page = int.from_bytes(header[16:18], "big")
    page = 65536 if page == 1 else page
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.sqlite"
        shutil.copyfile(src, copy)
        wal = Path(f"{src}-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(f"{copy}-wal"))
        pages = copy.stat().st_size // page
        with open(copy, "r+b") as f:
            f.truncate(pages * page)
            f.seek(28)
            f.write(pages.to_bytes(4, "big"))
        raw = Store.__new__(Store)
        raw.path, raw.readonly = src, True
        raw._db = sqlite3.connect(copy, isolation_level=None)
        try:
            return _copy_readable(raw, dest)
        finally:
            raw._db.close()


def _copy_readable(raw: Store, dest: str | os.PathLike[str]) -> tuple[int, int]:
    ids: set[int] = set()
    for sql in (
        "SELECT id FROM records",
        "SELECT id FROM records INDEXED BY records_run_example",
        "SELECT id FROM records INDEXED BY records_kind",
    ):
        try:
            for (rid,) in raw._db.execute(sql):
                ids.add(int(rid))
        except sqlite3.DatabaseError:
            continue  # a damaged page ends this scan; the others and the probes fill in
    top = max(ids, default=0)
    copied = 0
    failed: list[int] = []
    last_good = 0
    rows: list[dict[str, Any]] = []
    with Store(dest) as out:
        for rid in sorted(ids | set(range(1, top + 1001))):
            try:
                rec = raw.get(rid)
                arr: Any = rec.tensor() if rec.dtype == "bfloat16" else rec.array()
            except KeyError:
                continue
            except StoreError:
                failed.append(rid)
                continue
            last_good = rid
            rows.append(dict(
                array=arr, run=rec.run, module=rec.module, example=rec.example, model=rec.model,
                fingerprint=rec.fingerprint, step=rec.step, kind=rec.kind, params=rec.params,
                source=rec.source, target=rec.target,
            ))
            if len(rows) >= 256:
                copied += out.add_many(rows)
                rows = []
        copied += out.add_many(rows)
    # Ids past a truncation point cannot be told from ids never written: count as lost only
    # records known to exist (listed by a scan, or below a record that was read).
    lost = sum(1 for rid in failed if rid in ids or rid < last_good)
    return copied, lost


def open_store(path: str | os.PathLike[str], *, readonly: bool = False) -> Store:
    """Open (or create) a store; same as ``Store(path)``."""
    return Store(path, readonly=readonly)


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
