"""The interp CLI under bad input: one ``error: ...`` line, non-zero exit, no traceback, and
stored text printed with its control characters escaped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from interp.__main__ import safe_text
from interp.store import Store

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), OMP_NUM_THREADS="1")
    env.pop("INTERP_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "interp", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    with Store(d / "s.sqlite") as s:
        s.add(np.ones((2, 2), np.float32), run="r", module="m", example="0")
    (d / "notes.txt").write_text("mine\n")
    (d / "folder").mkdir()
    torch.save([1, 2], d / "list.pt")
    (d / "pickle.pt").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01x\x94.")
    torch.save({"nope": torch.zeros(1)}, d / "other.pt")
    return d


CAPTURE = ["capture", "--model", "test_interp_models:make_seq2seq", "--data", "test_interp_models:batches",
           "--store", "c.sqlite", "--no-progress", "--modules", "attention"]

BAD_INPUTS = {
    "info of a missing store": ["info", "missing.sqlite"],
    "info of a directory": ["info", "folder"],
    "info of a text file": ["info", "notes.txt"],
    "ls of a text file": ["ls", "notes.txt"],
    "check of a missing store": ["check", "missing.sqlite"],
    "export onto itself": ["export", "s.sqlite", "s.sqlite"],
    "export over a user's file": ["export", "s.sqlite", "notes.txt"],
    "export into a directory": ["export", "s.sqlite", "folder"],
    "export into a missing folder": ["export", "s.sqlite", "no/such/dir/o.parquet"],
    "import of a missing file": ["import", "missing.parquet", "t.sqlite"],
    "import of a store as Parquet": ["import", "s.sqlite", "t.sqlite"],
    "import of a text file": ["import", "notes.txt", "t.sqlite"],
    "import into a text file": ["import", "s.sqlite", "notes.txt"],
    "import with a negative limit": ["import", "s.sqlite", "t.sqlite", "--max-bytes", "-5"],
    "salvage of a missing file": ["salvage", "missing.sqlite", "r.sqlite"],
    "salvage of a text file": ["salvage", "notes.txt", "r.sqlite"],
    "salvage onto itself": ["salvage", "s.sqlite", "s.sqlite"],
    "salvage over a user's file": ["salvage", "s.sqlite", "notes.txt"],
    "capture into a text file": [*CAPTURE[:5], "--store", "notes.txt", *CAPTURE[7:]],
    "capture with missing weights": [*CAPTURE, "--weights", "missing.pt"],
    "capture with pickled weights": [*CAPTURE, "--weights", "pickle.pt"],
    "capture with a list as weights": [*CAPTURE, "--weights", "list.pt"],
    "capture with weights of another model": [*CAPTURE, "--weights", "other.pt"],
    "capture with a directory as weights": [*CAPTURE, "--weights", "folder"],
    "capture with a bad module": ["capture", "--model", "test_interp_models:nope", "--data", "x:y", "--store", "c.sqlite"],
}


def run_main(args: list[str], cwd: Path, capsys, monkeypatch) -> tuple[int, str]:
    """``main(args)`` in ``cwd``: its exit status and what it printed to stderr."""
    from interp.__main__ import main

    monkeypatch.chdir(cwd)
    monkeypatch.syspath_prepend(str(TESTS))
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # a message carried by SystemExit is printed by Python
        code = 1 if isinstance(exc.code, str) else int(exc.code or 0)
        err = capsys.readouterr().err + (f"{exc.code}\n" if isinstance(exc.code, str) else "")
        return code, err
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_every_bad_input_gets_one_error_line(workdir, name, capsys, monkeypatch, recwarn):
    before = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file()}
    code, err = run_main(BAD_INPUTS[name], workdir, capsys, monkeypatch)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > 20, err
    assert not [w for w in recwarn if "weights_only" in str(w.message) or "pickle" in str(w.message)]
    after = {p.name: p.read_bytes() for p in workdir.iterdir() if p.is_file() and p.name in before}
    assert after == before  # nothing that existed was changed


def test_a_real_process_prints_one_line_and_no_traceback(workdir):
    for args in (["export", "s.sqlite", "s.sqlite"], [*CAPTURE, "--weights", "pickle.pt"]):
        done = run_cli(*args, cwd=workdir)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_stored_control_characters_are_escaped(tmp_path, capsys):
    from interp.__main__ import main

    hostile = "run\x1b[2J\x1b]0;owned\x07\u202eevil\nline"
    with Store(tmp_path / "s.sqlite") as s:
        s.add(np.ones(2, np.float32), run=hostile, module="m\r", example="e\t1")
    for command in (["ls", str(tmp_path / "s.sqlite")], ["info", str(tmp_path / "s.sqlite")]):
        assert main(command) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "\r" not in out
        assert "run\\x1b[2J" in out and "\\u202eevil\\x0aline" in out
    assert safe_text("plain text, ünïcode") == "plain text, ünïcode"
