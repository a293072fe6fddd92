"""Per-epoch training time: the step-loop attention decoder against the teacher-forced parallel one.

Luong attention without input feeding lets the decoder LSTM run over the whole target at once and
attend for every step in one batched product. This script trains the *same* model (same weights,
same data, same batches) one epoch each way and prints the ratio; Bahdanau's decoder, which must
loop, is timed beside them. Run: ``python benchmarks/bench_decoders.py [--examples 3000]``.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from course.data.loaders import make_loader
from course.data.vocab import Vocab
from course.seq2seq import Seq2SeqConfig, build_seq2seq
from course.tasks import load_task
from course.training import sequence_loss


def one_epoch(model, batches, parallel: bool | None) -> float:
    """Seconds for one teacher-forced epoch (forward, backward, Adam step)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    start = time.perf_counter()
    for batch in batches:
        optimizer.zero_grad()
        memory = model.encode(batch.src, batch.src_lengths)
        if parallel is None:
            out = model.decoder(batch.tgt_in, memory)
        else:
            out = model.decoder(batch.tgt_in, memory, parallel=parallel)
        sequence_loss(out.logits, batch.tgt_out).backward()
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="best of N epochs per variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    pairs = load_task("reorder", "train")[: args.examples]
    src_vocab = Vocab.build([p["src"] for p in pairs])
    tgt_vocab = Vocab.build([p["tgt"] for p in pairs])
    batches = list(make_loader(pairs, src_vocab, tgt_vocab, args.batch_size,
                               bucket_by_length=True))
    config = dict(src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab),
                  hidden_size=args.hidden, embed_dim=64, attention_units=64)
    luong = build_seq2seq(Seq2SeqConfig(decoder="luong", **config))
    bahdanau = build_seq2seq(Seq2SeqConfig(decoder="bahdanau", **config))

    def best(model, parallel):
        return min(one_epoch(copy.deepcopy(model), batches, parallel) for _ in range(args.repeats))

    rows = [
        ("Luong, teacher-forced parallel", best(luong, True)),
        ("Luong, step loop (same weights)", best(luong, False)),
        ("Bahdanau, step loop (must loop)", best(bahdanau, None)),
    ]
    floor = rows[0][1]
    mean_tgt = sum(len(p["tgt"]) + 1 for p in pairs) / len(pairs)
    print(f"\n{len(pairs)} pairs of the bundled 'reorder' task, batch {args.batch_size}, hidden "
          f"{args.hidden}, mean target {mean_tgt:.1f} steps, {args.threads} threads, best of {args.repeats}\n")
    print("| decoder | seconds / epoch | ratio to parallel |")
    print("|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {seconds / floor:.1f}x |")
    print(f"\nparallel path speed-up over its own step loop: {rows[1][1] / floor:.1f}x")


if __name__ == "__main__":
    main()
