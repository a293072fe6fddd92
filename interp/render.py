"""Fast heatmap PNGs and escaped token-highlight HTML for the interactive explorer.

Why not seaborn here: a widget redraw must take well under 100 ms, and a seaborn/matplotlib
figure with a hundred tick labels spends most of that laying out text. This module paints the
cells with a colormap lookup table (numpy), pastes token labels rendered once and cached (PIL,
DejaVu Sans shipped with matplotlib), and encodes with fast PNG compression. Static figures for
papers live in :mod:`interp.plot`.

Arrays follow interp's conventions: one example's attention is ``[(heads,) queries, keys]``;
an attribution is ``[src]`` (classifier) or ``[tgt, src]`` (seq2seq). Every token that reaches
HTML goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from .arrays import to_numpy

__all__ = [
    "as_matrix",
    "highlight_html",
    "rank_rows",
    "render_heatmap",
    "row_distribution",
    "tick_labels",
]

MAX_SIDE = 900          # largest heatmap side in pixels, labels and colour bar excluded
MAX_CELL = 28           # largest cell side in pixels (short sequences)
MIN_FONT, MAX_FONT = 9, 13
LABEL_CHARS = 18        # longer tokens are shortened with an ellipsis in tick labels
NAN_RGB = (200, 200, 200)
HIGHLIGHT_RGB = (255, 40, 40)
BACKGROUND = (255, 255, 255)
TEXT_RGB = (20, 20, 20)


# --------------------------------------------------------------------------- arrays


def _numpy(x: Any, what: str) -> np.ndarray:
    return to_numpy(x, what, dtype=np.float64)


def as_matrix(weights: Any, head: int | str | None = None, *, what: str = "attention") -> np.ndarray:
    """One example's scores as a 2-D ``[queries, keys]`` float array.

    ``[keys]`` becomes one row (a classifier's pooling); ``[heads, queries, keys]`` needs
    ``head``: an index, or ``"mean"`` to average the heads.
    """
    arr = _numpy(weights, what)
    if arr.ndim == 1:
        return arr[None, :]
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3:
        if head is None:
            raise ValueError(
                f"{what} has {arr.shape[0]} heads (shape {tuple(arr.shape)}); pass head=0..."
                f"{arr.shape[0] - 1} or head='mean'"
            )
        if head == "mean":
            return arr.mean(axis=0)
        h = int(head)
        if not -arr.shape[0] <= h < arr.shape[0]:
            raise IndexError(f"head {h} out of range: {what} has {arr.shape[0]} heads")
        return arr[h]
    raise ValueError(
        f"{what} for one example must be [keys], [queries, keys] or [heads, queries, keys]; "
        f"got shape {tuple(arr.shape)} (select the example from the batch first)"
    )


def row_distribution(matrix: np.ndarray) -> np.ndarray:
    """Each row as a distribution of magnitudes, ``|x| / sum |x|`` (all-zero rows stay zero).

    Puts attention (already a distribution) and signed attributions on one scale."""
    mag = np.abs(np.nan_to_num(matrix))
    total = mag.sum(axis=-1, keepdims=True)
    return np.divide(mag, total, out=np.zeros_like(mag), where=total > 0)


def rank_rows(matrix: np.ndarray) -> np.ndarray:
    """Rank of each entry within its row by magnitude: 1 = most important. Ties by position."""
    order = np.argsort(-np.abs(np.nan_to_num(matrix)), axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, matrix.shape[-1] + 1)[None, :], axis=-1)
    return ranks.astype(np.float64)


def tick_labels(tokens: Sequence[Any] | None, n: int) -> list[str]:
    """``n`` labels: the tokens as text where given, the position otherwise."""
    tokens = list(tokens) if tokens is not None else []
    return [str(tokens[i]) if i < len(tokens) else str(i) for i in range(n)]


# --------------------------------------------------------------------------- colours and fonts


@lru_cache(maxsize=32)
def _lut(cmap: str) -> np.ndarray:
    """256 RGB colours of a matplotlib colormap (colormaps are data; no figure is made)."""
    import matplotlib

    try:
        cm = matplotlib.colormaps[cmap]
    except KeyError as exc:
        raise ValueError(f"unknown colormap {cmap!r}; use a matplotlib name such as 'viridis'") from exc
    return (cm(np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    import matplotlib
    from PIL import ImageFont

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    try:
        return ImageFont.truetype(path, size)
    except OSError:  # a matplotlib without its bundled font: PIL's own scalable default
        return ImageFont.load_default(size)


def _short(label: str) -> str:
    label = label.replace("\n", "\\n").replace("\t", "\\t")
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


# The interactive PNG is a palette image (1 byte a pixel: three times less to compress than RGB):
# entries 0..239 are the colormap, then NaN grey, the highlight red, and 14 greys for the
# antialiased text, ending in white (the background).
_LEVELS = 240
_NAN, _HIGHLIGHT, _GREY0, _N_GREYS = 240, 241, 242, 14
_GREY_TO_INDEX = (_GREY0 + np.round(np.arange(256) * (_N_GREYS - 1) / 255)).astype(np.uint8)


@lru_cache(maxsize=32)
def _palette(cmap: str) -> bytes:
    colours = _lut(cmap)[np.linspace(0, 255, _LEVELS).round().astype(int)]
    text = np.array(TEXT_RGB, float)
    greys = [text + (np.array(BACKGROUND) - text) * k / (_N_GREYS - 1) for k in range(_N_GREYS)]
    extra = np.array([NAN_RGB, HIGHLIGHT_RGB, *greys]).round().astype(np.uint8)
    return np.concatenate([colours, extra]).astype(np.uint8).tobytes()


def _levels(matrix: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Palette indices of the cells: 0..239 along the colormap, NaN grey."""
    span = vmax - vmin if vmax > vmin else 1.0
    scaled = (np.nan_to_num(matrix, nan=vmin) - vmin) * ((_LEVELS - 1) / span)
    index = np.clip(scaled, 0, _LEVELS - 1).round().astype(np.uint8)
    index[np.isnan(matrix)] = _NAN
    return index


def _colours(matrix: np.ndarray, cmap: str, vmin: float, vmax: float) -> np.ndarray:
    span = vmax - vmin if vmax > vmin else 1.0
    scaled = (np.nan_to_num(matrix, nan=vmin) - vmin) * (255.0 / span)
    rgb = _lut(cmap)[np.clip(scaled, 0, 255).astype(np.uint8)]
    nan = np.isnan(matrix)
    if nan.any():
        rgb[nan] = NAN_RGB
    return rgb


def _limits(matrix: np.ndarray, vmin: float | None, vmax: float | None, center: float | None) -> tuple[float, float]:
    finite = matrix[np.isfinite(matrix)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    if center is not None:
        half = max(abs(lo - center), abs(hi - center)) or 1.0
        lo, hi = center - half, center + half
    lo = lo if vmin is None else float(vmin)
    hi = hi if vmax is None else float(vmax)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi


# --------------------------------------------------------------------------- label strips


@lru_cache(maxsize=64)
def _label_strip(labels: tuple[str, ...], cell: int, font_size: int, every: int) -> Any:
    """Labels right-aligned, one per ``cell`` pixels, as a greyscale image (cached: labels
    rarely change while a learner moves through steps and heads)."""
    from PIL import Image, ImageDraw

    font = _font(font_size)
    shown = [(i, _short(lab)) for i, lab in enumerate(labels) if i % every == 0]
    width = max((int(math.ceil(font.getlength(t))) for _, t in shown), default=0) + 6
    img = Image.new("L", (max(width, 1), max(cell * len(labels), 1)), 255)
    draw = ImageDraw.Draw(img)
    for i, text in shown:
        y = i * cell + cell / 2
        draw.text((width - 4, y), text, fill=0, font=font, anchor="rm")
    return img


def _layout(n_rows: int, n_cols: int) -> tuple[int, int, int, int]:
    """Cell size, font size and label spacing (every k-th row/column) for a matrix."""
    cell = max(1, min(MAX_CELL, MAX_SIDE // max(n_rows, n_cols, 1)))
    font_size = max(MIN_FONT, min(MAX_FONT, cell - 2))
    every = max(1, math.ceil((font_size + 1) / cell))
    return cell, font_size, every, every


# --------------------------------------------------------------------------- heatmap


def _fold(row: np.ndarray, width: int) -> np.ndarray:
    padded = np.full(math.ceil(row.size / width) * width, np.nan)
    padded[: row.size] = row
    return padded.reshape(-1, width)


def render_heatmap(
    matrix: Any,
    *,
    row_labels: Sequence[Any] | None = None,
    col_labels: Sequence[Any] | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | None = None,
    highlight_row: int | None = None,
    title: str = "",
    wrap: int = 50,
    fmt: str = "png",
) -> bytes:
    """A labelled heatmap of a 2-D ``[rows, cols]`` array as PNG bytes (rows = target steps or
    queries, columns = source tokens), with a colour bar and an optional outlined row.

    ``center`` makes the scale symmetric around it (signed scores, differences); NaN cells are
    grey. A single row longer than ``wrap`` (a classifier over a long text) is folded into lines
    of ``wrap`` tokens, labelled by the position of their first token, so it stays readable. ``fmt="png"`` only; the argument exists so callers say what they expect.
    """
    from PIL import Image, ImageDraw

    if fmt != "png":
        raise ValueError(f"render_heatmap writes PNG only, got fmt={fmt!r}; use interp.plot for SVG")
    m = as_matrix(matrix, what="matrix")
    if m.size == 0:
        raise ValueError(f"cannot draw an empty matrix (shape {m.shape})")
    lo, hi = _limits(m, vmin, vmax, center)
    if m.shape[0] == 1 and wrap > 0 and m.shape[1] > wrap:
        row_labels = [str(start) for start in range(0, m.shape[1], wrap)]
        m, col_labels, highlight_row = _fold(m[0], wrap), None, None
    n_rows, n_cols = m.shape
    cell, font_size, row_every, col_every = _layout(n_rows, n_cols)
    rows = tuple(tick_labels(row_labels, n_rows))
    cols = tuple(tick_labels(col_labels, n_cols))
    left = _label_strip(rows, cell, font_size, row_every)
    bottom = _label_strip(cols, cell, font_size, col_every).transpose(Image.Transpose.ROTATE_90)

    font = _font(MAX_FONT)
    title_h = MAX_FONT + 10 if title else 4
    bar_w, bar_gap, bar_text = 14, 10, int(font.getlength("-0.000e+00")) + 6
    hm_w, hm_h = n_cols * cell, n_rows * cell
    bar_h = max(hm_h, 60)
    width = left.width + hm_w + bar_gap + bar_w + bar_text
    height = title_h + max(hm_h, bar_h) + bottom.height + 4
    x0, y0 = left.width, title_h
    bx = x0 + hm_w + bar_gap

    # Text first, in greyscale (antialiased), then mapped onto the palette's grey ramp.
    text = Image.new("L", (width, height), 255)
    text.paste(left, (0, y0))
    text.paste(bottom, (x0, y0 + hm_h))
    draw = ImageDraw.Draw(text)
    draw.text((bx + bar_w + 4, y0), f"{hi:.3g}", fill=0, font=font, anchor="la")
    draw.text((bx + bar_w + 4, y0 + bar_h), f"{lo:.3g}", fill=0, font=font, anchor="ld")
    if title:
        draw.text((4, 4), title, fill=0, font=font, anchor="la")
    index = _GREY_TO_INDEX[np.asarray(text)]

    index[y0:y0 + hm_h, x0:x0 + hm_w] = np.repeat(np.repeat(_levels(m, lo, hi), cell, axis=0), cell, axis=1)
    ramp = np.linspace(_LEVELS - 1, 0, bar_h).round().astype(np.uint8)
    index[y0:y0 + bar_h, bx:bx + bar_w] = ramp[:, None]

    canvas = Image.fromarray(index, "P")
    canvas.putpalette(_palette(cmap))
    if highlight_row is not None and 0 <= highlight_row < n_rows:
        top = y0 + highlight_row * cell
        mark = ImageDraw.Draw(canvas)
        mark.rectangle((x0, top, x0 + hm_w - 1, top + cell - 1), outline=_HIGHLIGHT,
                       width=max(1, min(3, cell // 6)))
        if cell >= 6:  # a marker in the label margin, visible even when the row is dark
            mark.polygon([(x0 - 1, top + cell / 2), (x0 - 7, top), (x0 - 7, top + cell)], fill=_HIGHLIGHT)

    out = io.BytesIO()
    canvas.save(out, format="PNG", compress_level=1)
    return out.getvalue()


# --------------------------------------------------------------------------- token highlighting


_TOKEN_STYLE = (
    "<style>.interp-token{padding:1px 3px;margin:1px;border-radius:3px;display:inline-block;"
    "font-family:monospace;white-space:pre}</style>"
)


def _css_colour(rgb: np.ndarray) -> tuple[str, str]:
    r, g, b = (int(c) for c in rgb)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return f"#{r:02x}{g:02x}{b:02x}", ("#000" if luminance > 140 else "#fff")


def highlight_html(
    tokens: Sequence[Any],
    scores: Any,
    *,
    cmap: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    label: str = "",
) -> str:
    """Tokens as inline HTML spans coloured by their scores (one score per token), escaped.

    Signed scores (any negative) use a diverging map centred on 0; others a sequential one.
    Each span's title shows the exact score. Safe for any token text: ``<script>`` is shown,
    never run.
    """
    tokens = list(tokens)
    values = _numpy(scores, "scores").reshape(-1)
    if values.shape[0] != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but {values.shape[0]} scores; pass one score per token")
    signed = bool(np.nanmin(values) < 0) if values.size else False
    cmap = cmap or ("RdBu_r" if signed else "Blues")
    lo, hi = _limits(values[None, :], vmin, vmax, 0.0 if signed else None)
    if not signed and vmin is None:
        lo = min(lo, 0.0)
    rgb = _colours(values[None, :], cmap, lo, hi)[0]
    parts = [_TOKEN_STYLE]
    if label:
        parts.append(f'<span class="interp-label"><b>{html.escape(label)}</b> </span>')
    for tok, value, colour in zip(tokens, values, rgb):
        bg, fg = _css_colour(colour)
        text = html.escape(str(tok), quote=True)
        tip = html.escape(f"{tok}: {value:.4g}", quote=True)
        parts.append(f'<span class="interp-token" title="{tip}" style="background:{bg};color:{fg}">{text}</span>')
    return "".join(parts)
