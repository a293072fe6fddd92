"""``python -m course.claims``: run lessons over seeds, collect their claims, write CLAIMS.md.

Each lesson is executed with papermill (parameters injected into its ``parameters`` cell) once per
seed, in a fresh kernel, one thread per kernel. Every :func:`course.claims.claim` and
:func:`course.claims.finding` call is recorded through ``COURSE_CLAIMS_FILE``; the runner merges
the records into ``course/lessons/claims.json`` and renders ``course/lessons/CLAIMS.md`` from it.

``--broken`` runs each lesson's *broken-mechanism* configurations (:data:`BROKEN_RUNS`: the
mechanism the lesson is about, disabled through a parameter) and records which claims then fail,
the evidence that the claims can fail.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course.claims import FILE_VARIABLE, MODE_VARIABLE

LESSONS_DIR = Path(__file__).resolve().parent / "lessons"
RESULTS_NAME = "claims.json"
TABLE_NAME = "CLAIMS.md"
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class BrokenRun:
    """A lesson run with the mechanism it teaches disabled through its parameters."""

    label: str
    parameters: dict[str, Any] = field(default_factory=dict)


# The mechanism each demonstrated lesson is about, and the parameter that disables it.
BROKEN_RUNS: dict[str, list[BrokenRun]] = {
    "01_the_bottleneck": [BrokenRun("the bottleneck removed: the decoder reads every encoder state "
                                    "(Bahdanau attention)", {"BREAK": "attention"})],
    "02_bahdanau": [BrokenRun("uniform attention (every source state weighted 1/n)",
                              {"BREAK": "uniform"})],
    "04_scaled_and_multihead": [BrokenRun("uniform attention in all three models (the context is the mean "
                                          "of the encoder states)", {"BREAK": "uniform"})],
    "06_location_aware": [BrokenRun("location features removed (the location-aware model scores "
                                    "content only)", {"BREAK": "no_location"})],
    "07_hard_soft_sparse": [BrokenRun("uniform attention in every model (every source token weighted 1/n)",
                                      {"BREAK": "uniform"}),
                            BrokenRun("REINFORCE's leave-one-out baseline not subtracted (the advantage is the "
                                      "raw reward)", {"BREAK": "no_baseline"})],
    "09_attention_pooling": [BrokenRun("uniform attention pooling (the mean of the states)",
                                       {"BREAK": "uniform"})],
    "11_two_sequences": [BrokenRun("uniform attention in both attentive models (every hypothesis word "
                                   "reads the mean of the premise)", {"BREAK": "uniform"})],
    "10_hierarchical": [BrokenRun("uniform sentence attention in the attentive network (every sentence "
                                  "weighted 1/N; its word attention stays)", {"BREAK": "uniform"})],
    "12_multi_hop": [BrokenRun("uniform attention over the memories", {"BREAK": "uniform"})],
    "14_sequence_labelling": [BrokenRun("uniform self-attention in the tagger (every token reads the mean of "
                                        "the states)", {"BREAK": "uniform"})],
    "13_temporal_attention": [BrokenRun("uniform attention over the lags (the context is the mean of the "
                                        "window)", {"BREAK": "uniform"})],
    "15_is_attention_explanation": [BrokenRun("uniform attention in both models", {"BREAK": "uniform"})],
    "16_real_translation": [BrokenRun("uniform attention in both attention models (the context is the "
                                      "mean of the encoder states)", {"BREAK": "uniform"})],
    "17_structured_attention": [BrokenRun("the CRF's transitions frozen at zero (the segmentation layer "
                                          "becomes independent sigmoids)", {"BREAK": "independent"})],
    "20_do_we_need_the_lstm": [BrokenRun("uniform attention in the LSTM model and uniform cross-attention in the "
                                         "Transformer (every source token weighted 1/S)", {"BREAK": "uniform"})],
    "18_show_attend_tell": [BrokenRun("uniform attention over the image regions in every model (each word "
                                      "reads the mean annotation)", {"BREAK": "uniform"})],
    "19_pointer_generator": [BrokenRun("no copy path in the pointer-generator (p_gen forced to 1: it generates "
                                       "from the vocabulary only)", {"BREAK": "no_copy"})],
    "21_attention_memory": [BrokenRun("no chunking: the chunked additive score gets chunk_size=None and builds "
                                      "the whole [batch, queries, keys, units] tensor", {"BREAK": "no_chunking"})],
}


def lesson_paths(selection: list[str] | None = None) -> list[Path]:
    """Lessons chosen by number prefix, slug or file name; all lessons when none is given."""
    every = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return every
    chosen = []
    for item in selection:
        key = Path(item).stem
        hits = [p for p in every if p.stem == key or p.stem.startswith(key + "_") or p.stem.split("_")[0] == key]
        if not hits:
            raise SystemExit(f"error: no lesson matches {item!r}; lessons are "
                             f"{', '.join(p.stem for p in every)}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


def _execute(path: str, output: str, parameters: dict[str, Any], records: str, mode: str,
             inplace: bool, timeout: int) -> dict[str, Any]:
    """Run one notebook in a fresh kernel (in a worker process) and return what happened."""
    os.environ[FILE_VARIABLE] = records
    os.environ[MODE_VARIABLE] = mode
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    Path(records).write_text("")
    start = time.monotonic()
    error = None
    try:
        import papermill

        papermill.execute_notebook(path, output, parameters=parameters, cwd=str(Path(path).parent),
                                   kernel_name="python3", progress_bar=False, execution_timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - reported per run, the other runs go on
        lines = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:500]
    found = [json.loads(line) for line in Path(records).read_text().splitlines() if line.strip()]
    written = False
    if inplace and error is None and all(r["holds"] is not False for r in found):
        write_clean_copy(Path(output), Path(path))
        written = True
    return {"records": found, "error": error, "seconds": round(time.monotonic() - start, 1), "written": written}


def write_clean_copy(executed: Path, lesson: Path) -> None:
    """Write an executed notebook over the lesson without papermill's run metadata."""
    notebook = json.loads(executed.read_text())
    notebook["metadata"].pop("papermill", None)
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    tmp = lesson.with_suffix(".ipynb.tmp")
    tmp.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(lesson)


@contextmanager
def results_lock(directory: Path = LESSONS_DIR) -> Iterator[None]:
    """Serialise read-modify-write of claims.json between runners started side by side."""
    with open(directory / ".claims.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_results(directory: Path = LESSONS_DIR) -> dict[str, Any]:
    path = directory / RESULTS_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def save_results(results: dict[str, Any], directory: Path = LESSONS_DIR) -> None:
    path = directory / RESULTS_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    (directory / TABLE_NAME).write_text(render(results))


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}"


def render(results: dict[str, Any]) -> str:
    """CLAIMS.md from the merged results: per lesson, claims by seed, findings, broken runs."""
    out = ["# Lesson claims", "",
           "Generated by `python -m course.claims` from `claims.json`; do not edit by hand. Each lesson "
           "was executed once per seed in a fresh kernel with one thread. A **claim** is asserted in the "
           "lesson's last cell and must hold on every seed; a **finding** is seed-dependent, shown with its "
           "spread and never asserted. *Catches* names the broken mechanism the claim would expose; where a "
           "lesson has a broken-mechanism run, its result is listed under the lesson.", ""]
    for lesson in sorted(results):
        entry = results[lesson]
        seeds = sorted(entry.get("seeds", {}), key=int)
        out += [f"## {lesson}", ""]
        claims: dict[str, dict[str, Any]] = {}
        findings: dict[str, dict[str, float]] = {}
        for seed in seeds:
            run = entry["seeds"][seed]
            for rec in run["records"]:
                if rec["kind"] == "claim":
                    claims.setdefault(rec["name"], {"op": rec["op"], "threshold": rec["threshold"],
                                                    "breaks": rec["breaks"], "values": {}})
                    claims[rec["name"]]["values"][seed] = (rec["value"], rec["holds"])
                else:
                    findings.setdefault(rec["name"], {})[seed] = rec["value"]
        errors = [f"seed {s}: {entry['seeds'][s]['error']}" for s in seeds if entry["seeds"][s].get("error")]
        times = ", ".join(f"{entry['seeds'][s].get('seconds', 0):.0f} s" for s in seeds)
        if seeds:
            out.append(f"Wall-clock run time per seed ({', '.join(seeds)}): {times} (lessons ran side by side, "
                       "so these overstate a lesson's time alone).")
            out.append("")
        if not claims and not findings:
            out += [entry.get("note", "No claims: this lesson checks the environment only."), ""]
        if claims:
            head = "| claim | " + " | ".join(f"seed {s}" for s in seeds) + " | threshold | holds on all seeds | catches |"
            out += [head, "|" + "---|" * (len(seeds) + 4)]
            for name, c in claims.items():
                cells = []
                for s in seeds:
                    value = c["values"].get(s)
                    cells.append("missing" if value is None else _fmt(value[0]) + ("" if value[1] else " ✗"))
                held = all(c["values"].get(s, (None, False))[1] for s in seeds)
                out.append(f"| {name} | " + " | ".join(cells) + f" | {c['op']} {_fmt(c['threshold'])} | "
                           f"{'yes' if held else '**no**'} | {c['breaks']} |")
            out.append("")
        if findings:
            out += ["Seed-dependent findings (shown, not asserted):", "",
                    "| finding | " + " | ".join(f"seed {s}" for s in seeds) + " | spread |",
                    "|" + "---|" * (len(seeds) + 2)]
            for name, values in findings.items():
                present = [values[s] for s in seeds if s in values]
                spread = max(present) - min(present) if present else None
                out.append(f"| {name} | " + " | ".join(_fmt(values.get(s)) for s in seeds) + f" | {_fmt(spread)} |")
            out.append("")
        for label, broken in entry.get("broken", {}).items():
            failed = [r for r in broken["records"] if r["kind"] == "claim" and not r["holds"]]
            params = ", ".join(f"`{k} = {v!r}`" for k, v in broken["parameters"].items())
            out.append(f"Broken mechanism, {label} ({params}, seed {broken.get('seed', 0)}): "
                       + (f"{len(failed)} of {sum(r['kind'] == 'claim' for r in broken['records'])} claims fail: "
                          + "; ".join(f"{r['name']} {_fmt(r['value'])} (needs {r['op']} {_fmt(r['threshold'])})"
                                      for r in failed) if failed else "**no claim fails**")
                       + (f" (run error: {broken['error']})" if broken.get("error") else "") + ".")
            out.append("")
        if errors:
            out += ["Run errors: " + "; ".join(errors), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.claims", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter for every run (VALUE is a Python literal)")
    parser.add_argument("--broken", action="store_true", help="also run the broken-mechanism configurations")
    parser.add_argument("--broken-only", action="store_true", help="run only the broken-mechanism configurations")
    parser.add_argument("--inplace", action="store_true",
                        help="write the default-seed run back over the lesson (its committed outputs) "
                             "when every claim held")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run side by side (one thread each)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may run")
    parser.add_argument("--keep", type=Path, help="keep the executed copies in this folder")
    parser.add_argument("--render", action="store_true", help="only re-render CLAIMS.md from claims.json")
    parser.add_argument("--resume", action="store_true",
                        help="skip runs already recorded without error in claims.json (an interrupted run goes on)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs without executing them")
    args = parser.parse_args(argv)

    results = load_results()
    if args.render:
        save_results(results)
        print(f"wrote {LESSONS_DIR / TABLE_NAME}")
        return 0
    import ast

    overrides = {}
    for name, value in args.parameter:
        try:
            overrides[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            overrides[name] = value
    lessons = lesson_paths(args.lessons)
    jobs = []  # (lesson, key, parameters, inplace)
    for path in lessons:
        if not args.broken_only:
            for seed in args.seeds:
                inplace = args.inplace and seed == 0 and not overrides
                # the default seed runs with no injected parameters: the very run a reader makes
                params = {} if seed == 0 and not overrides else {**overrides, "SEED": seed}
                jobs.append((path, ("seed", str(seed)), params, inplace))
        if args.broken or args.broken_only:
            for run in BROKEN_RUNS.get(path.stem, []):
                jobs.append((path, ("broken", run.label), {**overrides, **run.parameters, "SEED": 0}, False))
    if args.resume:
        def done(path: Path, key: tuple[str, str]) -> bool:
            entry = results.get(path.stem, {}).get("seeds" if key[0] == "seed" else "broken", {}).get(key[1])
            return bool(entry) and entry.get("error") is None
        jobs = [job for job in jobs if not done(job[0], job[1])]
    if args.dry_run:
        for path, key, params, inplace in jobs:
            print(f"{path.stem}: {key[0]} {key[1]} {params}{' (in place)' if inplace else ''}")
        return 0
    keep = args.keep or Path(tempfile.mkdtemp(prefix="claims-"))
    keep.mkdir(parents=True, exist_ok=True)
    failed = 0
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {}
        for i, (path, key, params, inplace) in enumerate(jobs):
            out = keep / f"{path.stem}.{key[0]}-{i}.ipynb"
            records = keep / f"{path.stem}.{key[0]}-{i}.jsonl"
            mode = "record"  # every claim is recorded; an in-place copy is written only if all held
            futures[pool.submit(_execute, str(path), str(out), params, str(records), mode, inplace,
                                args.timeout)] = (path, key, params)
        for future in as_completed(futures):
            path, key, params = futures[future]
            outcome = future.result()
            bad = [r["name"] for r in outcome["records"] if r["kind"] == "claim" and not r["holds"]]
            with results_lock():
                results = load_results()  # another runner may have recorded other lessons meanwhile
                entry = results.setdefault(path.stem, {})
                if key[0] == "seed":
                    entry.setdefault("seeds", {})[key[1]] = outcome
                    failed += bool(bad or outcome["error"])
                else:
                    entry.setdefault("broken", {})[key[1]] = {
                        **outcome, "parameters": {k: v for k, v in params.items() if k != "SEED"},
                        "seed": params.get("SEED", 0)}
                save_results(results)
            print(f"{path.stem} {key[0]} {key[1]}: {outcome['seconds']:.0f} s, "
                  f"{len(outcome['records'])} records, failing: {bad or 'none'}"
                  + (f", error: {outcome['error']}" if outcome["error"] else ""), flush=True)
    print(f"wrote {LESSONS_DIR / TABLE_NAME}; executed copies in {keep}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
