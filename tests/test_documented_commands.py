"""Every ``python -m course...`` / ``python -m interp...`` command the lessons and READMEs tell a
reader to type exists: it is run with ``--help`` (which parses the subcommand and its fixed
arguments), and corpus names given to ``course.datasets download`` are checked against the list."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course.datasets.sources import SOURCES

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "interp" / "README.md", ROOT / "data" / "README.md",
        *sorted((ROOT / "course" / "lessons").glob("[0-9][0-9]_*.ipynb"))]
OURS = ("course", "interp")


def prose(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text()


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) for each of our ``python -m`` commands inside backticks or code blocks."""
    found = []
    for path in DOCS:
        text = prose(path)
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
        inline = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        for line in lines + inline:
            for part in re.split(r"&&|;", " ".join(line.split())):
                match = re.search(r"python -m\s+((?:course|interp)[\w.]*)((?:\s+[^\s#`\[\]|]+)*)", part)
                if match:
                    found.append((path.name, [match.group(1), *match.group(2).split()]))
    unique = {}
    for where, argv in found:  # one run per distinct command
        unique.setdefault(tuple(argv), (where, argv))
    return list(unique.values())


COMMANDS = documented_commands()


def test_commands_were_found():
    assert len(COMMANDS) >= 5, COMMANDS


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[f"{w}: {' '.join(a)}" for w, a in COMMANDS])
def test_documented_command_parses(where, argv):
    module, *args = argv
    assert module.split(".")[0] in OURS
    result = subprocess.run([sys.executable, "-m", module, *args, "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, f"{where}: `python -m {' '.join(argv)}` is not a valid command:\n{result.stderr[-800:]}"
    if module == "course.datasets" and args[:1] == ["download"]:
        names = [a for a in args[1:] if not a.startswith("-")]
        unknown = [n for n in names if n not in SOURCES]
        assert not unknown, f"{where}: `python -m {' '.join(argv)}` names unknown corpora {unknown}; known: {sorted(SOURCES)}"
