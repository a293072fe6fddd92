"""How fast the explorer redraws after a control changes, against its targets.

Measures, in-process and without a browser (what a control change costs the kernel): the time
from setting a control to the new PNG/HTML being in the widget, for a 100 × 100 seq2seq heatmap
(uncached: each step is drawn for the first time; cached: revisited) and for a 1,000-token
classifier (heatmap folded into lines, token-highlight HTML). The seaborn static figure of the
same matrix is timed beside it, to show why the interactive path does not use it.

    python benchmarks/bench_widgets.py [--repeats 5]

Prints a table: measured (median ms), target, met?
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from interp.widgets import explore  # noqa: E402

torch.set_num_threads(1)


def _attention(rng: np.random.Generator, *shape: int) -> np.ndarray:
    w = rng.random(shape) ** 4
    return w / w.sum(-1, keepdims=True)


def _median_ms(fn: Callable[[int], None], repeats: int) -> float:
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n = 100
    tokens = [f"tok{i}" for i in range(n)]
    seq2seq = explore([{"source": tokens, "target": tokens, "attention": _attention(rng, n, n),
                        "attributions": {"ig": rng.normal(size=(n, n))}}])
    steps = iter(range(1, n))

    def step_uncached(_: int) -> None:
        seq2seq.controls["step"].value = next(steps)

    def step_cached(i: int) -> None:
        seq2seq.controls["step"].value = 1 + i % 5

    views = iter(["attribution", "difference", "rank", "attention"] * 10)

    def view_uncached(_: int) -> None:
        seq2seq.set(step=next(steps), view=next(views))  # a new state each time, one redraw

    long = 1000
    classifier = explore([{"source": [f"w{i}" for i in range(long)], "attention": _attention(rng, long),
                           "attributions": {"ig": rng.normal(size=long)}}])
    cls_views = iter(["attribution", "tokens", "attention"] * 20)

    def classifier_view(_: int) -> None:
        classifier._cache.clear()
        classifier.controls["view"].value = next(cls_views)

    def seaborn_figure(_: int) -> None:
        import io

        import matplotlib.pyplot as plt

        from interp import plot

        ax = plot.attention_heatmap(seq2seq.data.attention("0", "", "attention"), tokens, tokens)
        ax.figure.savefig(io.BytesIO(), format="png")
        plt.close(ax.figure)

    rows = [
        ("100×100 heatmap, step slider, uncached", _median_ms(step_uncached, args.repeats), 100.0),
        ("100×100 heatmap, step slider, cached", _median_ms(step_cached, args.repeats), 100.0),
        ("100×100, view switch (attribution/diff/rank), uncached", _median_ms(view_uncached, args.repeats), 100.0),
        ("1,000-token classifier, view switch, uncached", _median_ms(classifier_view, args.repeats), 250.0),
        ("seaborn static figure 100×100 (reference, not interactive)", _median_ms(seaborn_figure, 3), None),
    ]
    html_kb = len(classifier.tokens.value.encode()) / 1024
    png_kb = len(seq2seq.image.value) / 1024

    width = max(len(r[0]) for r in rows)
    print(f"{'redraw after a control change':<{width}}  {'median ms':>9}  {'target ms':>9}  met?")
    for name, ms, target in rows:
        met = "-" if target is None else ("yes" if ms < target else "NO")
        shown = "-" if target is None else f"< {target:.0f}"
        print(f"{name:<{width}}  {ms:>9.1f}  {shown:>9}  {met}")
    print(f"\nsizes: 100×100 PNG {png_kb:.0f} KiB; 1,000-token highlight HTML {html_kb:.0f} KiB "
          f"(median of {args.repeats} redraws; kernel side, without the browser's decode)")


if __name__ == "__main__":
    main()
