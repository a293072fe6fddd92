"""Static figures for papers and lesson prose: seaborn heatmaps of attention and attributions,
the two side by side on one colour scale (or as ranks), per-head grids and token highlighting.

Each function takes one example's arrays (attention ``[(heads,) queries, keys]``, attribution
``[src]`` or ``[tgt, src]``), tensors or numpy, plus tokens for the tick labels, and returns the
matplotlib ``Axes`` or ``Figure`` so a caller can adjust it; :func:`save` writes PNG and SVG.
For the interactive explorer see :mod:`interp.widgets` (faster renderer, same conventions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from .render import _numpy, as_matrix, rank_rows, row_distribution, tick_labels

__all__ = [
    "attention_heatmap",
    "attribution_heatmap",
    "compare_heatmaps",
    "head_grid",
    "save",
    "token_highlight",
]


def _figure_size(n_rows: int, n_cols: int) -> tuple[float, float]:
    return (min(2.5 + 0.32 * n_cols, 16.0), min(1.5 + 0.32 * n_rows, 14.0))


def _axes(ax: Any, n_rows: int, n_cols: int) -> Any:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=_figure_size(n_rows, n_cols), layout="constrained")
    return ax


def _plain(labels: list[str]) -> list[str]:
    """Tokens shown as typed: a ``$`` would otherwise start matplotlib mathtext."""
    return [label.replace("$", r"\$") for label in labels]


def _heatmap(matrix: np.ndarray, source: Sequence[Any] | None, target: Sequence[Any] | None,
             ax: Any, title: str, **style: Any) -> Any:
    n_rows, n_cols = matrix.shape
    ax = _axes(ax, n_rows, n_cols)
    sns.heatmap(
        matrix, ax=ax, square=n_rows > 1, xticklabels=_plain(tick_labels(source, n_cols)),
        yticklabels=_plain(tick_labels(target, n_rows)) if n_rows > 1 else False, **style,
    )
    ax.set_xlabel("source")
    if n_rows > 1:
        ax.set_ylabel("target")
    ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(axis="y", labelrotation=0)
    if title:
        ax.set_title(title)
    return ax


def attention_heatmap(
    weights: Any,
    source: Sequence[Any] | None = None,
    target: Sequence[Any] | None = None,
    *,
    head: int | str | None = None,
    ax: Any = None,
    cmap: str = "viridis",
    vmax: float | None = None,
    annot: bool = False,
    title: str = "attention",
) -> Any:
    """Attention of one example as a target × source heatmap (a classifier: one row).

    ``head``: index or ``"mean"`` for per-head weights ``[heads, queries, keys]``."""
    m = as_matrix(weights, head)
    return _heatmap(m, source, target, ax, title, cmap=cmap, vmin=0.0, vmax=vmax, annot=annot,
                    fmt=".2f", cbar_kws={"label": "weight"})


def attribution_heatmap(
    scores: Any,
    source: Sequence[Any] | None = None,
    target: Sequence[Any] | None = None,
    *,
    ax: Any = None,
    cmap: str = "RdBu_r",
    annot: bool = False,
    title: str = "attribution",
) -> Any:
    """Signed attribution scores on a diverging scale centred on 0 (red = pushes the output up)."""
    m = as_matrix(scores, what="attribution")
    limit = float(np.nanmax(np.abs(m))) or 1.0  # symmetric: equal colours mean equal magnitudes
    return _heatmap(m, source, target, ax, title, cmap=cmap, vmin=-limit, vmax=limit, center=0.0,
                    annot=annot, fmt=".2f",
                    cbar_kws={"label": "attribution"})


def compare_heatmaps(
    attention: Any,
    attribution: Any,
    source: Sequence[Any] | None = None,
    target: Sequence[Any] | None = None,
    *,
    head: int | str | None = None,
    mode: str = "shared",
    method: str = "attribution",
    cmap: str = "viridis",
) -> Any:
    """Attention and an attribution side by side, comparable at a glance.

    ``mode="shared"``: each row as a distribution (attention as is, attribution ``|x| / sum|x|``)
    on one colour scale; ``mode="rank"``: each token's rank in its row by magnitude (1 = most
    important), one scale. Returns the figure (two axes)."""
    if mode not in ("shared", "rank"):
        raise ValueError(f"mode must be 'shared' or 'rank', got {mode!r}")
    a = as_matrix(attention, head)
    b = as_matrix(attribution, what="attribution")
    if a.shape != b.shape:
        raise ValueError(f"attention is {a.shape} but the attribution is {b.shape}; pass the same "
                         f"example, step range and head")
    if mode == "shared":
        a, b = row_distribution(a), row_distribution(b)
        vmin, vmax, label = 0.0, float(max(a.max(), b.max(), 1e-12)), "share of the row"
    else:
        a, b = rank_rows(a), rank_rows(b)
        vmin, vmax, label, cmap = 1.0, float(a.shape[1]), "rank (1 = top)", cmap + "_r"
    w, h = _figure_size(*a.shape)
    fig, axes = plt.subplots(1, 2, figsize=(min(2 * w, 20.0), h), layout="constrained")
    for ax, m, name in ((axes[0], a, "attention"), (axes[1], b, f"|{method}|")):
        _heatmap(m, source, target, ax, name, cmap=cmap, vmin=vmin, vmax=vmax, cbar=False)
    fig.colorbar(axes[1].collections[0], ax=list(axes), label=label, shrink=0.8)
    return fig


def head_grid(
    weights: Any,
    source: Sequence[Any] | None = None,
    target: Sequence[Any] | None = None,
    *,
    ncols: int = 4,
    cmap: str = "viridis",
) -> Any:
    """One heatmap per head of ``[heads, queries, keys]`` weights, one shared colour scale."""
    arr = _numpy(weights, "weights")
    if arr.ndim != 3:
        raise ValueError(f"head_grid needs one example's per-head weights [heads, queries, keys], "
                         f"got shape {tuple(arr.shape)}")
    n_heads, n_rows, n_cols = arr.shape
    ncols = max(1, min(ncols, n_heads))
    nrows = -(-n_heads // ncols)
    w, h = _figure_size(n_rows, n_cols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(min(w * ncols, 24.0), min(h * nrows, 24.0)),
                             layout="constrained", squeeze=False)
    vmax = float(np.nanmax(arr)) if arr.size else 1.0
    for i, ax in enumerate(axes.flat):
        if i >= n_heads:
            ax.set_visible(False)
            continue
        _heatmap(arr[i], source, target, ax, f"head {i}", cmap=cmap, vmin=0.0, vmax=vmax, cbar=False)
    fig.colorbar(axes.flat[0].collections[0], ax=list(axes.flat), label="weight", shrink=0.8)
    return fig


def token_highlight(
    tokens: Sequence[Any],
    scores: Any,
    *,
    ax: Any = None,
    cmap: str | None = None,
    width: float = 8.0,
    fontsize: float = 11.0,
    title: str = "",
) -> Any:
    """Tokens as text on coloured boxes, wrapped into lines (a classifier's attention or
    attribution for a paper). Signed scores use a diverging map centred on 0. Returns the axes."""
    values = as_matrix(scores, what="scores")[0]
    tokens = [str(t) for t in tokens]
    if len(tokens) != values.size:
        raise ValueError(f"{len(tokens)} tokens but {values.size} scores; pass one score per token")
    signed = bool(np.nanmin(values) < 0)
    cmap = cmap or ("RdBu_r" if signed else "Blues")
    limit = float(np.nanmax(np.abs(values))) or 1.0
    norm = matplotlib.colors.Normalize(-limit if signed else 0.0, limit)
    colours = matplotlib.colormaps[cmap](norm(values))
    if ax is None:
        fig = plt.figure(figsize=(width, 1.0))
        ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    fig = ax.figure
    ax.set_axis_off()
    renderer = fig.canvas.get_renderer()
    to_points = 72.0 / fig.dpi
    line_width = ax.get_window_extent(renderer).width * to_points
    pad, gap, line_height = 4.0, fontsize * 0.6, fontsize * 2.0
    x, y = pad, -pad - (fontsize * 1.6 if title else 0.0)
    for tok, colour in zip(tokens, colours):
        luminance = 0.2126 * colour[0] + 0.7152 * colour[1] + 0.0722 * colour[2]
        text = ax.text(x, y, tok, fontsize=fontsize, va="top", ha="left", parse_math=False,
                       color="black" if luminance > 0.55 else "white",
                       bbox={"boxstyle": "round,pad=0.2", "facecolor": colour, "edgecolor": "none"})
        tok_width = text.get_window_extent(renderer).width * to_points
        if x > pad and x + tok_width > line_width - pad:
            x, y = pad, y - line_height
            text.set_position((x, y))
        x += tok_width + gap
    height = -y + line_height
    ax.set_xlim(0, line_width)
    ax.set_ylim(-height, 0)
    if ax.get_position().bounds == (0.0, 0.0, 1.0, 1.0):
        fig.set_size_inches(fig.get_size_inches()[0], height / 72.0)
    if title:
        ax.text(pad, -pad, title, fontsize=fontsize, va="top", ha="left", weight="bold", parse_math=False)
    return ax


def save(fig: Any, path: str | Path, formats: Sequence[str] = ("png", "svg"), dpi: int = 200) -> list[Path]:
    """Save a figure (or the figure of an ``Axes``) as ``path`` with each suffix in ``formats``."""
    fig = getattr(fig, "figure", fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"format must be png, svg or pdf, got {fmt!r}")
        out = path.with_suffix(f".{fmt}")
        fig.savefig(out, dpi=dpi, bbox_inches="tight")
        written.append(out)
    return written
