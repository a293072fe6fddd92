"""Every lesson follows the course template (course/lessons/CONTRIBUTING.md, "The shape").

Goals first, a ``parameters`` cell, a diagram of the mechanism, training curves, heatmaps drawn
through the helpers that label them, two to four exercises with executed solutions in collapsed
cells (one breaks the mechanism and checks the claim fails), the claims in the last code cell and
a recap as the last cell. ``tests/test_project_files.py`` checks the rules every notebook shares
(executed top to bottom, size, nbval tags); ``tests/test_lesson_claims.py`` checks the claims.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).resolve().parents[1] / "course" / "lessons"
ALL_LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
LESSONS = [p for p in ALL_LESSONS if not p.name.startswith("00_")]
# Lessons that study trained models rather than introduce a mechanism draw no architecture.
NO_NEW_MECHANISM = {"15_is_attention_explanation", "16_real_translation"}
GOALS = "## What you will be able to do"
RECAP = "## Recap"
EXERCISES = "## Exercises"
EXERCISE = re.compile(r"^### Exercise (\d) \((predict|modify|measure|break it)\): \S")


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def images(cell: dict) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", ALL_LESSONS, ids=lambda p: p.stem)
def test_opens_with_goals_and_closes_with_a_recap(path):
    nb = cells(path)
    assert nb[0]["cell_type"] == "markdown" and text(nb[0]).startswith(f"# {path.name[:2]} · "), (
        f"{path.name}: the first cell must be the title '# {path.name[:2]} · ...'")
    goals = [c for c in nb[:3] if c["cell_type"] == "markdown" and GOALS in text(c)]
    assert goals, f"{path.name}: one of the first three cells must hold '{GOALS}'"
    bullets = [line for line in text(goals[0]).split(GOALS, 1)[1].splitlines() if line.startswith("- ")]
    assert 2 <= len(bullets) <= 5, f"{path.name}: the goals list two to five things, found {len(bullets)}"
    last = nb[-1]
    assert last["cell_type"] == "markdown" and text(last).lstrip().startswith(RECAP), (
        f"{path.name}: the last cell must be the '{RECAP}' (what the run showed)")
    body = text(last).split(RECAP, 1)[1].strip()
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", body) if s.strip()]
    assert 2 <= len(sentences) <= 6, f"{path.name}: the recap is two or three sentences, found {len(sentences)}"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_parameters_come_first_and_claims_come_last(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    assert "parameters" in tags(code[0]), f"{path.name}: the first code cell must be tagged 'parameters'"
    assert "claim(" in text(code[-1]), f"{path.name}: the last code cell must state the claims"
    assert not any("solution" in tags(c) for c in code[-1:]), f"{path.name}: claims come after the exercises"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_exercises_have_executed_hidden_solutions_and_one_breaks_the_mechanism(path):
    nb = cells(path)
    heads = [i for i, c in enumerate(nb) if c["cell_type"] == "markdown" and text(c).startswith(EXERCISES)]
    assert heads, f"{path.name}: no '{EXERCISES}' section"
    exercises = [i for i, c in enumerate(nb) if c["cell_type"] == "markdown" and text(c).startswith("### Exercise")]
    assert 2 <= len(exercises) <= 4, f"{path.name}: two to four exercises, found {len(exercises)}"
    kinds = []
    for number, i in enumerate(exercises, start=1):
        match = EXERCISE.match(text(nb[i]))
        assert match, (f"{path.name}: exercise heading {text(nb[i]).splitlines()[0]!r} must read "
                       f"'### Exercise N (predict|modify|measure|break it): ...'")
        assert int(match.group(1)) == number, f"{path.name}: exercises are numbered 1, 2, ... in order"
        assert i > heads[0], f"{path.name}: exercise {number} sits before the '{EXERCISES}' heading"
        kinds.append(match.group(2))
        solution = nb[i + 1] if i + 1 < len(nb) else {}
        assert solution.get("cell_type") == "code" and "solution" in tags(solution), (
            f"{path.name}: exercise {number} must be followed by its solution, a code cell tagged 'solution'")
        assert solution["metadata"].get("jupyter", {}).get("source_hidden") is True, (
            f"{path.name}: exercise {number}'s solution must be collapsed (metadata jupyter.source_hidden)")
        assert solution.get("execution_count"), f"{path.name}: exercise {number}'s solution was not executed"
        assert not any(o.get("output_type") == "error" for o in solution.get("outputs", [])), (
            f"{path.name}: exercise {number}'s solution raised")
        assert solution.get("outputs"), f"{path.name}: exercise {number}'s solution shows nothing"
        if match.group(2) == "break it":
            assert "holds(" in text(solution) and "assert not" in text(solution), (
                f"{path.name}: the break-it solution must check that a lesson claim fails "
                f"(assert not holds(value, op, threshold))")
    assert "break it" in kinds, f"{path.name}: one exercise must break the mechanism ('break it')"


@pytest.mark.parametrize("path", [p for p in LESSONS if p.stem not in NO_NEW_MECHANISM], ids=lambda p: p.stem)
def test_mechanism_lessons_draw_a_diagram_with_shapes(path):
    drawn = [c for c in cells(path) if c["cell_type"] == "code" and "diagram" in tags(c)]
    assert drawn, f"{path.name}: no code cell tagged 'diagram' (draw the mechanism with course.diagrams)"
    source = "".join(text(c) for c in drawn)
    assert "Diagram(" in source and re.search(r"\[[^\]]*,[^\]]*\]", source), (
        f"{path.name}: the diagram must be a course.diagrams.Diagram with tensor shapes on its arrows")
    assert any(role in source for role in ('"query"', '"key/value"', '"key"', '"value"')) or path.name.startswith("01_"), (
        f"{path.name}: the diagram must mark the query, key and value roles")
    assert sum(images(c) for c in drawn) >= 1, f"{path.name}: the diagram cell shows no figure"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_training_lessons_show_their_curves(path):
    curves = [c for c in cells(path) if c["cell_type"] == "code" and "training-curves" in tags(c)]
    assert curves, f"{path.name}: no code cell tagged 'training-curves'"
    assert all("plot_training(" in text(c) for c in curves), f"{path.name}: draw the curves with course.figures.plot_training"
    assert sum(images(c) for c in curves) >= 1, f"{path.name}: the training-curves cell shows no figure"


@pytest.mark.parametrize("path", ALL_LESSONS, ids=lambda p: p.stem)
def test_heatmaps_go_through_the_labelling_helpers(path):
    """Raw seaborn/matplotlib heatmaps skip the colour bar and axis labels; the helpers cannot."""
    for cell in cells(path):
        if cell["cell_type"] != "code":
            continue
        source = text(cell)
        assert "sns.heatmap(" not in source, (
            f"{path.name}: draw heatmaps with course.figures.heatmap / heatmap_panels (or interp.plot), "
            f"which label the axes and add a colour bar")
        if "imshow(" in source:
            assert "image-figure" in tags(cell), (
                f"{path.name}: imshow is for pictures (tag the cell 'image-figure'); draw attention "
                f"with course.figures.heatmap")
            assert "colorbar(" in source, f"{path.name}: an image with attention over it needs a colour bar"
        for cmap in re.findall(r"cmap\s*=\s*['\"]([\w_]+)['\"]", source):
            if cmap.removesuffix("_r") in {"RdBu", "coolwarm", "bwr", "seismic", "vlag", "icefire", "PiYG", "PRGn", "RdYlBu", "Spectral"}:
                assert "signed=True" in source or "attribution_heatmap" in source, (
                    f"{path.name}: diverging colour map {cmap!r} on a quantity not marked signed; "
                    f"use a sequential scale for weights and magnitudes")
