"""interp.shard: which rank takes which batch, per-rank stores, and merging them back into one."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
import torch
from test_interp_models import batches, make_seq2seq

import interp
from interp.__main__ import main
from interp.batch import capture_dataset
from interp.shard import MergeError, Shard, merge_stores, rank_store_path, shard_from_environment
from interp.store import Store


def records(path):
    """Every record of a store as {key: (labels, raw array bytes, dtype, shape)}."""
    out = {}
    with Store(path, readonly=True) as s:
        for rec, _ in s.arrays():
            key = (rec.run, rec.model, rec.module, rec.example, rec.step, rec.kind)
            raw = rec.tensor().contiguous().view(-1).view(torch.uint8).tolist()
            out[key] = (rec.fingerprint, rec.source, rec.target, rec.params, rec.dtype, rec.shape, raw)
    return out


def test_every_batch_goes_to_exactly_one_rank_and_always_the_same():
    ids = [[f"doc{i}-{j}" for j in range(4)] for i in range(400)]
    for world in (2, 3, 5):
        owners = [[r for r in range(world) if Shard(r, world).owns(b)] for b in ids]
        assert all(len(o) == 1 for o in owners)
        counts = [sum(o == [r] for o in owners) for r in range(world)]
        assert min(counts) > 0.6 * len(ids) / world  # roughly balanced
        again = [[r for r in range(world) if Shard(r, world).owns(b)] for b in ids]
        assert owners == again  # the split depends on the ids only
    assert Shard(0, 1).owns(["anything"])
    with pytest.raises(ValueError, match="rank"):
        Shard(2, 2)


def test_the_shard_comes_from_arguments_process_group_or_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert shard_from_environment() == Shard(0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert shard_from_environment() == Shard(1, 3)
    assert shard_from_environment(0, 1) == Shard(0, 1)  # explicit wins
    with pytest.raises(ValueError, match="both"):
        shard_from_environment(rank=1)


def test_shards_merge_into_exactly_the_single_process_run(tmp_path):
    model = make_seq2seq()
    data = batches(n=12)
    capture_dataset(model, data, tmp_path / "single.sqlite", run="r", progress=False, rank=0, world_size=1)
    reports = [capture_dataset(model, data, tmp_path / "out", run="r", progress=False, rank=r, world_size=2)
               for r in range(2)]
    assert [rep.batches + rep.other_ranks for rep in reports] == [12, 12]
    assert sum(rep.batches for rep in reports) == 12 and min(rep.batches for rep in reports) > 0
    assert rank_store_path(tmp_path / "out", 0).is_file() and rank_store_path(tmp_path / "out", 1).is_file()
    merged = merge_stores(tmp_path / "out", tmp_path / "merged.sqlite")
    single = records(tmp_path / "single.sqlite")
    assert merged.added == len(single) and merged.duplicates == 0
    assert records(tmp_path / "merged.sqlite") == single  # labels and array bytes, record for record

    # merging again, or a copy of a shard among the sources, adds nothing
    again = merge_stores(tmp_path / "out", tmp_path / "merged.sqlite")
    assert again.added == 0 and again.duplicates == len(single)
    shutil.copy(rank_store_path(tmp_path / "out", 0), tmp_path / "copy.sqlite")
    dup = merge_stores([rank_store_path(tmp_path / "out", 0), tmp_path / "copy.sqlite"], tmp_path / "m2.sqlite")
    assert dup.duplicates == dup.records // 2 and dup.added == dup.records // 2


def test_a_rank_relaunched_after_a_partial_run_resumes_without_duplicates(tmp_path):
    model = make_seq2seq()
    data = batches(n=10)
    capture_dataset(model, data[:4], tmp_path / "out", run="r", progress=False, rank=1, world_size=2)
    first = len(Store(rank_store_path(tmp_path / "out", 1), readonly=True))
    report = capture_dataset(model, data, tmp_path / "out", run="r", progress=False, rank=1, world_size=2)
    mine = [b for b in data if Shard(1, 2).owns(b["ids"])]
    assert report.skipped_batches == sum(Shard(1, 2).owns(b["ids"]) for b in data[:4])
    assert report.batches + report.skipped_batches == len(mine)
    with Store(rank_store_path(tmp_path / "out", 1), readonly=True) as s:
        assert len(s) == first + report.records_written
        assert s.examples(run="r") == {i for b in mine for i in b["ids"]}


def test_sharded_runs_refuse_one_shared_file_and_mixed_models(tmp_path):
    model = make_seq2seq()
    with pytest.raises(ValueError, match="one store per rank"):
        capture_dataset(model, batches(n=2), tmp_path / "one.sqlite", run="r", progress=False, rank=0, world_size=2)
    capture_dataset(model, batches(n=6), tmp_path / "a", run="r", progress=False, rank=0, world_size=2)
    capture_dataset(make_seq2seq(seed=1), batches(n=6), tmp_path / "a", run="r", progress=False, rank=1, world_size=2)
    with pytest.raises(MergeError, match="different weight fingerprints"):
        merge_stores(tmp_path / "a", tmp_path / "m.sqlite")
    assert not (tmp_path / "m.sqlite").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(MergeError, match="no rank-NNNNN"):
        merge_stores(tmp_path / "empty", tmp_path / "m.sqlite")
    with pytest.raises(MergeError, match="no such store"):
        merge_stores(tmp_path / "missing.sqlite", tmp_path / "m.sqlite")


def test_merge_reports_a_schema_mismatch_before_writing(tmp_path):
    model = make_seq2seq()
    capture_dataset(model, batches(n=4), tmp_path / "out", run="r", progress=False, rank=0, world_size=2)
    capture_dataset(model, batches(n=4), tmp_path / "out", run="r", progress=False, rank=1, world_size=2)
    old = rank_store_path(tmp_path / "out", 1)
    db = sqlite3.connect(old)
    db.execute("PRAGMA user_version = 1")  # as an older interp wrote it
    db.commit()
    db.close()
    with pytest.raises(MergeError, match="different schema versions"):
        merge_stores(tmp_path / "out", tmp_path / "m.sqlite")
    assert not (tmp_path / "m.sqlite").exists()


def test_merge_on_the_command_line(tmp_path, capsys):
    model = make_seq2seq()
    for r in range(2):
        capture_dataset(model, batches(n=6), tmp_path / "out", run="r", progress=False, rank=r, world_size=2)
    assert main(["merge", str(tmp_path / "out"), str(tmp_path / "m.sqlite")]) == 0
    assert "records added" in capsys.readouterr().out
    for r in range(2):  # a second run in another folder: both folders merge in one command
        capture_dataset(model, batches(n=6), tmp_path / "more", run="r2", progress=False, rank=r, world_size=2)
    assert main(["merge", str(tmp_path / "out"), str(tmp_path / "more"), str(tmp_path / "both.sqlite")]) == 0
    with Store(tmp_path / "both.sqlite") as s:
        assert {row["run"] for row in s.summary()} == {"r", "r2"} and len(s) == 2 * 24
    assert interp.merge_stores is merge_stores


def test_torchrun_two_processes_then_merge_equals_one_process(tmp_path):
    """The README's commands: torchrun runs one capture per rank into a folder; merge joins them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]), "OMP_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    common = ["--model", "test_interp_models:make_seq2seq", "--data", "test_interp_models:batches",
              "--run-name", "r", "--no-progress"]
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "interp", "capture", "--store", str(tmp_path / "out"), *common],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "left to other ranks" in run.stdout
    single = subprocess.run([sys.executable, "-m", "interp", "capture", "--store", str(tmp_path / "one.sqlite"),
                             *common], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert single.returncode == 0, single.stderr[-2000:]
    assert main(["merge", str(tmp_path / "out"), str(tmp_path / "merged.sqlite")]) == 0
    assert records(tmp_path / "merged.sqlite") == records(tmp_path / "one.sqlite")


# --------------------------------------------------------------------------- attribution over a dataset


def test_attribute_dataset_sharded_equals_one_process(tmp_path):
    from interp.batch import attribute_dataset

    from interp_toy_models import classifier_batches, make_classifier

    model, data = make_classifier(), classifier_batches(n=10)
    one = attribute_dataset(model, data, tmp_path / "one.sqlite", run="ig", pad_id=0, n_steps=8, progress=False)
    assert one.batches == 10 and one.records_written == 40
    for r in range(2):
        attribute_dataset(model, data, tmp_path / "out", run="ig", pad_id=0, n_steps=8, progress=False,
                          rank=r, world_size=2)
    merge_stores(tmp_path / "out", tmp_path / "merged.sqlite")
    assert records(tmp_path / "merged.sqlite") == records(tmp_path / "one.sqlite")
    with Store(tmp_path / "one.sqlite") as s:
        rec = s.one(example="doc5")
        assert rec.kind == "integrated_gradients" and rec.params["n_steps"] == 8
        assert rec.shape == (1, len(rec.source))  # cut to the real tokens
        expected = interp.attribute(model, data[1]["inputs"], "ig", pad_id=0, n_steps=8, lengths=data[1]["lengths"])
        torch.testing.assert_close(rec.tensor()[0], expected.scores[1, : len(rec.source)])
    again = attribute_dataset(model, data, tmp_path / "one.sqlite", run="ig", pad_id=0, n_steps=8, progress=False)
    assert again.skipped_batches == 10 and again.records_written == 0


def test_a_killed_rank_relaunched_resumes_its_shard_without_duplicates(tmp_path):
    """SIGKILL one rank of a two-rank `python -m interp attribute` run mid-way; its store stays
    sound with whole batches only, the other rank's shard is untouched, and relaunching the same
    command completes every shard: the merge equals a one-process run."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from interp.batch import attribute_dataset

    from interp_toy_models import classifier_batches, make_classifier

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "interp", "attribute", "--model", "interp_toy_models:make_classifier",
               "--data", "interp_toy_models:slow_classifier_batches", "--store", str(tmp_path / "out"),
               "--run-name", "ig", "--method", "saliency", "--pad-id", "0", "--no-progress"]
    procs = [subprocess.Popen(command, env={**env, "RANK": str(r), "WORLD_SIZE": "2"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for r in range(2)]
    victim = rank_store_path(tmp_path / "out", 1)
    try:
        deadline = time.time() + 120
        seen = 0
        while time.time() < deadline and procs[1].poll() is None:
            if victim.exists():
                try:
                    with Store(victim, readonly=True) as s:
                        seen = s.count()
                except Exception:  # noqa: BLE001 - being created right now
                    seen = 0
                if seen >= 12:
                    break
            time.sleep(0.02)
        assert procs[1].poll() is None, procs[1].communicate()[1]
        os.kill(procs[1].pid, signal.SIGKILL)
        procs[1].communicate(timeout=60)
        out0, err0 = procs[0].communicate(timeout=180)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert procs[1].returncode == -signal.SIGKILL and procs[0].returncode == 0, err0[-2000:]
    with Store(victim) as s:
        assert s.check() == [] and s.count() % 4 == 0 and 12 <= s.count()
        kept = s.count()
    relaunch = subprocess.run(command, env={**env, "RANK": "1", "WORLD_SIZE": "2"}, capture_output=True,
                              text=True, timeout=240)
    assert relaunch.returncode == 0, relaunch.stderr[-2000:]
    assert f"{kept // 4} batches already stored" in relaunch.stdout
    attribute_dataset(make_classifier(), classifier_batches(n=60), tmp_path / "one.sqlite", run="ig",
                      method="saliency", pad_id=0, model_name="AttnClassifier", progress=False)
    report = merge_stores(tmp_path / "out", tmp_path / "merged.sqlite")
    assert report.duplicates == 0
    assert records(tmp_path / "merged.sqlite") == records(tmp_path / "one.sqlite")


def test_a_failing_rank_names_itself_and_its_log_and_leaves_the_others_intact(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "interp", "attribute", "--model", "interp_toy_models:make_classifier",
               "--data", "interp_toy_models:batches_with_a_broken_one", "--store", str(tmp_path / "out"),
               "--run-name", "s", "--method", "saliency", "--pad-id", "0", "--no-progress"]
    runs = [subprocess.run(command, env={**env, "RANK": str(r), "WORLD_SIZE": "2"}, capture_output=True,
                           text=True, timeout=240) for r in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr[-2000:]
    assert runs[1].returncode != 0
    log = tmp_path / "out" / "rank-00001.log"
    assert "rank 1 of 2 failed" in runs[1].stderr and str(log) in runs[1].stderr
    assert "integer token ids" in runs[1].stderr and "integer token ids" in log.read_text()
    from interp_toy_models import batches_with_a_broken_one

    owned = [b for b in batches_with_a_broken_one() if Shard(0, 2).owns(b["ids"])]
    with Store(rank_store_path(tmp_path / "out", 0), readonly=True) as s:
        assert s.check() == [] and s.examples(run="s") == {i for b in owned for i in b["ids"]}
    with Store(rank_store_path(tmp_path / "out", 1), readonly=True) as s:
        assert s.check() == [] and s.count() % 4 == 0  # whole batches, up to the failure


def test_a_partitioned_export_is_one_table_for_duckdb(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    model = make_seq2seq()
    for r in range(2):
        capture_dataset(model, batches(n=6), tmp_path / "out", run="r", progress=False, rank=r, world_size=2)
    merge_stores(tmp_path / "out", tmp_path / "m.sqlite")
    with Store(tmp_path / "m.sqlite") as s:
        s.add(torch.rand(3, 3), run="other", module="enc", example="x")
        total = len(s)
        assert s.export_parquet(tmp_path / "ds", partition_by=("run", "module")) == total
        with pytest.raises(interp.StoreError, match="not an empty folder"):
            s.export_parquet(tmp_path / "ds", partition_by=("run", "module"))
        with pytest.raises(ValueError, match="cannot partition by"):
            s.export_parquet(tmp_path / "ds2", partition_by=("values",))
        expected = {(rec.run, rec.module): 0 for rec in s.query()}
        for rec, arr in s.arrays():
            expected[rec.run, rec.module] += arr.size
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["run=other", "run=r"]
    rows = duckdb.connect().execute(f"""
        SELECT run, module, count(*) AS records, sum(len("values")) AS numbers
        FROM read_parquet('{tmp_path / "ds"}/**/*.parquet', hive_partitioning = true)
        GROUP BY run, module ORDER BY run, module
    """).fetchall()
    assert sum(r[2] for r in rows) == total
    assert {(r[0], r[1]): r[3] for r in rows} == expected
    assert main(["export", str(tmp_path / "m.sqlite"), str(tmp_path / "ds"), "--partition", "--force"]) == 0


def test_an_initialised_gloo_process_group_sets_the_shard(tmp_path):
    """Inside a user's own torch.distributed program (gloo, 2 processes), capture_dataset takes
    its rank and world size from the process group, with no arguments."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    script = tmp_path / "job.py"
    script.write_text(
        "import sys\n"
        "import torch.distributed as dist\n"
        "from test_interp_models import batches, make_seq2seq\n"
        "import interp\n"
        "dist.init_process_group('gloo')\n"
        "report = interp.capture_dataset(make_seq2seq(), batches(n=8), sys.argv[1], run='r', progress=False)\n"
        "print(f'rank {dist.get_rank()}: {report.batches} batches, {report.other_ranks} to others')\n"
        "dist.barrier()\n"
        "dist.destroy_process_group()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests.parent), str(tests)]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    assert rank_store_path(tmp_path / "out", 0).is_file() and rank_store_path(tmp_path / "out", 1).is_file()
    capture_dataset(make_seq2seq(), batches(n=8), tmp_path / "one.sqlite", run="r", progress=False,
                    rank=0, world_size=1)
    merge_stores(tmp_path / "out", tmp_path / "m.sqlite")
    assert records(tmp_path / "m.sqlite") == records(tmp_path / "one.sqlite")
