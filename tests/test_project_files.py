"""The project's own files agree with each other: environment.yml mirrors pyproject.toml, the
README's commands are the ones CI runs, and every lesson is committed executed and small."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def requirement_names(requirements: list[str]) -> dict[str, str]:
    out = {}
    for req in requirements:
        match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
        assert match, req
        out[match.group(1).lower().replace("_", "-")] = match.group(2).replace(" ", "")
    return out


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = requirement_names(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = requirement_names([r for r in pip_section if not r.startswith("-e")])
    assert listed == wanted, (
        "environment.yml and pyproject.toml disagree: "
        f"only in pyproject {sorted(set(wanted) - set(listed))}, "
        f"only in environment.yml {sorted(set(listed) - set(wanted))}, "
        f"different pins {sorted(k for k in set(wanted) & set(listed) if wanted[k] != listed[k])}"
    )


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh|console)\n(.*?)```", section, re.S)


def test_readme_has_exactly_two_commands_and_ci_runs_the_second():
    commands = readme_commands()
    assert len(commands) == 2, commands
    setup, test = (c.strip() for c in commands)
    assert "jupyter lab" in setup and "00_start_here.ipynb" in setup
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert "torch==2.13.0" in ci
    assert ci.index("torch==2.13.0") < ci.index("README_TEST_COMMAND")
    assert "README.md" in ci  # .ci/run reads the command from the README, so they cannot drift


def test_lessons_are_committed_executed_small_and_tagged():
    lessons = sorted((ROOT / "course" / "lessons").glob("[0-9][0-9]_*.ipynb"))
    assert lessons, "no lessons found"
    for path in lessons:
        assert path.stat().st_size < 1.5 * 2**20, f"{path.name} is over 1.5 MB"
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{path.name} is not executed"
        counts = [c["execution_count"] for c in code]
        assert counts == list(range(1, len(code) + 1)), f"{path.name} was not run top to bottom"
        tags = [t for c in code for t in c.get("metadata", {}).get("tags", [])]
        if not path.name.startswith("00_"):
            assert "parameters" in tags, f"{path.name} has no cell tagged 'parameters'"
        assert "nbval-check-output" in tags, f"{path.name} checks no output under nbval"
        last = "".join(code[-1]["source"])
        assert "claim(" in last or "assert" in last, f"{path.name}: the last cell must state the claims (claim())"


def test_both_course_maps_list_every_lesson():
    """The README's map links every lesson file, and lesson 00's map has a row for each."""
    lessons = sorted((ROOT / "course" / "lessons").glob("[0-9][0-9]_*.ipynb"))
    readme = (ROOT / "README.md").read_text()
    start = json.loads((ROOT / "course" / "lessons" / "00_start_here.ipynb").read_text())
    tour = "".join("".join(c["source"]) for c in start["cells"] if c["cell_type"] == "markdown")
    for path in lessons:
        number = path.name[:2]
        assert f"(course/lessons/{path.name})" in readme, f"README's course map does not link {path.name}"
        assert re.search(rf"^\| {number} \|", tour, re.M), f"lesson 00's course map has no row {number}"
