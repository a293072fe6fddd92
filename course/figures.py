"""Lesson figures a reader can read: labelled heatmaps with a colour bar, and training curves.

Every lesson draws its heatmaps and loss curves through these functions so that each figure has
a title, labelled axes (the tokens on the ticks), a colour bar that says what the colour means,
and a scale that fits the quantity: sequential for weights and magnitudes (which are never
negative), diverging and centred on zero only for signed values such as gradients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["SEQUENTIAL", "DIVERGING", "heatmap", "heatmap_panels", "plot_training"]

SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"


def _matrix(values: Any, what: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValueError(f"{what}: a heatmap needs a 1-D or 2-D array, got shape {array.shape}")
    return array


def _labels(labels: Sequence[Any] | None, size: int, axis: str, what: str) -> list[str] | bool:
    if labels is None:
        return False
    labels = [str(label).replace("$", r"\$") for label in labels]
    if len(labels) != size:
        raise ValueError(f"{what}: {len(labels)} {axis} labels for {size} {axis} cells; pass one "
                         f"label per {'column' if axis == 'x' else 'row'}")
    return labels


def _limits(matrices: Sequence[np.ndarray], signed: bool, vmin: float | None, vmax: float | None,
            what: str) -> tuple[float, float]:
    finite = [m[np.isfinite(m)] for m in matrices]
    low = min((float(f.min()) for f in finite if f.size), default=0.0)
    high = max((float(f.max()) for f in finite if f.size), default=1.0)
    if signed:
        limit = max(abs(low), abs(high)) if vmax is None else float(vmax)
        limit = limit or 1.0
        return -limit, limit
    if low < -1e-9 and vmin is None:
        raise ValueError(f"{what}: the values go down to {low:.3g}; a sequential scale would hide "
                         f"their sign. Pass signed=True for signed quantities (a diverging scale "
                         f"centred on 0), or plot magnitudes (abs) instead")
    return (0.0 if vmin is None else float(vmin)), (max(high, 1e-12) if vmax is None else float(vmax))


def heatmap(values: Any, *, ax: Any = None, x_labels: Sequence[Any] | None = None,
            y_labels: Sequence[Any] | None = None, title: str, xlabel: str, ylabel: str = "",
            cbar_label: str = "attention weight", signed: bool = False, vmin: float | None = None,
            vmax: float | None = None, cmap: str | None = None, colorbar: bool = True,
            annot: bool = False) -> Any:
    """Draw one ``[rows, columns]`` array (a 1-D array is one row) and return its ``Axes``.

    ``title``, ``xlabel`` (and ``ylabel`` for more than one row) are required so no figure leaves
    the reader guessing. Unsigned values get a sequential scale from 0; negative values with
    ``signed=False`` raise, since a sequential scale would show them as small.
    """
    matrix = _matrix(values, title)
    lo, hi = _limits([matrix], signed, vmin, vmax, title)
    rows, cols = matrix.shape
    if ax is None:
        _, ax = plt.subplots(figsize=(min(3 + 0.35 * cols, 16), min(1.6 + 0.35 * rows, 12)),
                             layout="constrained")
    # matplotlib directly: seaborn's heatmap redraws the whole figure on every call to check
    # whether tick labels overlap, which makes a grid of n panels cost n^2 draws
    mesh = ax.pcolormesh(np.ma.masked_invalid(matrix), cmap=cmap or (DIVERGING if signed else SEQUENTIAL),
                         vmin=lo, vmax=hi)
    ax.set_xlim(0, cols)
    ax.set_ylim(rows, 0)  # first row on top, as a matrix is read
    x_ticks = _labels(x_labels, cols, "x", title)
    y_ticks = _labels(y_labels, rows, "y", title)
    if x_ticks:
        ax.set_xticks(np.arange(cols) + 0.5, x_ticks, rotation=90)
    else:
        ax.set_xticks([])
    if y_ticks:
        ax.set_yticks(np.arange(rows) + 0.5, y_ticks, rotation=0)
    else:
        ax.set_yticks([])
    if annot:
        middle = (lo + hi) / 2
        for (r, c), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(c + 0.5, r + 0.5, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if (value < middle) != signed else "black")
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=cbar_label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    if rows > 1 or ylabel:
        ax.set_ylabel(ylabel)
    return ax


def heatmap_panels(panels: Mapping[str, Any], *, x_labels: Sequence[Any] | None = None,
                   y_labels: Sequence[Any] | None = None, title: str, xlabel: str,
                   ylabel: str = "", cbar_label: str = "attention weight", signed: bool = False,
                   vmax: float | None = None, ncols: int | None = None,
                   panel_size: tuple[float, float] = (4.0, 4.0), cmap: str | None = None) -> Any:
    """Several heatmaps side by side on one colour scale with one colour bar; returns the figure.

    ``panels`` maps each panel's title to its array; all share the tick labels, the axis labels
    and the colour scale, so equal colours mean equal values across panels.
    """
    if not panels:
        raise ValueError(f"{title}: no panels to draw")
    matrices = {name: _matrix(values, f"{title} / {name}") for name, values in panels.items()}
    lo, hi = _limits(list(matrices.values()), signed, None, vmax, title)
    ncols = min(ncols or len(matrices), len(matrices))
    nrows = -(-len(matrices) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained",
                             figsize=(panel_size[0] * ncols + 1.0, panel_size[1] * nrows + 0.5))
    for ax, (name, matrix) in zip(axes.flat, matrices.items()):
        heatmap(matrix, ax=ax, x_labels=x_labels, y_labels=y_labels, title=name, xlabel=xlabel,
                ylabel=ylabel, signed=signed, vmin=lo, vmax=hi, cmap=cmap, colorbar=False)
    for ax in list(axes.flat)[len(matrices):]:
        ax.set_visible(False)
    used = list(axes.flat)[:len(matrices)]
    fig.colorbar(used[0].collections[0], ax=used, label=cbar_label, shrink=0.8)
    fig.suptitle(title)
    return fig


def _curves(history: Any, name: str) -> tuple[list[float], list[float]]:
    if isinstance(history, Mapping):
        train, val = history.get("train_loss", []), history.get("val_loss", [])
    else:
        train, val = getattr(history, "train_loss", None), getattr(history, "val_loss", [])
        if train is None:
            raise TypeError(f"{name}: expected a course.training.History or a mapping with "
                            f"'train_loss' (and 'val_loss'), got {type(history).__name__}")
    if not len(train):
        raise ValueError(f"{name}: the history has no training loss; train before plotting")
    return [float(x) for x in train], [float(x) for x in val]


def plot_training(histories: Any, *, ax: Any = None, title: str = "training and validation loss",
                  ylabel: str = "loss", logy: bool = False) -> Any:
    """Training (solid) and validation (dashed) loss per epoch, one colour per model.

    ``histories`` is one :class:`course.training.History` (or a mapping with ``train_loss`` and
    ``val_loss`` lists) or a mapping from model name to such histories. Returns the ``Axes``.
    """
    single = not isinstance(histories, Mapping) or "train_loss" in histories
    named = {"model": histories} if single else dict(histories)
    if not named:
        raise ValueError("plot_training: no histories to plot")
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(named))]
    for colour, (name, history) in zip(colours, named.items()):
        train, val = _curves(history, name)
        prefix = "" if single else f"{name}: "
        marker = {"marker": "o", "markersize": 3} if len(train) <= 40 else {}  # one epoch is a dot, not nothing
        ax.plot(range(1, len(train) + 1), train, color=colour, label=f"{prefix}training", **marker)
        if val:
            ax.plot(range(1, len(val) + 1), val, color=colour, linestyle="--", label=f"{prefix}validation",
                    **marker)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=2 if len(named) > 2 else 1)
    return ax
