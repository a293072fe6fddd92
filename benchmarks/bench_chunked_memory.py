"""Peak memory of additive attention computed in chunks of queries against computed whole.

Run: ``python benchmarks/bench_chunked_memory.py [--chunks 4 8]`` (about a minute on one core).

The additive score ``v^T tanh(W_q q + W_k k)`` builds a ``[batch, queries, keys, units]`` tensor:
at batch 8, 512 queries, 4096 keys and 256 units that is 8 * 512 * 4096 * 256 float32 numbers,
about 17 GB. ``AdditiveScore(chunk_size=c)`` scores ``c`` queries at a time (and, under autograd,
recomputes each chunk in the backward pass instead of keeping it). Target: chunked attention at
that size peaks under 512 MB, for inference and for a training step.

The whole computation cannot be run at that size, so it is measured at 4, 8 and 16 queries, a
line is fitted through the peaks and extrapolated to 512 queries (the tensor grows linearly with
the queries). Each measurement runs in a fresh child process: torch's CPU allocator is invisible
to ``tracemalloc``, so the child reports its peak resident memory (``VmHWM``) after the run minus
the peak before it (model, inputs and imports already in place).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course.memory import fit_line, peak_rss_bytes  # noqa: E402

BATCH, KEYS, UNITS, QUERIES = 8, 4096, 256, 512
SMALL_QUERIES = (4, 8, 16)
MB = 1_000_000  # decimal megabytes, as in the target


def child(spec: dict) -> dict:
    """Run one attention call as ``spec`` says and report the peak memory it added."""
    import torch

    from course.attention import AdditiveScore, Attention

    torch.set_num_threads(1)
    torch.manual_seed(0)
    training = spec["mode"] == "training"
    attention = Attention(AdditiveScore(UNITS, UNITS, UNITS, chunk_size=spec["chunk_size"]))
    query = torch.randn(BATCH, spec["queries"], UNITS, requires_grad=training)
    keys = torch.randn(BATCH, KEYS, UNITS, requires_grad=training)
    mask = torch.ones(BATCH, KEYS, dtype=torch.bool)
    mask[:, KEYS // 2:] = torch.arange(BATCH).unsqueeze(1) % 2 == 0  # half the rows padded
    with torch.set_grad_enabled(training):  # warm-up at a tiny size: dispatch tables, thread pools
        attention(query[:1, :1], keys[:1, :8], mask=mask[:1, :8]).context.sum()
    before = peak_rss_bytes()
    with torch.set_grad_enabled(training):
        out = attention(query, keys, mask=mask)
        if training:
            out.context.square().sum().backward()
        checksum = float(out.context.sum())
    return {"peak_bytes": peak_rss_bytes() - before, "checksum": checksum}


def measure(mode: str, queries: int, chunk_size: int | None) -> int:
    spec = {"mode": mode, "queries": queries, "chunk_size": chunk_size}
    result = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_bytes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, nargs="+", default=[4, 8], help="chunk sizes (queries) to measure")
    parser.add_argument("--modes", nargs="+", default=["inference", "training"], choices=["inference", "training"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    full_tensor = BATCH * QUERIES * KEYS * UNITS * 4
    print(f"## Peak memory of additive attention: batch {BATCH}, {QUERIES} queries, {KEYS} keys, "
          f"{UNITS} units (the whole [B, Q, K, U] tensor alone: {full_tensor / MB:,.0f} MB)\n")
    print("| mode | computed | queries | peak MB | vs whole at 512 queries | target | met |")
    print("|---|---|---:|---:|---:|---:|:---:|")
    for mode in args.modes:
        small = [measure(mode, q, None) for q in SMALL_QUERIES]
        slope, intercept, _ = fit_line(list(SMALL_QUERIES), small)
        whole = slope * QUERIES + intercept
        for q, peak in zip(SMALL_QUERIES, small):
            print(f"| {mode} | whole | {q} | {peak / MB:,.0f} | | | |")
        print(f"| {mode} | whole (extrapolated) | {QUERIES} | {whole / MB:,.0f} | 1.00x | | |")
        for chunk in args.chunks:
            peak = measure(mode, QUERIES, chunk)
            met = "yes" if peak < 512 * MB else "NO"
            print(f"| {mode} | chunks of {chunk} queries | {QUERIES} | {peak / MB:,.0f} | "
                  f"{peak / whole:.3f}x | < 512 MB | {met} |")
    print("\nPeaks are resident memory added by the call (VmHWM after minus before), one child process each; "
          "'whole' at 512 queries is a least-squares line through the small runs.")


if __name__ == "__main__":
    main()
