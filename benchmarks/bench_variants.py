"""Training speed of every attention variant, and the parallel Luong decoder against its step loop.

Run: ``python benchmarks/bench_variants.py [--examples 1024] [--repeats 3]`` (about 2 minutes on
one core). Everything is measured side by side in one run and printed as markdown tables:

1. Seconds per training epoch (forward, backward, Adam step) of every variant of the attention
   zoo on the same examples of the bundled ``reorder`` task, with the same sizes and batches,
   and the ratio to Bahdanau's attention; plus the time a full epoch of the task would take,
   to size a lesson's training budget.
2. The teacher-forced parallel Luong decoder (no input feeding: the LSTM runs over the whole
   target at once, every step attends in one batched product) against the same model, same
   weights and batches, driven through its Python step loop: the decoder alone (encoder states
   computed once; target: at least 5x faster) and the whole model, where the encoder's share,
   the same on both paths, caps the ratio; then the decoder's speed-up by target length.

Each timing is the median of ``--repeats`` interleaved rounds, so machine load hits every
variant alike; torch runs on one thread. Ratios, not absolute times, are the point.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course.data.batches import Batch
from course.data.loaders import make_loader  # noqa: E402
from course.data.vocab import Vocab  # noqa: E402
from course.seeding import seed_everything  # noqa: E402
from course.seq2seq import Seq2Seq, Seq2SeqConfig, build_seq2seq  # noqa: E402
from course.seq2seq.losses import Seq2SeqLoss  # noqa: E402
from course.tasks import load_task  # noqa: E402
from course.training import sequence_loss  # noqa: E402

VARIANTS: dict[str, dict] = {
    "plain (no attention)": dict(decoder="plain"),
    "Bahdanau (concat, softmax)": dict(decoder="bahdanau"),
    "Luong dot": dict(decoder="luong", score="dot", bidirectional=False),
    "Luong general": dict(decoder="luong", score="general"),
    "Luong concat": dict(decoder="luong", score="concat"),
    "Luong location": dict(decoder="luong", score="location", max_src_len=64),
    "Luong general + input feeding": dict(decoder="luong", score="general", input_feeding=True),
    "scaled dot": dict(decoder="luong", score="scaled_dot", bidirectional=False),
    "multi-head (4 heads)": dict(decoder="luong", score="multihead", heads=4),
    "cosine (content)": dict(decoder="luong", score="cosine"),
    "location-aware (Chorowski)": dict(decoder="bahdanau", score="location_aware"),
    "softmax, temperature 0.5": dict(decoder="bahdanau", temperature=0.5),
    "sparsemax": dict(decoder="luong", score="general", normalizer="sparsemax"),
    "entmax-1.5": dict(decoder="luong", score="general", normalizer="entmax15"),
    "hard, Gumbel straight-through": dict(decoder="luong", score="general", normalizer="hard_gumbel"),
    "hard, REINFORCE": dict(decoder="luong", score="general", normalizer="hard_reinforce"),
    "local-m (D=5)": dict(decoder="luong", score="general", window="local_m", window_half_width=5),
    "local-p (D=5)": dict(decoder="luong", score="general", window="local_p", window_half_width=5),
    "coverage (Bahdanau)": dict(decoder="bahdanau", coverage=True),
}
BASELINE = "Bahdanau (concat, softmax)"
SIZES = dict(embed_dim=32, hidden_size=64, attention_units=64)


def build(name_or_kwargs: str | dict, src_vocab: Vocab, tgt_vocab: Vocab) -> Seq2Seq:
    kwargs = VARIANTS[name_or_kwargs] if isinstance(name_or_kwargs, str) else name_or_kwargs
    seed_everything(0)
    return build_seq2seq(Seq2SeqConfig(len(src_vocab), len(tgt_vocab), **SIZES, **kwargs))


def epoch_seconds(model: Seq2Seq, batches: list[Batch], loss: Callable[[Seq2Seq, Batch], torch.Tensor]) -> float:
    """One training epoch: forward, backward, clipping and an Adam step per batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        loss(model, batch).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return time.perf_counter() - start


def decoder_seconds_on(model: Seq2Seq, batches: list[Batch], memories: list, parallel: bool) -> float:
    """Train the decoder alone on fixed encoder states: the part the parallel path changes."""
    optimizer = torch.optim.Adam(model.decoder.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for batch, memory in zip(batches, memories):
        optimizer.zero_grad()
        out = model.decoder(batch.tgt_in, memory, parallel=parallel)
        sequence_loss(out.logits, batch.tgt_out).backward()
        optimizer.step()
    return time.perf_counter() - start


def step_loop_loss(model: Seq2Seq, batch: Batch) -> torch.Tensor:
    """The Luong decoder forced through its step loop (what input feeding would require)."""
    memory = model.encode(batch.src, batch.src_lengths)
    out = model.decoder(batch.tgt_in, memory, parallel=False)
    return sequence_loss(out.logits, batch.tgt_out)


def parallel_loss(model: Seq2Seq, batch: Batch) -> torch.Tensor:
    memory = model.encode(batch.src, batch.src_lengths)
    out = model.decoder(batch.tgt_in, memory, parallel=True)
    return sequence_loss(out.logits, batch.tgt_out)


def median_rounds(jobs: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Run every job once per round, rounds interleaved; return each job's median."""
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(repeats):
        for name, job in jobs.items():
            times[name].append(job())
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1024, help="training examples per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)

    pairs = load_task("reorder", "train")
    full_size = len(pairs)
    pairs = pairs[: args.examples]
    src_vocab = Vocab.build([p["src"] for p in pairs])
    tgt_vocab = Vocab.build([p["tgt"] for p in pairs])
    batches = list(make_loader(pairs, src_vocab, tgt_vocab, batch_size=args.batch_size, shuffle=True,
                               generator=torch.Generator().manual_seed(0), bucket_by_length=True))
    models = {name: build(name, src_vocab, tgt_vocab) for name in VARIANTS}
    for model in models.values():  # warm-up: first calls allocate and dispatch slowly
        epoch_seconds(model, batches[:1], Seq2SeqLoss())
    jobs = {name: (lambda m=model: epoch_seconds(m, batches, Seq2SeqLoss())) for name, model in models.items()}
    seconds = median_rounds(jobs, args.repeats)

    mean_src = statistics.mean(len(p["src"]) for p in pairs)
    mean_tgt = statistics.mean(len(p["tgt"]) for p in pairs)
    print(f"## Seconds per epoch, every variant ({len(pairs)} reorder pairs, mean source {mean_src:.1f} / "
          f"target {mean_tgt:.1f} tokens, batch {args.batch_size}, embed {SIZES['embed_dim']}, "
          f"hidden {SIZES['hidden_size']}, median of {args.repeats}, 1 thread)\n")
    print(f"| variant | path | s / epoch | vs Bahdanau | s / full epoch ({full_size} pairs) |")
    print("|---|---|---:|---:|---:|")
    base = seconds[BASELINE]
    for name, value in seconds.items():
        decoder = models[name].decoder
        path = "parallel" if getattr(decoder, "can_run_parallel", False) or name.startswith("plain") else "step loop"
        print(f"| {name} | {path} | {value:.2f} | {value / base:.2f}x | {value * full_size / len(pairs):.0f} |")

    print("\n## Teacher-forced Luong (general score, no input feeding): parallel path vs step loop\n")
    model = build(dict(decoder="luong", score="general"), src_vocab, tgt_vocab)
    loop_model = build(dict(decoder="luong", score="general"), src_vocab, tgt_vocab)
    loop_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        model.eval()
        loop_model.eval()
        same = torch.allclose(parallel_loss(model, batches[0]), step_loop_loss(loop_model, batches[0]), atol=1e-5)
        memories = [model.encode(b.src, b.src_lengths) for b in batches]  # fixed encoder states

    def decoder_seconds(m: Seq2Seq, parallel: bool) -> float:
        return decoder_seconds_on(m, batches, memories, parallel)

    for m, fn in ((model, parallel_loss), (loop_model, step_loop_loss)):
        epoch_seconds(m, batches[:1], fn)
    timed = median_rounds({
        "decoder, parallel": lambda: decoder_seconds(model, True),
        "decoder, step loop": lambda: decoder_seconds(loop_model, False),
        "model, parallel": lambda: epoch_seconds(model, batches, parallel_loss),
        "model, step loop": lambda: epoch_seconds(loop_model, batches, step_loop_loss),
    }, args.repeats)
    print("| what is timed (one training epoch) | step loop s | parallel s | speed-up | target | met |")
    print("|---|---:|---:|---:|---:|:---:|")
    for what, target in (("decoder", 5.0), ("model", None)):
        loop, parallel = timed[f"{what}, step loop"], timed[f"{what}, parallel"]
        speedup = loop / parallel
        label = ("decoder (encoder states fixed)" if what == "decoder"
                 else "whole model (packed BiLSTM encoder included)")
        goal = f">= {target:.0f}x" if target else "-"
        met = ("yes" if speedup >= target else "NO") if target else "-"
        print(f"| {label} | {loop:.2f} | {parallel:.2f} | {speedup:.2f}x | {goal} | {met} |")
    print(f"\nSame loss on the first batch from both paths: {'yes' if same else 'NO'}. The encoder's "
          "forward and backward cost the same on both paths, so they bound the whole-model ratio.")

    print("\n## Parallel Luong decoder vs step loop by target length (decoder alone, per batch)\n")
    per_batch = {i: median_rounds({
        "parallel": lambda i=i: decoder_seconds_on(model, [batches[i]], [memories[i]], True),
        "step loop": lambda i=i: decoder_seconds_on(loop_model, [batches[i]], [memories[i]], False),
    }, args.repeats) for i in range(len(batches))}
    print("| target tokens in batch | batches | step loop s | parallel s | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for low, high in ((1, 12), (13, 24), (25, 10_000)):
        chosen = [i for i in per_batch if low <= batches[i].tgt_in.size(1) <= high]
        if not chosen:
            continue
        loop = sum(per_batch[i]["step loop"] for i in chosen)
        parallel = sum(per_batch[i]["parallel"] for i in chosen)
        label = f"{low}-{high}" if high < 10_000 else f">= {low}"
        print(f"| {label} | {len(chosen)} | {loop:.2f} | {parallel:.2f} | {loop / parallel:.1f}x |")

if __name__ == "__main__":
    main()
