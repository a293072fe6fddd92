"""interp.store under attack: outputs that would destroy inputs, flipped metadata bits, damaged
pages, oversized or failing imports, locks, foreign files. Each test reproduces one attack."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest

from interp.__main__ import main
from interp.store import DEFAULT_MAX_IMPORT_BYTES, CorruptRecordError, Store, StoreError, salvage

N = 300


def make_store(path: Path, n: int = N) -> Path:
    """``n`` records whose arrays are filled with their example id, tokens ['a', 'b']."""
    with Store(path) as s:
        s.add_many(dict(array=np.full((4, 10, 12), i, np.float32), run="r", module="m", example=i,
                        source=["a", "b"]) for i in range(n))
    return path


def consistent(pairs) -> bool:
    """Every array is filled with its own record's example id (labels match contents)."""
    return all(np.all(arr == int(rec.example)) for rec, arr in pairs)


# --------------------------------------------------------------------------- outputs


def test_export_onto_the_store_itself_is_refused_and_loses_nothing(tmp_path, capsys):
    path = make_store(tmp_path / "s.sqlite", 20)
    before = path.read_bytes()
    assert main(["export", str(path), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "would destroy it" in err and err.count("\n") == 1
    assert path.read_bytes() == before
    with Store(path) as s:
        assert s.check() == [] and len(s) == 20
    link = tmp_path / "hard.parquet"
    link.hardlink_to(path)  # the same file under another name
    assert main(["export", str(path), str(link), "--force"]) == 2
    assert path.read_bytes() == before
    assert main(["export", str(path), f"{path}-wal", "--force"]) == 2


def test_export_never_replaces_an_existing_file_unless_forced(tmp_path, capsys):
    path = make_store(tmp_path / "s.sqlite", 5)
    out = tmp_path / "mine.parquet"
    out.write_bytes(b"my own data")
    assert main(["export", str(path), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"my own data"
    assert main(["export", str(path), str(out), "--force"]) == 0
    with Store(tmp_path / "b.sqlite") as b:
        assert b.import_parquet(out) == 5
    assert not list(tmp_path.glob(".*.tmp*"))  # the temporary file was renamed into place


def test_a_failed_export_leaves_the_existing_output_as_it_was(tmp_path):
    path = make_store(tmp_path / "s.sqlite", 5)
    db = sqlite3.connect(path)
    db.execute("UPDATE records SET data = x'00' WHERE example = '3'")
    db.commit()
    db.close()
    out = tmp_path / "old.parquet"
    out.write_bytes(b"previous export")
    with Store(path) as s, pytest.raises(CorruptRecordError):
        s.export_parquet(out, overwrite=True)
    assert out.read_bytes() == b"previous export"


def test_a_non_store_file_is_never_turned_into_a_store(tmp_path):
    for content in (b"x", b"notes I care about\n"):
        victim = tmp_path / "victim.txt"
        victim.write_bytes(content)
        with pytest.raises(StoreError, match="not a SQLite database.*choose another file name"):
            Store(victim)
        assert victim.read_bytes() == content
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with Store(empty) as s:  # an empty file is a new store, as SQLite treats it
        assert len(s) == 0


# --------------------------------------------------------------------------- metadata bit flips


def flip_in_file(path: Path, pattern: bytes, offset: int, bit: int = 0) -> None:
    """Flip one bit of the table row holding ``pattern`` (which appears once in the file)."""
    raw = bytearray(path.read_bytes())
    at = raw.find(pattern)
    assert at >= 0 and raw.find(pattern, at + 1) < 0, "pattern must be unique"
    raw[at + offset] ^= 1 << bit
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("field", ["example", "module"])
def test_a_flipped_metadata_bit_never_relabels_an_array(tmp_path, field):
    path = make_store(tmp_path / "s.sqlite")
    # The table row (not the indexes) holds tokens and dtype after run, module and example.
    row = b'rm150attention{}["a", "b"]float32'
    if field == "example":
        flip_in_file(path, row, 4)   # "150" -> "151": the example id a neighbour already has
    else:
        flip_in_file(path, row, 1)   # "m" -> "l": another module name
    with Store(path) as s:
        with pytest.raises(CorruptRecordError, match="metadata checksum mismatch"):
            list(s.arrays())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pairs = list(s.arrays(errors="warn"))
        assert len(pairs) == N - 1 and consistent(pairs)
        assert any("metadata checksum mismatch" in str(w.message) for w in caught)
        assert any("metadata checksum" in p for p in s.check(arrays=False))
        with pytest.warns(RuntimeWarning, match="metadata checksum"):
            assert s.export_parquet(tmp_path / "o.parquet", errors="warn") == N - 1
    report = salvage(path, tmp_path / "rescued.sqlite")
    assert (report.copied, report.lost) == (N - 1, 1)
    assert len(report.dropped) == 1 and "metadata checksum mismatch" in report.dropped[0]
    with Store(tmp_path / "rescued.sqlite") as r:
        assert r.check() == [] and consistent(r.arrays())
        assert r.count(example="151") == 1 and r.count(example="150") == 0


def test_salvage_leaves_a_second_record_with_a_copied_key_behind_and_says_so(tmp_path):
    path = make_store(tmp_path / "s.sqlite", 3)
    db = sqlite3.connect(path)
    db.execute("DROP INDEX IF EXISTS records_run_example")
    # A store whose unique index no longer guards it (as after damage): two rows, one key.
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET sql = replace(sql, 'UNIQUE (run, model, module, example, step, kind, params)', "
               "'CHECK (1)') WHERE name = 'records'")
    db.execute("DELETE FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_records%'")
    db.commit()
    db.close()
    db = sqlite3.connect(path)
    row = db.execute("SELECT * FROM records WHERE example = '1'").fetchone()
    cols = [c[1] for c in db.execute("PRAGMA table_info(records)")]
    db.execute(f"INSERT INTO records ({', '.join(cols[1:])}) VALUES ({', '.join('?' * (len(cols) - 1))})", row[1:])
    db.commit()
    db.close()
    report = salvage(path, tmp_path / "rescued.sqlite")
    assert (report.copied, report.lost) == (3, 1)
    assert "already copied" in report.dropped[0]


# --------------------------------------------------------------------------- damaged pages


def damage_page_holding(path: Path, value: float) -> None:
    """Overwrite the header of the page that holds the array filled with ``value``."""
    raw = bytearray(path.read_bytes())
    page = int.from_bytes(raw[16:18], "big")
    at = raw.find(np.full(480, value, np.float32).tobytes())
    assert at > 0
    start = (at // page) * page
    raw[start:start + 8] = b"\xff" * 8
    path.write_bytes(bytes(raw))


def test_reading_with_errors_warn_goes_around_a_damaged_page(tmp_path):
    path = make_store(tmp_path / "s.sqlite")
    damage_page_holding(path, 100.0)
    report = salvage(path, tmp_path / "rescued.sqlite")
    with Store(tmp_path / "rescued.sqlite") as r:
        rescued = {rec.example for rec in r.query()}
    assert N - 5 <= len(rescued) < N
    with Store(path) as s:
        with pytest.warns(RuntimeWarning, match="damaged page"):
            pairs = list(s.arrays(errors="warn"))
        assert {rec.example for rec, _ in pairs} == rescued and consistent(pairs)
        problems = s.check()
        assert problems and any("unreadable" in p or "malformed" in p for p in problems)
    out = tmp_path / "o.parquet"
    assert main(["export", str(path), str(out), "--skip-bad"]) == 0
    with Store(tmp_path / "back.sqlite") as b:
        assert b.import_parquet(out) == len(rescued)
    assert report.copied == len(rescued)


# --------------------------------------------------------------------------- salvage


def test_salvage_refuses_to_overwrite_and_fails_when_nothing_is_copied(tmp_path, capsys):
    path = make_store(tmp_path / "s.sqlite", 4)
    assert main(["salvage", str(path), str(path)]) == 2
    existing = tmp_path / "taken.sqlite"
    existing.write_bytes(b"keep")
    assert main(["salvage", str(path), str(existing)]) == 2
    assert existing.read_bytes() == b"keep"
    assert main(["salvage", str(path), str(existing), "--force"]) == 0
    with Store(existing) as s:
        assert len(s) == 4
    empty = tmp_path / "empty.sqlite"
    Store(empty).close()
    capsys.readouterr()
    assert main(["salvage", str(empty), str(tmp_path / "nothing.sqlite")]) != 0
    assert "no readable record" in capsys.readouterr().err
    assert not (tmp_path / "nothing.sqlite").exists()


# --------------------------------------------------------------------------- import


def bomb(path: Path, rows: int, row_bytes: int, bad_last: bool = False, row_group_size: int | None = None) -> Path:
    """A small zstd Parquet file of all-zero arrays that expands to ``rows * row_bytes``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = row_bytes // 4
    table = {
        "run": ["r"] * rows, "module": ["m"] * rows, "example": [str(i) for i in range(rows)],
        "dtype": ["float32"] * rows, "shape": [[n]] * rows, "data": [bytes(row_bytes)] * rows,
    }
    if bad_last:
        table["dtype"][-1] = "object"
    pq.write_table(pa.table(table), path, compression="zstd", row_group_size=row_group_size)
    return path


def test_parquet_import_is_capped_before_reading(tmp_path):
    big = bomb(tmp_path / "bomb.parquet", rows=40, row_bytes=1 << 20)
    assert big.stat().st_size < 100_000  # 40 MiB of arrays in a small file
    with Store(tmp_path / "s.sqlite") as s:
        with pytest.raises(StoreError, match="over the import limit of 4,000,000 bytes.*max-bytes"):
            s.import_parquet(big, max_bytes=4_000_000)
        assert len(s) == 0
        assert s.import_parquet(big, max_bytes=None) == 40  # the documented override
    assert 0 < DEFAULT_MAX_IMPORT_BYTES < 1 << 40


def test_parquet_import_counts_real_bytes_when_the_footer_understates_them(tmp_path, monkeypatch):
    import interp.store_parquet as store_parquet

    big = bomb(tmp_path / "bomb.parquet", rows=40, row_bytes=1 << 20)
    real_open = store_parquet._open_parquet

    class LyingFooter:
        """The file's row groups, with a footer that declares them empty."""

        def __init__(self, pf):
            self._pf, self.schema_arrow = pf, pf.schema_arrow
            self.metadata = type("M", (), {"num_row_groups": 1,
                                           "row_group": staticmethod(lambda i: type("R", (), {"total_byte_size": 0}))})

        def iter_batches(self, **kwargs):
            return self._pf.iter_batches(**kwargs)

    monkeypatch.setattr(store_parquet, "_open_parquet", lambda path: LyingFooter(real_open(path)))
    with Store(tmp_path / "s.sqlite") as s:
        with pytest.raises(StoreError, match="holds more than .* bytes of arrays, over the import limit"):
            s.import_parquet(big, max_bytes=4_000_000, batch_size=2)
        assert len(s) == 0


def test_cli_import_limit(tmp_path, capsys):
    big = bomb(tmp_path / "bomb.parquet", rows=8, row_bytes=1 << 20)
    store = str(tmp_path / "s.sqlite")
    assert main(["import", str(big), store, "--max-bytes", "1000000"]) == 2
    assert "import limit" in capsys.readouterr().err
    assert main(["import", str(big), store, "--max-bytes", "0"]) == 0


def test_a_failed_import_leaves_the_store_as_it_was(tmp_path):
    bad = bomb(tmp_path / "bad.parquet", rows=9, row_bytes=64, bad_last=True, row_group_size=2)
    with Store(tmp_path / "s.sqlite") as s:
        s.add(np.ones(3, np.float32), run="mine", module="m", example=0)
        with pytest.raises(CorruptRecordError, match="row 8: dtype 'object' is not allowed"):
            s.import_parquet(bad, batch_size=2)
        assert [r.run for r in s.query()] == ["mine"]


def test_import_of_a_file_that_is_not_parquet_says_so(tmp_path):
    path = make_store(tmp_path / "s.sqlite", 2)
    with Store(tmp_path / "t.sqlite") as t:
        with pytest.raises(StoreError, match="not a readable Parquet file"):
            t.import_parquet(path)
        with pytest.raises(StoreError, match="no such file"):
            t.import_parquet(tmp_path / "missing.parquet")


# --------------------------------------------------------------------------- locks


def test_a_locked_store_says_wait_not_salvage(tmp_path):
    path = make_store(tmp_path / "s.sqlite", 1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Store(path, timeout=0.05) as s, pytest.raises(StoreError) as info:
            s.add(np.ones(1, np.float32), run="r", module="m", example="new")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(info.value)
    assert "another process holds the store's write lock" in message and "salvage" not in message


# --------------------------------------------------------------------------- schema upgrade


def test_a_schema_1_store_is_upgraded_and_its_old_records_still_read(tmp_path):
    path = tmp_path / "old.sqlite"
    make_store(path, 3)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE records DROP COLUMN meta_crc32")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store(path, readonly=True) as ro:
        assert consistent(ro.arrays()) and ro.check() == []
    with Store(path) as s:
        s.add(np.full(2, 7, np.float32), run="r", module="m", example=7)
        assert s.info()["schema_version"] == 2
        assert [r.meta_crc32 is None for r in s.query()] == [True, True, True, False]
    report = salvage(path, tmp_path / "rescued.sqlite")
    assert report.copied == 4 and report.unverified == 3
