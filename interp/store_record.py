"""What a stored record is, written once: the store's table, writers, readers, Parquet and
salvage all derive their column lists from :data:`FIELDS`.

A record is an array plus labels. *Labels* are what a writer gives (``Store.add`` keywords);
the other columns (dtype, shape, checksums, time) are computed when the record is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    """One column of the ``records`` table."""

    name: str
    sql: str  # its type and constraints in the table
    label: bool = False  # a writer gives it (a keyword of Store.add)
    required: bool = False  # a writer must give it
    filter: bool = False  # usable as a query filter (store.query(name=...))
    key: bool = False  # part of the unique key: records equal on every key field are one record
    arrow: str | None = None  # its Parquet type: "string", "int64", "float64", "list<string>"
    default: Any = None  # the value a writer's omission stands for


# Order matters: the metadata checksum covers the columns in this order (without ``data`` and
# ``meta_crc32``), so existing stores stay verifiable. Append new fields at the end.
FIELDS: tuple[Field, ...] = (
    Field("run", "TEXT NOT NULL", label=True, required=True, filter=True, key=True, arrow="string"),
    Field("model", "TEXT NOT NULL DEFAULT ''", label=True, filter=True, key=True, arrow="string", default=""),
    Field("fingerprint", "TEXT NOT NULL DEFAULT ''", label=True, filter=True, arrow="string", default=""),
    Field("module", "TEXT NOT NULL", label=True, required=True, filter=True, key=True, arrow="string"),
    Field("example", "TEXT NOT NULL", label=True, required=True, filter=True, key=True, arrow="string"),
    Field("step", "INTEGER NOT NULL DEFAULT 0", label=True, filter=True, key=True, arrow="int64", default=0),
    Field("kind", "TEXT NOT NULL DEFAULT 'attention'", label=True, filter=True, key=True, arrow="string",
          default="attention"),
    Field("params", "TEXT NOT NULL DEFAULT '{}'", label=True, key=True, arrow="string", default=None),
    Field("source", "TEXT", label=True, arrow="list<string>"),
    Field("target", "TEXT", label=True, arrow="list<string>"),
    Field("dtype", "TEXT NOT NULL", arrow="string"),
    Field("shape", "TEXT NOT NULL"),  # Parquet: a list of ints beside the values
    Field("crc32", "INTEGER NOT NULL"),
    Field("data", "BLOB NOT NULL"),
    Field("created", "REAL NOT NULL", arrow="float64"),
    Field("meta_crc32", "INTEGER"),
)

NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
LABELS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.label)
REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
FILTERS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.filter)
KEY: tuple[str, ...] = tuple(f.name for f in FIELDS if f.key)
DEFAULTS: dict[str, Any] = {f.name: f.default for f in FIELDS if f.label and not f.required}
#: columns the metadata checksum covers, in order
CHECKED: tuple[str, ...] = tuple(n for n in NAMES if n not in ("data", "meta_crc32"))
#: columns read as a record's metadata (everything but the array's bytes), ``id`` first
METADATA: tuple[str, ...] = ("id", *(n for n in NAMES if n != "data"))


def table_sql() -> str:
    """``CREATE TABLE records``: every field, and the unique key."""
    columns = ",\n".join(f"    {f.name:<11} {f.sql}" for f in FIELDS)
    return (f"CREATE TABLE IF NOT EXISTS records (\n    id          INTEGER PRIMARY KEY,\n{columns},\n"
            f"    UNIQUE ({', '.join(KEY)})\n)")


def labels_of(record: Any) -> dict[str, Any]:
    """A stored record's labels as ``Store.add`` keywords (to copy it into another store)."""
    return {name: getattr(record, name) for name in LABELS}


__all__ = ["CHECKED", "DEFAULTS", "FIELDS", "FILTERS", "KEY", "LABELS", "METADATA", "NAMES", "REQUIRED",
           "Field", "labels_of", "table_sql"]
