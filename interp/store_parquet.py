"""Parquet export and import of a store: the hand-off to DuckDB, Spark or Dask, and back.

Arrays are exported as a list column, ``values`` (``list<double>``: the array flattened in C
order) beside ``shape`` and the stored ``dtype``, so DuckDB, Spark or Dask read the numbers with
their own list functions, e.g. in DuckDB::

    SELECT module, avg(list_max("values")) FROM 'attention.parquet' GROUP BY module;

Every stored dtype widens to double exactly (integers beyond 2**53 are refused rather than
rounded), so importing the file restores the stored array bit for bit. Import also reads the
older layout, raw bytes in a ``data`` column.

Export never writes over its input or an existing file unless asked, and writes a temporary
file renamed into place. Import treats the file as untrusted: every row is validated like any
record, the array bytes it may add are capped (declared sizes checked before anything is read,
actual sizes counted while reading), and it runs in one transaction, so a failure part way
leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._outputs import check_output, replace_atomically
from .store import _INSERT, SCHEMA_VERSION, Errors, Store, StoredRecord
from .store_codec import ALLOWED_DTYPES, decode_array, json_params
from .store_errors import CorruptRecordError, StoreError
from .store_record import DEFAULTS, FIELDS, LABELS, REQUIRED

FORMAT_NAME = "interp-store"


def arrow_schema(pa: Any) -> Any:
    """The Parquet columns of an export: the record's fields (:mod:`interp.store_record`) that
    have a Parquet type, then ``shape`` and ``values`` for the array."""
    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(),
             "list<string>": pa.list_(pa.string())}
    columns = [(f.name, types[f.arrow]) for f in FIELDS if f.arrow is not None]
    columns += [("shape", pa.list_(pa.int64())), ("values", pa.list_(pa.float64()))]
    return pa.schema(
        columns,
        metadata={b"format": FORMAT_NAME.encode(), b"schema_version": str(SCHEMA_VERSION).encode()},
    )


def _arrow_table(pa: Any, schema: Any, rows: list[tuple[StoredRecord, np.ndarray]]) -> Any:
    cols: dict[str, list[Any]] = {name: [] for name in schema.names}
    for rec, arr in rows:
        for name in cols:
            if name == "params":
                cols[name].append(json_params(rec.params))
            elif name == "shape":
                cols[name].append(list(rec.shape))
            elif name == "values":
                cols[name].append(_as_doubles(arr, rec))
            else:
                cols[name].append(getattr(rec, name))
    return pa.table(cols, schema=schema)


_EXACT_INTEGER = 2 ** 53  # doubles hold every integer up to here exactly


def _as_doubles(arr: np.ndarray, rec: StoredRecord) -> np.ndarray:
    """The array flattened to float64, refused if that would change a value."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype.kind in "iu" and flat.size and int(np.abs(flat.astype(np.int64)).max()) > _EXACT_INTEGER:
        raise StoreError(
            f"record run={rec.run!r} module={rec.module!r} example={rec.example!r}: {rec.dtype} values "
            f"beyond 2**53 cannot be exported exactly as doubles; export other records (filters) "
            f"or keep this one in the SQLite store"
        )
    return flat.astype(np.float64)


def export_parquet(
    store: Store,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 1024,
    errors: Errors = "raise",
    overwrite: bool = False,
    partition_by: Sequence[str] | None = None,
    **filters: Any,
) -> int:
    """Write matching records (metadata + arrays as list columns) to a Parquet file, streaming.

    With ``partition_by`` (e.g. ``("run", "module")``), ``path`` is a folder that receives a
    Hive-partitioned Parquet dataset (``run=.../module=.../part-0.parquet``), which DuckDB,
    Spark or Dask read as one table (``read_parquet('out/**/*.parquet', hive_partitioning=true)``).

    Columns: run, model, fingerprint, module, example, step, kind, params (JSON), source and
    target (lists of strings), dtype (as stored), shape (list of ints), values (the array
    flattened in C order, list of doubles), created. ``numpy.asarray(values).reshape(shape)``
    gives the array back; query tools use ``values`` directly (see the module docstring).
    ``path`` may not be the store itself; an existing file is replaced only with
    ``overwrite=True``. Returns the number of records written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(pa)
    if partition_by:
        return _export_dataset(store, path, schema, batch_size=batch_size, errors=errors,
                               overwrite=overwrite, partition_by=list(partition_by), filters=filters)
    out = check_output(path, inputs=[store.path], overwrite=overwrite, flag="overwrite=True (--force)")
    written = 0
    with replace_atomically(out) as tmp:
        writer = pq.ParquetWriter(str(tmp), schema)
        try:
            for table in _tables(store, schema, batch_size, errors, filters):
                writer.write_table(table)
                written += table.num_rows
        finally:
            writer.close()
    return written


def _tables(store: Store, schema: Any, batch_size: int, errors: Errors, filters: dict[str, Any]) -> Iterator[Any]:
    """The matching records as Arrow tables of at most ``batch_size`` rows."""
    import pyarrow as pa

    buf: list[tuple[StoredRecord, np.ndarray]] = []
    for rec, arr in store.arrays(errors=errors, **filters):
        buf.append((rec, arr))
        if len(buf) >= batch_size:
            yield _arrow_table(pa, schema, buf)
            buf = []
    if buf:
        yield _arrow_table(pa, schema, buf)


def _export_dataset(store: Store, path: Any, schema: Any, *, batch_size: int, errors: Errors,
                    overwrite: bool, partition_by: list[str], filters: dict[str, Any]) -> int:
    """A Hive-partitioned Parquet dataset in the folder ``path``: one file per partition,
    ``col=value/...`` folders (values URL-encoded), the partition columns in the folder names only.
    Written into a temporary folder beside ``path`` and moved into place at the end."""
    import shutil
    import urllib.parse

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    unknown = [c for c in partition_by if c not in schema.names or c in ("values", "shape", "source", "target")]
    if unknown:
        raise ValueError(f"cannot partition by {unknown}; partition by metadata columns such as run, module, kind")
    out = Path(path)
    if out.resolve() == Path(store.path).resolve():
        raise StoreError(f"{out}: that is the store itself; export to a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise StoreError(f"{out} exists and is not an empty folder; choose a new folder or pass "
                         "overwrite=True (--force) to replace it")
    file_schema = pa_schema_without(schema, partition_by)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    writers: dict[tuple[str, ...], Any] = {}
    written = 0
    try:
        for table in _tables(store, schema, batch_size, errors, filters):
            keys = list(zip(*(table.column(c).to_pylist() for c in partition_by), strict=True))
            for key in dict.fromkeys(keys):
                mask = pc.equal(table.column(partition_by[0]), key[0])
                for column, value in zip(partition_by[1:], key[1:], strict=True):
                    mask = pc.and_(mask, pc.equal(table.column(column), value))
                part = table.filter(mask).drop_columns(partition_by)
                if key not in writers:
                    folder = tmp.joinpath(*(f"{c}={urllib.parse.quote(str(v), safe='')}"
                                            for c, v in zip(partition_by, key, strict=True)))
                    folder.mkdir(parents=True, exist_ok=True)
                    writers[key] = pq.ParquetWriter(str(folder / "part-0.parquet"), file_schema)
                writers[key].write_table(part)
            written += table.num_rows
    except BaseException:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for writer in writers.values():
        writer.close()
    if not writers:
        tmp.mkdir(parents=True, exist_ok=True)
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return written


def pa_schema_without(schema: Any, columns: Sequence[str]) -> Any:
    """``schema`` without ``columns``, its metadata kept."""
    import pyarrow as pa

    return pa.schema([f for f in schema if f.name not in set(columns)], metadata=schema.metadata)


def _open_parquet(path: str | os.PathLike[str]) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not os.path.exists(path):
        raise StoreError(f"{path}: no such file")
    try:
        return pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as exc:
        raise StoreError(f"{path}: not a readable Parquet file ({exc})") from exc


def import_parquet(
    store: Store, path: str | os.PathLike[str], *, batch_size: int = 256, max_bytes: int | None = None,
) -> int:
    """Add the records of a Parquet export; returns how many were new (records already present
    are skipped). All or nothing: one transaction, rolled back on any error.

    ``max_bytes`` caps the array bytes the file may add (``None``: no cap). The file's declared
    uncompressed size is checked before reading and the bytes actually read are counted, so a
    small, highly compressed file cannot fill memory or disk.
    """
    import pyarrow as pa

    if store.readonly:
        raise StoreError(f"{store.path} is open read-only")
    pf = _open_parquet(path)
    names = set(pf.schema_arrow.names)
    needed = {"run", "module", "example", "dtype", "shape"}
    missing = needed - names
    if missing or not names & {"values", "data"}:
        missing |= set() if names & {"values", "data"} else {"values"}
        raise StoreError(f"{path}: not an interp Parquet export (missing columns {sorted(missing)})")
    if max_bytes is not None:
        declared = sum(pf.metadata.row_group(i).total_byte_size for i in range(pf.metadata.num_row_groups))
        if declared > max_bytes:
            raise StoreError(_too_big(path, f"declares {declared:,} bytes uncompressed", max_bytes))
    db = store._db
    total = 0
    try:
        with store._transaction():
            before = db.total_changes
            for i, batch in enumerate(pf.iter_batches(batch_size=batch_size)):
                rows, now = [], time.time()
                for j, r in enumerate(batch.to_pylist()):
                    data = r.get("data")
                    total += len(data) if isinstance(data, (bytes, bytearray)) else 0
                    values = r.get("values")
                    total += 8 * len(values) if isinstance(values, list) else 0
                    if max_bytes is not None and total > max_bytes:
                        raise StoreError(_too_big(path, f"holds more than {total:,} bytes of arrays", max_bytes))
                    rows.append(_encode_row(store, r, f"{path}: row {i * batch_size + j}", now))
                db.executemany(_INSERT["ignore"], rows)
            added = db.total_changes - before
    except (pa.ArrowException, OSError) as exc:
        raise StoreError(f"{path}: reading failed part way ({exc}); nothing was imported") from exc
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"{path}: a row breaks the store's rules ({exc}); nothing was imported") from exc
    except sqlite3.DatabaseError as exc:
        raise store._wrap(exc, "importing") from exc
    return added


def _too_big(path: Any, what: str, limit: int) -> str:
    return (
        f"{path}: {what}, over the import limit of {limit:,} bytes; nothing was imported. If you "
        f"trust the file, raise the limit: import_parquet(..., max_bytes=N) or "
        f"`python -m interp import --max-bytes N` (0 = no limit)."
    )


def _encode_row(store: Store, r: dict[str, Any], where: str, now: float) -> tuple:
    """One Parquet row (list or bytes layout) as an encoded record, validated like any record."""
    if r.get("values") is not None:
        arr: Any = _from_values(r["values"], r["dtype"], r["shape"], where)
    else:
        arr = decode_array(r.get("data"), r["dtype"], r["shape"], where=where)
    try:
        if r["dtype"] == "bfloat16":
            import torch

            arr = torch.from_numpy(arr.copy()).to(torch.bfloat16)
        labels = {name: r.get(name) for name in LABELS}
        for name in REQUIRED:
            labels[name] = _text(labels[name], name)
        for name, default in DEFAULTS.items():
            if labels[name] is None or labels[name] == "":
                labels[name] = default
        labels["params"] = json.loads(labels["params"]) if labels["params"] else {}
        return store._encode(dict(array=arr, **labels), now)
    except (TypeError, ValueError) as exc:
        raise CorruptRecordError(f"{where}: {exc}") from exc


def _from_values(values: list[Any], dtype: Any, shape: Any, where: str) -> np.ndarray:
    """A list-column array back in its stored dtype, refused unless that is exact."""
    if dtype not in ALLOWED_DTYPES:
        raise CorruptRecordError(
            f"{where}: dtype {dtype!r} is not allowed (allowed: {', '.join(ALLOWED_DTYPES)})"
        )
    try:
        dims = [int(d) for d in shape]
        doubles = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CorruptRecordError(f"{where}: values or shape are not numbers ({exc})") from exc
    if any(d < 0 for d in dims) or doubles.size != math.prod(dims):
        raise CorruptRecordError(f"{where}: {doubles.size} values do not fill shape {dims}")
    if dtype == "bfloat16":
        import torch

        narrowed = torch.from_numpy(doubles).to(torch.bfloat16).double().numpy()
        out = doubles.astype(np.float32)  # the store's bfloat16 view; encoded back to bf16 bits
    else:
        out = doubles.astype(np.dtype(dtype))
        narrowed = out.astype(np.float64)
    same = (narrowed == doubles) | (np.isnan(narrowed) & np.isnan(doubles))
    if not same.all():
        raise CorruptRecordError(f"{where}: values are not exactly representable as {dtype}")
    return out.reshape(dims)


def _text(value: Any, name: str) -> str:
    if value is None:
        raise TypeError(f"a record needs {name!r}")
    return str(value)


__all__ = ["arrow_schema", "export_parquet", "import_parquet"]
