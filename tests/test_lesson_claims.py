"""Each lesson's claim cell, the committed claims.json and CLAIMS.md agree, and the claims can fail.

``python -m course.claims`` regenerates claims.json and CLAIMS.md by running the lessons over
seeds 0, 1 and 2; these tests catch a lesson whose claims changed without that rerun.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from course.claims_runner import BROKEN_RUNS, LESSONS_DIR, load_results, render

LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
SEEDS = ("0", "1", "2")
CLAIM_FREE = {"00_start_here"}  # the environment check asserts, but states no finding


def claim_names(path: Path) -> list[str]:
    """The literal names of the claim() calls in a lesson's last code cell."""
    notebook = json.loads(path.read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    tree = ast.parse("".join(code[-1]["source"]))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
            first = node.args[0] if node.args else None
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{path.name}: claim names must be string literals (the runner and CLAIMS.md key on them)")
            names.append(first.value)
    return names


@pytest.fixture(scope="module")
def results():
    return load_results()


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_claim_cell_matches_recorded_claims_on_every_seed(path, results):
    names = claim_names(path)
    if path.stem in CLAIM_FREE:
        assert not names
        return
    assert names, f"{path.name}: the last cell states no claim() (use course.claims.claim)"
    assert len(set(names)) == len(names), f"{path.name}: two claims share a name"
    assert path.stem in results, f"{path.stem} is missing from claims.json: run python -m course.claims {path.stem[:2]}"
    seeds = results[path.stem].get("seeds", {})
    for seed in SEEDS:
        assert seed in seeds, f"{path.stem}: no run for seed {seed} in claims.json"
        run = seeds[seed]
        assert run.get("error") is None, f"{path.stem} seed {seed} failed to run: {run['error']}"
        recorded = [r["name"] for r in run["records"] if r["kind"] == "claim"]
        assert sorted(recorded) == sorted(names), (
            f"{path.stem} seed {seed}: claim cell and claims.json disagree; only in the cell "
            f"{sorted(set(names) - set(recorded))}, only recorded {sorted(set(recorded) - set(names))}")
        failing = [r["name"] for r in run["records"] if r["kind"] == "claim" and not r["holds"]]
        assert not failing, f"{path.stem}: claims fail on seed {seed}: {failing}"
        assert all(r["breaks"] for r in run["records"] if r["kind"] == "claim")


def test_every_lesson_is_in_claims_md(results):
    assert sorted(results) == sorted(p.stem for p in LESSONS), "claims.json and the lessons differ"
    table = (LESSONS_DIR / "CLAIMS.md").read_text()
    assert table == render(results), "CLAIMS.md was edited by hand or not regenerated: python -m course.claims --render"


@pytest.mark.parametrize("lesson", sorted(BROKEN_RUNS))
def test_broken_mechanism_makes_a_claim_fail(lesson, results):
    broken = results.get(lesson, {}).get("broken", {})
    assert broken, f"{lesson}: no broken-mechanism run recorded (python -m course.claims {lesson[:2]} --broken-only)"
    for label, run in broken.items():
        claims = [r for r in run["records"] if r["kind"] == "claim"]
        assert claims, f"{lesson} ({label}): the broken run recorded no claims ({run.get('error')})"
        assert any(not r["holds"] for r in claims), f"{lesson}: no claim fails with {label}"
