"""interp.batch and the CLI: dataset capture into a store, trimming, resume, SIGKILL, commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from test_interp_models import batches, make_seq2seq, toy_batch
from torch import nn

import interp
from interp.__main__ import main
from interp.batch import ShapeMismatchError, capture_dataset
from interp.store import Store, fingerprint

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_capture_dataset_writes_one_trimmed_record_per_module_and_example(tmp_path):
    model, data = make_seq2seq(), batches(3)
    report = capture_dataset(model, data, tmp_path / "s.sqlite", run="r1", modules="attention",
                             progress=False)
    assert (report.batches, report.examples, report.records_written) == (3, 12, 12)
    with Store(tmp_path / "s.sqlite") as s:
        assert s.count(run="r1") == 12
        rec = s.one(run="r1", example="ex1")
        b = data[0]
        assert rec.source == b["source"][1] and rec.target == b["target"][1]
        assert rec.shape == (len(b["target"][1]), len(b["source"][1]))  # [tgt 4, src 5]
        assert rec.model == "Seq2Seq" and rec.fingerprint == fingerprint(model)
        assert rec.module == "attention" and rec.kind == "attention" and rec.step == 0
        with interp.capture(model, "attention") as cap, torch.no_grad():
            model(*b["inputs"])
        expected = cap["attention"][1, : rec.shape[0], : rec.shape[1]]
        assert rec.array().tobytes() == expected.numpy().tobytes()


def test_resume_skips_stored_batches_and_never_duplicates(tmp_path):
    path = tmp_path / "s.sqlite"
    capture_dataset(make_seq2seq(), batches(3), path, run="r", modules="attention", progress=True)
    again = capture_dataset(make_seq2seq(), batches(3), path, run="r", modules="attention", progress=False)
    assert (again.skipped_batches, again.batches, again.records_written) == (3, 0, 0)
    with Store(path) as s:
        s.delete(run="r", example="ex5")
    partial = capture_dataset(make_seq2seq(), batches(3), path, run="r", modules="attention",
                              progress=False, dtype=torch.float16)
    assert (partial.skipped_batches, partial.batches, partial.records_written) == (2, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # records that already exist are no reason to warn
        forced = capture_dataset(make_seq2seq(), batches(3), path, run="r", modules="attention",
                                 progress=False, resume=False)
    assert (forced.batches, forced.records_written) == (3, 0)
    with Store(path) as s:
        assert s.count() == 12 and s.one(example="ex5").dtype == "float16"


def test_self_attention_trimmed_on_both_axes_per_example(tmp_path):
    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1).eval()
    lengths = [5, 3]
    x = torch.randn(2, 5, 8)
    pad = torch.arange(5)[None] >= torch.tensor(lengths)[:, None]
    batch = {"ids": [0, 1], "inputs": {"src": x, "src_key_padding_mask": pad},
             "source": [list("abcde"), list("abc")]}
    capture_dataset(enc, [batch], tmp_path / "s.sqlite", run="r", progress=False)
    with Store(tmp_path / "s.sqlite") as s:
        assert s.one(example=1).shape == (2, 3, 3)  # [heads, q, k], padding cut away
        assert s.one(example=0).shape == (2, 5, 5)


def test_weights_that_disagree_with_tokens_or_ids_are_errors(tmp_path):
    model = make_seq2seq()
    bad = toy_batch()
    bad["source"][2] = bad["source"][2] + ["x"] * 9
    with pytest.raises(ShapeMismatchError, match=r"module 'attention', example 'ex2': weights have 6 keys "
                                                 r"but the source has \d+ tokens"):
        capture_dataset(model, [bad], tmp_path / "s.sqlite", run="r", modules="attention", progress=False)
    few = toy_batch()
    few["ids"] = few["ids"][:3]
    few["source"] = few["source"][:3]
    few["target"] = few["target"][:3]
    with pytest.raises(ShapeMismatchError, match="produced weights for 4 examples but the batch has 3 ids"):
        capture_dataset(model, [few], tmp_path / "s.sqlite", run="r", modules="attention", progress=False)
    with pytest.raises(TypeError, match="batch 0: expected a mapping with 'ids'"):
        capture_dataset(model, [(1, 2)], tmp_path / "s.sqlite", run="r", modules="attention", progress=False)
    dup = toy_batch()
    dup["ids"] = ["a", "a", "b", "c"]
    with pytest.raises(ValueError, match="duplicate example ids"):
        capture_dataset(model, [dup], tmp_path / "s.sqlite", run="r", modules="attention", progress=False)
    with Store(tmp_path / "s.sqlite") as s:
        assert len(s) == 0  # nothing half-written


def test_nan_is_refused_and_unmasked_padding_warns_with_run_module_and_example(tmp_path):
    class Leaky(nn.Module):
        nan = False

        def forward(self, x):
            w = torch.full((x.shape[0], 1, 4), 0.25)
            if self.nan:
                w[1, 0, 0] = float("nan")
            return x, w

    model = nn.Sequential(Leaky())
    batch = {"ids": ["a", "b"], "inputs": torch.zeros(2, 3), "source": [list("xyzw"), list("xy")]}
    with pytest.warns(RuntimeWarning) as warned:
        capture_dataset(model, [batch], tmp_path / "s.sqlite", run="r", modules="0", progress=False)
    messages = [str(w.message) for w in warned]
    assert any("example 'b'" in m and "past the source's 2 tokens" in m for m in messages)
    model[0].nan = True  # NaN weights are not attention: refused before anything is stored
    with pytest.raises(interp.InvalidWeightsError, match=r"'0' \(Leaky\).*not finite"):
        capture_dataset(model, [batch], tmp_path / "n.sqlite", run="r", modules="0", progress=False)


def test_cli_capture_and_inspection_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(TESTS))
    store = str(tmp_path / "s.sqlite")
    assert main(["capture", "--model", "test_interp_models:make_seq2seq", "--data",
                 "test_interp_models:batches", "--store", store, "--modules", "attention",
                 "--run", "cli", "--dtype", "float16", "--no-progress"]) == 0
    assert "6 batches captured (24 examples, 24 records written)" in capsys.readouterr().out
    assert main(["info", store]) == 0
    out = capsys.readouterr().out
    assert "24 records" in out and "| cli | Seq2Seq |" in out
    assert main(["ls", store, "--example", "ex3"]) == 0
    assert "cli\tattention\tex3" in capsys.readouterr().out
    assert main(["check", store]) == 0
    assert main(["export", store, str(tmp_path / "x.parquet"), "--run", "cli"]) == 0
    assert main(["import", str(tmp_path / "x.parquet"), str(tmp_path / "t.sqlite")]) == 0
    assert "imported 24 new records" in capsys.readouterr().out
    assert main(["modules", "--model", "test_interp_models:make_seq2seq"]) == 0
    assert "* attention\tAdditive" in capsys.readouterr().out
    assert main(["salvage", store, str(tmp_path / "r.sqlite")]) == 0
    # bad input exits with a message, not a traceback
    assert main(["capture", "--model", "test_interp_models:make_seq2seq", "--data",
                 "test_interp_models:batches", "--store", store, "--modules", "atention"]) == 2
    assert "closest: attention" in capsys.readouterr().err
    (tmp_path / "junk.sqlite").write_bytes(b"junk" * 1000)
    with pytest.raises(SystemExit, match="not a readable interp store"):
        main(["info", str(tmp_path / "junk.sqlite")])
    with pytest.raises(SystemExit, match="has no attribute 'nope'"):
        main(["modules", "--model", "test_interp_models:nope"])
    with pytest.raises(SystemExit, match="package.module:attribute"):
        main(["modules", "--model", "no_colon"])


def test_sigkill_mid_capture_loses_at_most_the_batch_in_flight(tmp_path):
    """A real `python -m interp capture` process is killed with SIGKILL while writing; the store
    opens, is sound, holds only whole batches, and a resumed capture completes it exactly."""
    store = tmp_path / "s.sqlite"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(TESTS), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "interp", "capture", "--model", "test_interp_models:make_seq2seq",
         "--data", "test_interp_models:slow_batches", "--store", str(store), "--modules", "attention",
         "--run", "killed", "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    observed = 0
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if store.exists():
                try:
                    with Store(store, readonly=True) as s:
                        observed = s.count()
                except Exception:  # noqa: BLE001 - the writer may be creating the file right now
                    observed = 0
                if observed >= 8:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, proc.communicate()[1]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Store(store) as s:
        assert s.check() == []
        after = s.count()
        assert observed <= after < 160 and after % 4 == 0  # whole batches only
        for _, arr in s.arrays():
            assert np.isfinite(arr).all()
    report = capture_dataset(make_seq2seq(), batches(40), store, run="killed", modules="attention",
                             model_name="Seq2Seq", progress=False)
    assert report.skipped_batches == after // 4 and report.records_written == 160 - after
    with Store(store) as s:
        assert s.count() == 160 and len({r.example for r in s.query()}) == 160


def test_explorer_from_memory_and_from_a_store_show_the_same_cells(tmp_path):
    """One trimming rule: examples_from_batch cuts like capture_dataset (padded queries too)."""
    from interp.explorer_data import StoreData, examples_from_batch

    torch.manual_seed(0)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1).eval()
    lengths = [5, 3]
    x = torch.randn(2, 5, 8)
    pad = torch.arange(5)[None] >= torch.tensor(lengths)[:, None]
    source = [list("abcde"), list("abc")]
    capture_dataset(enc, [{"ids": [0, 1], "inputs": {"src": x, "src_key_padding_mask": pad}, "source": source}],
                    tmp_path / "s.sqlite", run="r", progress=False)
    with interp.capture(enc) as cap:
        enc(x, src_key_padding_mask=pad)
    memory = examples_from_batch(cap, source=source, run="r")
    with Store(tmp_path / "s.sqlite") as s:
        stored = StoreData(s)
        for i, ex in enumerate(memory):
            for module, weights in ex["attention"].items():
                from_store = stored.attention(str(i), "r", module)
                assert weights.shape == from_store.shape == (2, lengths[i], lengths[i])
                np.testing.assert_allclose(weights, from_store, rtol=1e-6, atol=1e-7)
