"""interp.store: round trips, queries, schema guard, no pickle, damage, concurrency, Parquet."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from interp.store import (
    ALLOWED_DTYPES,
    SCHEMA_VERSION,
    CorruptRecordError,
    Store,
    StoreError,
    decode_array,
    fingerprint,
    salvage,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "s.sqlite") as s:
        yield s


def fill(store, n=20, run="r", shape=(2, 3, 4)):
    rng = np.random.default_rng(0)
    arrays = [rng.random(shape, dtype=np.float32) for _ in range(n)]
    store.add_many(
        dict(array=a, run=run, module=f"m{i % 2}", example=i, step=i % 3, source=list("abcd"))
        for i, a in enumerate(arrays)
    )
    return arrays


# --------------------------------------------------------------------------- round trips


def test_float32_round_trip_is_bit_exact(store):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    a.flat[:6] = [np.inf, -np.inf, -0.0, np.finfo(np.float32).tiny / 2, np.nan, 1e-45]
    store.add(a, run="r", module="attn", example="x")
    back = store.one(example="x").array()
    assert back.dtype == np.float32 and back.shape == a.shape
    assert back.tobytes() == a.tobytes()


def test_float16_round_trip_within_rounding_and_other_dtypes(store):
    w = torch.softmax(torch.randn(4, 7, 9), -1)
    store.add(w.to(torch.float16), run="r", module="m", example=1)
    back = store.one(example=1)
    assert back.dtype == "float16"
    np.testing.assert_allclose(back.array().astype(np.float32), w.numpy(), rtol=2**-11, atol=2**-24)
    assert back.array().tobytes() == w.to(torch.float16).numpy().tobytes()
    bf = torch.randn(3, 5).to(torch.bfloat16)
    ints = np.arange(12, dtype=np.int64).reshape(3, 4)
    store.add(bf, run="r", module="m", example=2)
    store.add(ints, run="r", module="m", example=3)
    store.add(np.array([True, False]), run="r", module="m", example=4)
    store.add(np.zeros((0, 3), np.float64), run="r", module="m", example=5)
    store.add(np.float32(2.5), run="r", module="m", example=6)
    assert torch.equal(store.one(example=2).tensor(), bf)
    assert np.array_equal(store.one(example=3).array(), ints)
    assert store.one(example=4).array().tolist() == [True, False]
    assert store.one(example=5).array().shape == (0, 3)
    assert store.one(example=6).array().shape == () and store.one(example=6).array() == 2.5
    big_endian = np.arange(4, dtype=">f4")
    store.add(big_endian, run="r", module="m", example=7)
    assert store.one(example=7).array().tolist() == [0, 1, 2, 3]


def test_unstorable_values_are_refused_clearly(store):
    with pytest.raises(TypeError, match="dtype object"):
        store.add(np.array([{"a": 1}], dtype=object), run="r", module="m", example=1)
    with pytest.raises(TypeError, match="complex64"):
        store.add(torch.zeros(2, dtype=torch.complex64), run="r", module="m", example=1)
    with pytest.raises(TypeError, match="needs 'run'"):
        store.add_many([dict(array=np.zeros(1), module="m", example=1)])
    with pytest.raises(TypeError, match="unknown record fields"):
        store.add_many([dict(array=np.zeros(1), run="r", module="m", example=1, colour="red")])
    with pytest.raises(TypeError, match="not one string"):
        store.add(np.zeros(1), run="r", module="m", example=1, source="a b c")
    assert len(store) == 0  # failed batches leave nothing behind


def test_metadata_and_filters(store):
    fill(store)
    store.add(np.ones(3, np.float32), run="r2", module="m0", example=0, model="lstm",
              fingerprint="abc", kind="integrated_gradients", params={"n_steps": 50, "baseline": "pad"},
              target=["x", "y"])
    assert store.count() == 21
    assert store.count(run="r") == 20
    assert store.count(module="m0", run="r") == 10
    assert [r.example for r in store.query(example=[3, 5])] == ["3", "5"]
    assert store.count(step=[0, 1], run="r") == 14
    rec = store.one(kind="integrated_gradients", params={"n_steps": 50})
    assert rec.params == {"n_steps": 50, "baseline": "pad"} and rec.target == ["x", "y"]
    assert rec.model == "lstm" and rec.fingerprint == "abc" and rec.source is None
    assert store.count(params={"n_steps": 51}) == 0
    assert store.count(since=time.time() - 60) == 21 and store.count(until=0) == 0
    assert store.query(run="r", limit=3, order="id")[0].source == list("abcd")
    with pytest.raises(KeyError, match="several records"):
        store.one(run="r")
    with pytest.raises(KeyError, match="no record"):
        store.one(run="nope")
    with pytest.raises(TypeError, match="unknown filter 'colour'"):
        store.query(colour="red")
    df = store.to_pandas(run="r")
    assert len(df) == 20 and {"module", "example", "kind", "shape"} <= set(df.columns)
    assert {s["run"] for s in store.summary()} == {"r", "r2"}
    assert store.delete(run="r2") == 1 and store.count() == 20
    with pytest.raises(ValueError, match="at least one filter"):
        store.delete()


def test_query_is_lazy(store, monkeypatch):
    fill(store, n=5)
    loads = []
    original = Store._load
    monkeypatch.setattr(Store, "_load", lambda self, rec: loads.append(rec.id) or original(self, rec))
    recs = store.query(run="r")
    assert len(recs) == 5 and loads == []
    recs[2].array()
    assert loads == [recs[2].id]


def test_unique_key_prevents_duplicates(store):
    a = np.zeros((1, 2), np.float32)
    assert store.add(a, run="r", module="m", example=1) == 1
    assert store.add(a + 1, run="r", module="m", example=1) == 0
    assert store.one().array().sum() == 0
    assert store.add(a + 1, run="r", module="m", example=1, on_conflict="replace") == 1
    assert store.one().array().sum() == 2
    with pytest.raises(StoreError, match="same key"):
        store.add(a, run="r", module="m", example=1, on_conflict="raise")
    assert store.add(a, run="r", module="m", example=1, kind="saliency") == 1
    assert store.add(a, run="r", module="m", example=1, step=1) == 1


def test_fingerprint_follows_the_weights():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    b.load_state_dict(a.state_dict())
    assert fingerprint(a) == fingerprint(b) == fingerprint(a.state_dict())
    with torch.no_grad():
        b[0].weight[0, 0] += 1e-6
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a.to(torch.bfloat16)) != fingerprint(b)


# --------------------------------------------------------------------------- schema and opening


def test_schema_is_versioned_and_guards_newer_and_foreign_files(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert dict(db.execute("SELECT key, value FROM meta"))["format"] == "interp-store"
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer interp"):
        Store(path)

    foreign = tmp_path / "other.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE people (name TEXT)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not an interp store.*people"):
        Store(foreign)

    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="garbage.sqlite: not a readable interp store"):
        Store(garbage)
    with pytest.raises(StoreError, match="no such store"):
        Store(tmp_path / "missing.sqlite", readonly=True)
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


def test_readonly_store_refuses_writes(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        fill(s, n=2)
    with Store(path, readonly=True) as ro:
        assert len(ro) == 2
        with pytest.raises(StoreError, match="read-only"):
            ro.add(np.zeros(1), run="r", module="m", example=9)


# --------------------------------------------------------------------------- no pickle


def _plant(path, dtype, blob, shape):
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO records (run, module, example, dtype, shape, crc32, data, created) "
        "VALUES ('r', 'evil', ?, ?, ?, ?, ?, 0)",
        (f"{dtype}-{len(blob)}", dtype, json.dumps(shape), zlib.crc32(blob), blob),
    )
    db.commit()
    db.close()


class Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_planted_pickle_payloads_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        fill(s, n=3)
    payload = pickle.dumps(Payload())
    _plant(path, "object", payload, [1])
    _plant(path, "float32", payload, [2])

    def no_unpickling(*args, **kwargs):
        raise AssertionError("interp tried to unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "Unpickler", no_unpickling)
    monkeypatch.setattr(np, "load", lambda *a, **k: no_unpickling())
    with Store(path) as s:
        with pytest.raises(CorruptRecordError, match="dtype 'object' is not allowed.*never unpickles"):
            s.query(module="evil")[0].array()
        with pytest.raises(CorruptRecordError, match="look like a pickle payload"):
            s.query(module="evil")[1].array()
        good = list(s.arrays(errors="skip"))
        assert len(good) == 3  # the planted rows never take good records down
        with pytest.warns(RuntimeWarning) as warned:
            assert len(list(s.arrays(errors="warn"))) == 3
        assert len(warned) == 2 and "not allowed" in str(warned[0].message)
        problems = s.check()
        assert len(problems) == 2 and all("evil" in p for p in problems)
        s.export_parquet(tmp_path / "good.parquet", errors="skip")
    with Store(tmp_path / "copy.sqlite") as c:
        assert c.import_parquet(tmp_path / "good.parquet") == 3


def test_decode_array_validates_everything():
    assert set(ALLOWED_DTYPES) >= {"float16", "float32", "bfloat16"}
    with pytest.raises(CorruptRecordError, match="not a list of integers"):
        decode_array(b"", "float32", ["a"])
    with pytest.raises(CorruptRecordError, match="negative"):
        decode_array(b"", "float32", [-1])
    with pytest.raises(CorruptRecordError, match="8 bytes stored but dtype float32 shape \\[3\\] needs 12"):
        decode_array(b"\0" * 8, "float32", [3])
    out = decode_array(np.arange(3, dtype=np.float32).tobytes(), "float32", [3])
    assert out.tolist() == [0, 1, 2] and not out.flags.writeable


# --------------------------------------------------------------------------- damage


def test_one_corrupt_blob_does_not_take_good_records_down(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        arrays = fill(s, n=10)
    db = sqlite3.connect(path)
    blob = bytearray(db.execute("SELECT data FROM records WHERE example='4'").fetchone()[0])
    blob[5] ^= 0xFF
    db.execute("UPDATE records SET data=? WHERE example='4'", (bytes(blob),))
    db.execute("UPDATE records SET shape='not json' WHERE example='7'")
    db.commit()
    db.close()
    with Store(path) as s:
        with pytest.raises(CorruptRecordError, match=r"example='4'.*checksum mismatch"):
            s.one(example=4).array()
        ok = {int(r.example): a for r, a in s.arrays(errors="skip", example=[str(i) for i in range(7)])}
        assert sorted(ok) == [0, 1, 2, 3, 5, 6]
        assert all(np.array_equal(ok[i], arrays[i]) for i in ok)
        problems = s.check()
        assert any("example='4'" in p and "checksum mismatch" in p for p in problems)
        assert any("example='7'" in p and "metadata checksum mismatch" in p for p in problems)
        copied, lost = s.salvage(tmp_path / "rescued.sqlite")
    assert (copied, lost) == (8, 2)
    with Store(tmp_path / "rescued.sqlite") as r:
        assert r.check() == [] and len(r) == 8


def test_truncated_store_explains_and_salvage_keeps_what_survives(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.add_many(dict(array=np.full((4, 10, 12), i, np.float32), run="r", module="m", example=i)
                   for i in range(300))
    raw = path.read_bytes()
    cut = tmp_path / "cut.sqlite"
    cut.write_bytes(raw[: len(raw) // 2 + 123])
    try:
        with Store(cut) as damaged:  # SQLite may open it; then reading must still explain itself
            problems = damaged.check()
            assert problems
    except StoreError as exc:
        assert "cut.sqlite" in str(exc) and "salvage" in str(exc)
    copied, _ = salvage(cut, tmp_path / "rescued.sqlite")
    assert 50 < copied < 300
    with Store(tmp_path / "rescued.sqlite") as r:
        assert r.check() == []
        for rec, arr in r.arrays():
            assert np.all(arr == int(rec.example))
    with pytest.raises(StoreError, match="not a SQLite file"):
        salvage(Path(__file__), tmp_path / "x.sqlite")


# --------------------------------------------------------------------------- concurrency


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from interp.store import Store
    with Store(sys.argv[1], timeout=60) as s:
        for b in range(int(sys.argv[2])):
            s.add_many(dict(array=np.full((4, 8, 8), b, np.float32), run=sys.argv[3], module="m",
                            example=f"{b}-{i}") for i in range(10))
""")

def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def test_concurrent_writers_and_readers(tmp_path):
    """Two writer processes append while this process reads: readers never block writers, never
    see half a batch, and every array they load is whole."""
    path = str(tmp_path / "s.sqlite")
    Store(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, path, "20", f"w{i}"], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    counts, loaded = [], 0
    with Store(path, readonly=True) as reader:
        deadline = time.time() + 120
        while time.time() < deadline:
            n = reader.count()
            assert n % 10 == 0, n  # a batch is one transaction: never seen half-written
            counts.append(n)
            for rec, arr in reader.arrays(example=["0-0", "5-3", "19-9"]):
                assert arr.shape == (4, 8, 8) and np.all(arr == int(rec.example.split("-")[0]))
                loaded += 1
            if n >= 400 or all(w.poll() is not None for w in writers):
                break
            time.sleep(0.01)
    for w in writers:
        _, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
    assert counts == sorted(counts) and loaded > 0
    with Store(path) as s:
        assert s.count() == 400 and s.count(run="w1") == 200 and s.check() == []


# --------------------------------------------------------------------------- parquet


def test_parquet_round_trip_is_exact(tmp_path, store):
    import pyarrow.parquet as pq

    arrays = fill(store, n=7)
    store.add(torch.randn(2, 3).to(torch.bfloat16), run="bf", module="m", example=0,
              params={"n": 1}, target=["a"])
    assert store.export_parquet(tmp_path / "all.parquet", batch_size=3) == 8
    table = pq.read_table(tmp_path / "all.parquet")
    assert table.num_rows == 8 and {"run", "module", "example", "dtype", "shape", "values"} <= set(table.column_names)
    row = table.slice(0, 1).to_pylist()[0]
    assert np.array_equal(np.asarray(row["values"], row["dtype"]).reshape(row["shape"]), arrays[0])
    assert store.export_parquet(tmp_path / "m0.parquet", module="m0") == 4
    with Store(tmp_path / "b.sqlite") as b:
        assert b.import_parquet(tmp_path / "all.parquet") == 8
        assert b.import_parquet(tmp_path / "all.parquet") == 0  # idempotent
        for rec in store.query():
            twin = b.one(run=rec.run, module=rec.module, example=rec.example, step=rec.step)
            assert (twin.params, twin.source, twin.target, twin.dtype, twin.shape) == (
                rec.params, rec.source, rec.target, rec.dtype, rec.shape)
            assert twin.tensor().view(-1).view(torch.uint8).tolist() == rec.tensor().view(-1).view(torch.uint8).tolist()


def test_duckdb_reads_exported_attention(tmp_path, store):
    """The export is a table query tools read as is: aggregate attention over examples in SQL."""
    duckdb = pytest.importorskip("duckdb")
    weights = {}
    for example in range(4):
        for module in ("enc", "dec"):
            w = torch.rand(1, 3, 5, generator=torch.Generator().manual_seed(example)).softmax(-1)
            w = w * (2 if module == "dec" else 1)
            weights[module, example] = w
            store.add(w, run="r", module=module, example=example)
    path = tmp_path / "attention.parquet"
    store.export_parquet(path)
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT module, avg(list_max("values")) AS mean_peak, sum(len("values")) AS n
        FROM read_parquet('{path}') GROUP BY module ORDER BY module
    """).fetchall()
    for module, mean_peak, n in rows:
        expected = np.mean([weights[module, e].max().item() for e in range(4)])
        assert mean_peak == pytest.approx(expected, rel=1e-6) and n == 4 * 15
    assert [r[0] for r in rows] == ["dec", "enc"]
    # per key position across examples: unnest with the position
    first_key = con.execute(f"""
        SELECT avg(v) FROM (SELECT unnest("values") AS v, generate_subscripts("values", 1) AS i
                            FROM read_parquet('{path}') WHERE module = 'enc') WHERE (i - 1) % 5 = 0
    """).fetchall()[0][0]
    expected = torch.cat([weights["enc", e][..., 0].reshape(-1) for e in range(4)]).mean().item()
    assert first_key == pytest.approx(expected, rel=1e-6)


def test_import_reads_the_older_bytes_layout(tmp_path, store):
    import pyarrow as pa
    import pyarrow.parquet as pq

    w = torch.rand(2, 3)
    half = torch.rand(2, 2).to(torch.bfloat16)
    bits = half.reshape(-1).view(torch.int16).numpy().astype("<i2").tobytes()
    pq.write_table(pa.table({
        "run": ["old", "old"], "module": ["m", "h"], "example": ["0", "0"], "dtype": ["float32", "bfloat16"],
        "shape": [[2, 3], [2, 2]], "data": [w.numpy().astype("<f4").tobytes(), bits],
    }), tmp_path / "old.parquet")
    assert store.import_parquet(tmp_path / "old.parquet") == 2
    assert torch.equal(store.one(run="old", module="m").tensor(), w)
    assert torch.equal(store.one(run="old", module="h").tensor(), half)


def test_list_values_must_fit_their_dtype_and_shape(tmp_path, store):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def write(name, dtype, shape, values):
        pq.write_table(pa.table({"run": ["r"], "module": ["m"], "example": ["0"], "dtype": [dtype],
                                 "shape": [shape], "values": [values]}), tmp_path / name)
        return tmp_path / name

    with pytest.raises(CorruptRecordError, match="do not fill shape"):
        store.import_parquet(write("short.parquet", "float32", [2, 2], [0.1, 0.2, 0.3]))
    with pytest.raises(CorruptRecordError, match="not exactly representable as float32"):
        store.import_parquet(write("wide.parquet", "float32", [1], [0.1]))  # 0.1 is not a float32
    with pytest.raises(CorruptRecordError, match="not allowed"):
        store.import_parquet(write("obj.parquet", "object", [1], [1.0]))
    assert len(store) == 0
    big = 2 ** 60
    store.add(np.array([big], dtype=np.int64), run="r", module="ids", example=0)
    with pytest.raises(StoreError, match="2\\*\\*53"):
        store.export_parquet(tmp_path / "ids.parquet")
    assert not (tmp_path / "ids.parquet").exists()


def test_import_refuses_foreign_or_unsafe_parquet(tmp_path, store):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(StoreError, match="missing columns"):
        store.import_parquet(tmp_path / "foreign.parquet")
    pq.write_table(pa.table({"run": ["r"], "module": ["m"], "example": ["1"], "dtype": ["object"],
                             "shape": [[1]], "data": [pickle.dumps(Payload())]}), tmp_path / "evil.parquet")
    with pytest.raises(CorruptRecordError, match="evil.parquet: row 0: dtype 'object' is not allowed"):
        store.import_parquet(tmp_path / "evil.parquet")
    assert len(store) == 0


# --------------------------------------------------------------------------- one record definition


def test_every_layer_derives_from_one_record_definition(tmp_path):
    """The table, the reader, the Parquet columns and the writer's keywords all come from
    interp.store_record.FIELDS; the checksummed order is the one existing stores were written in."""
    import dataclasses

    import pyarrow as pa

    from interp import store_record
    from interp.store import StoredRecord
    from interp.store_parquet import arrow_schema

    assert store_record.CHECKED == (
        "run", "model", "fingerprint", "module", "example", "step", "kind", "params",
        "source", "target", "dtype", "shape", "crc32", "created",
    )
    record_fields = [f.name for f in dataclasses.fields(StoredRecord) if not f.name.startswith("_")]
    assert record_fields == list(store_record.METADATA)
    with Store(tmp_path / "s.sqlite") as s:
        s.add(torch.rand(2, 2), run="r", module="m", example=0)
    columns = [row[1] for row in sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA table_info(records)")]
    assert columns == ["id", *store_record.NAMES]
    parquet = arrow_schema(pa).names
    assert [n for n in parquet if n not in ("shape", "values")] == [
        f.name for f in store_record.FIELDS if f.arrow is not None]
    assert set(store_record.LABELS) <= set(parquet)
    add_keywords = set(inspect.signature(Store.add).parameters) - {"self", "array", "on_conflict"}
    assert add_keywords == set(store_record.LABELS)
    assert store_record.KEY == ("run", "model", "module", "example", "step", "kind", "params")
