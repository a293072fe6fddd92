"""Run order for the whole suite: the lesson notebooks first, the longest first.

With ``pytest -n 2 --dist loadfile`` each notebook is one unit of work, handed out in collection
order. Starting the long notebooks first and filling the gaps with the many short unit-test files
keeps both workers busy to the end, instead of leaving one long lesson running alone.
The order uses the run times the claims runner recorded (course/lessons/claims.json).
"""

from __future__ import annotations

import json
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "course" / "lessons" / "claims.json"


def _recorded_seconds() -> dict[str, float]:
    try:
        results = json.loads(RECORDED.read_text())
    except (OSError, ValueError):
        return {}
    seconds = {}
    for lesson, entry in results.items():
        runs = [run.get("seconds") or 0.0 for run in entry.get("seeds", {}).values()]
        seconds[lesson] = max(runs, default=0.0)
    return seconds


def pytest_collection_modifyitems(session, config, items):
    seconds = _recorded_seconds()

    def key(item):
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            return (0, -seconds.get(path.stem, 0.0), str(path))
        return (1, 0.0, "")

    # sorted() is stable: unit tests keep their collection order, cells keep theirs within a notebook
    items[:] = sorted(items, key=key)
