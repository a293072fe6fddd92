"""Lesson claims: assert a finding and record it, so one runner can tabulate every seed.

A lesson's last cell states what the lesson taught as calls of :func:`claim`. Each call compares a
measured value with a threshold, prints one line, raises ``AssertionError`` when the claim fails,
and appends a JSON record to the file named by ``COURSE_CLAIMS_FILE`` when that variable is set
(the claims runner, ``python -m course.claims``, sets it). A finding that does not hold on every
seed is shown with :func:`finding` instead: recorded and printed, never asserted.

``COURSE_CLAIMS_MODE=record`` makes failing claims record instead of raise, so a run with a
mechanism disabled reports *every* claim it breaks rather than stopping at the first.
"""

from __future__ import annotations

import json
import math
import operator
import os
from dataclasses import asdict, dataclass
from typing import Any

FILE_VARIABLE = "COURSE_CLAIMS_FILE"
MODE_VARIABLE = "COURSE_CLAIMS_MODE"

OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class ClaimRecord:
    """One evaluated claim (or finding) as the runner stores it."""

    name: str
    value: float
    op: str | None
    threshold: float | None
    holds: bool | None
    breaks: str | None
    kind: str  # "claim" or "finding"


def _as_float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"claim {name!r}: the measured value must be a number, got {value!r}") from None
    return number


def _record(record: ClaimRecord) -> None:
    path = os.environ.get(FILE_VARIABLE)
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(record)) + "\n")


def claim(name: str, value: Any, op: str, threshold: float, *, breaks: str, why: str = "") -> bool:
    """Assert ``value op threshold`` and record it.

    ``name`` is a short literal naming the finding (the runner and the tests key on it);
    ``breaks`` names the broken mechanism this claim would catch (for example "uniform
    attention"); ``why`` is added to the failure message. A NaN value never holds.
    """
    if op not in OPERATORS:
        raise ValueError(f"claim {name!r}: op must be one of {sorted(OPERATORS)}, got {op!r}")
    if not breaks:
        raise ValueError(f"claim {name!r}: say which broken mechanism it catches (breaks=...)")
    number = _as_float(name, value)
    holds = not math.isnan(number) and OPERATORS[op](number, threshold)
    _record(ClaimRecord(name, number, op, float(threshold), holds, breaks, "claim"))
    print(f"claim {'holds' if holds else 'FAILS'}: {name}: {number:.4g} {op} {threshold:g}")
    if not holds and os.environ.get(MODE_VARIABLE, "assert") != "record":
        raise AssertionError(f"claim {name!r} failed: measured {number:.4g}, expected {op} {threshold:g}. {why}".strip())
    return holds


def holds(value: Any, op: str, threshold: float) -> bool:
    """Whether ``value op threshold`` holds, without recording or asserting anything.

    For exercises that break a mechanism and check that a lesson's claim would then fail
    (``assert not holds(broken_value, ">=", 0.9)``); a NaN never holds.
    """
    if op not in OPERATORS:
        raise ValueError(f"op must be one of {sorted(OPERATORS)}, got {op!r}")
    number = _as_float("holds", value)
    return not math.isnan(number) and OPERATORS[op](number, threshold)


def finding(name: str, value: Any) -> float:
    """Record and print a seed-dependent measurement: shown with its spread, never asserted."""
    number = _as_float(name, value)
    _record(ClaimRecord(name, number, None, None, None, None, "finding"))
    print(f"finding (seed-dependent, not asserted): {name}: {number:.4g}")
    return number


if __name__ == "__main__":
    import sys

    from course.claims_runner import main

    sys.exit(main())
