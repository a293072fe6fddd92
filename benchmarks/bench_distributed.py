"""Sharded capture and attribution: throughput of 1 against 2 processes, and the merge's cost.

Run: ``python benchmarks/bench_distributed.py`` (about 3 minutes on 2 CPU cores;
``--capture-examples`` and ``--examples`` set the corpora). Everything is measured side by side in one run and printed as a markdown
table of ratios:

1. ``interp.capture_dataset`` over the corpus in one process, then as two ranks at once (each
   process one torch thread, each writing its own store). Goal on 2 cores: 2 processes at least
   1.7x the throughput of 1.
2. The same for ``interp.attribute_dataset`` with integrated gradients (20 steps).
3. ``interp.merge_stores`` of the two attribution shards, reported per 100,000 records.

Each configuration is timed inside the workers: the dataset loop, the longest worker (the goal
is read from this). The workers import torch and build the corpus first and start their loops
together, so one's start-up does not slow the other's loop. No numbers are asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import interp  # noqa: E402

PAD, VOCAB, LENGTH, BATCH = 0, 2000, 64, 32


class Classifier(nn.Module):
    """A BiLSTM with additive attention pooling, the kind of model the course builds."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, 64, padding_idx=PAD)
        self.lstm = nn.LSTM(64, 64, batch_first=True, bidirectional=True)
        self.attention = Pool(128)
        self.out = nn.Linear(128, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        states, _ = self.lstm(self.embedding(ids))
        context, _ = self.attention(states, ids != PAD)
        return self.out(context)


class Pool(nn.Module):
    """Additive attention pooling returning ``(context, weights)``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(size, 64), nn.Tanh(), nn.Linear(64, 1))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.score(states).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(-1)
        return (weights.unsqueeze(-1) * states).sum(1), weights


def make_model() -> Classifier:
    torch.manual_seed(0)
    return Classifier().eval()


def corpus(examples: int) -> list[dict]:
    """Deterministic batches of token ids with varied lengths."""
    g = torch.Generator().manual_seed(0)
    out = []
    for start in range(0, examples, BATCH):
        n = min(BATCH, examples - start)
        lengths = torch.randint(LENGTH // 2, LENGTH + 1, (n,), generator=g)
        ids = torch.randint(1, VOCAB, (n, LENGTH), generator=g)
        ids = ids.masked_fill(torch.arange(LENGTH)[None] >= lengths[:, None], PAD)
        out.append({"ids": [f"ex{start + i}" for i in range(n)], "inputs": ids, "lengths": lengths.tolist()})
    return out


def worker(job: str, rank: int, world: int, out: str, examples: int, start_at: float) -> None:
    torch.set_num_threads(1)
    model, data = make_model(), corpus(examples)
    # every worker starts its loop at the same moment, after all have imported and built their data
    time.sleep(max(0.0, start_at - time.time()))
    store = out if world > 1 else os.path.join(out, "one.sqlite")
    if job == "capture":
        report = interp.capture_dataset(model, data, store, run="bench", modules="attention", progress=False,
                                        rank=rank, world_size=world)
    else:
        report = interp.attribute_dataset(model, data, store, run="bench", method="integrated_gradients",
                                          pad_id=PAD, n_steps=20, progress=False, rank=rank, world_size=world)
    print(f"SECONDS {report.seconds}")


def run(job: str, world: int, out: str, examples: int) -> tuple[float, float]:
    """Seconds from launching ``world`` worker processes to the last one finishing, and the
    longest time a worker spent in the dataset loop (start-up and imports excluded)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    start = time.perf_counter()
    start_at = time.time() + 15  # time enough to import torch and build the corpus
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", job, "--rank", str(r), "--world", str(world),
                               "--out", out, "--examples", str(examples), "--start-at", str(start_at)],
                              env=env, stdout=subprocess.PIPE,
                              text=True) for r in range(world)]
    outputs = [p.communicate()[0] for p in procs]
    seconds = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise SystemExit(f"a {job} worker failed: exit codes {[p.returncode for p in procs]}")
    inner = max(float(line.split()[1]) for text in outputs for line in text.splitlines() if line.startswith("SECONDS"))
    return seconds, inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=3000, help="examples attributed")
    parser.add_argument("--capture-examples", type=int, default=12000, help="examples captured (capture is cheaper)")
    parser.add_argument("--worker", choices=("capture", "attribute"))
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rank, args.world, args.out, args.examples, args.start_at)
        return

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, examples of up to {LENGTH} tokens in batches of "
          f"{BATCH}, one torch thread per process\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for job, label, n in (("capture", "capture", args.capture_examples),
                              ("attribute", "IG attribution, 20 steps", args.examples)):
            one_dir, two_dir = os.path.join(tmp, f"{job}-1"), os.path.join(tmp, f"{job}-2")
            os.makedirs(one_dir)
            (_, one_inner), (_, two_inner) = run(job, 1, one_dir, n), run(job, 2, two_dir, n)
            rows.append((f"{label} of {n} examples: examples per second, 2 processes vs 1", n / two_inner,
                         n / one_inner, ">= 1.7x"))
            if job == "attribute":
                with interp.Store(os.path.join(one_dir, "one.sqlite"), readonly=True) as s:
                    records = len(s)
                start = time.perf_counter()
                report = interp.merge_stores(two_dir, os.path.join(tmp, "merged.sqlite"))
                merge_seconds = time.perf_counter() - start
                assert report.added == records, (report.added, records)
    print("| measurement | 2 processes | 1 process | ratio (2/1) | goal | met? |")
    print("|---|---|---|---|---|---|")
    for name, two, one, goal in rows:
        ratio = two / one
        met = "-" if goal == "report" else ("yes" if ratio >= 1.7 else "NO")
        print(f"| {name} | {two:.1f}/s | {one:.1f}/s | {ratio:.2f}x | {goal} | {met} |")
    per_100k = merge_seconds * 100_000 / records
    print(f"\nmerge: {records} records from 2 shards in {merge_seconds:.2f} s, "
          f"{per_100k:.1f} s per 100,000 records")


if __name__ == "__main__":
    main()
