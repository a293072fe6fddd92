"""The explorer: move through examples, runs, modules, heads, decoding steps and attribution
methods, and see attention, attributions, their difference or rank disagreement, and the tokens.

Plain ipywidgets, heatmaps rendered to PNG bytes in an ``ipywidgets.Image``: no CDN and no custom
JavaScript, so it works offline in JupyterLab 4, VS Code and Colab, and pytest can check it
without a browser. Every token that reaches HTML is escaped.

In a lesson, one line, last in its cell::

    interp.widgets.explore(examples)            # list of {"source", "target", "attention", ...}
    interp.widgets.explore(store, run="bahdanau")

shows the live explorer and, below it, a static PNG of its first view, so a notebook read on
GitHub (no kernel, no widgets) still shows the picture. ``explorer.export(folder)`` writes a PNG
and a self-contained HTML page for sites without a kernel.
"""

from __future__ import annotations

import base64
import html
import math
from collections import OrderedDict
from dataclasses import astuple, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .explorer_data import ExplorerData, MemoryData, StoreData, as_data, examples_from_batch
from .render import (
    as_matrix,
    highlight_html,
    rank_rows,
    render_heatmap,
    row_distribution,
    tick_labels,
)

__all__ = [
    "VIEWS",
    "Explorer",
    "ExplorerData",
    "MemoryData",
    "State",
    "StoreData",
    "examples_from_batch",
    "explore",
]

VIEWS = ("attention", "attribution", "difference", "rank", "tokens")
_NEEDS = {
    "attention": ("attention",), "attribution": ("attribution",),
    "difference": ("attention", "attribution"), "rank": ("attention", "attribution"), "tokens": (),
}


@dataclass(frozen=True)
class State:
    """Everything a view depends on: the cache key of a render."""

    example: str
    run: str
    module: str | None
    head: int | str | None
    step: int
    method: str | None
    view: str


@dataclass
class Rendered:
    """One view: the heatmap (None for the tokens view), a caption and the tokens, as HTML."""

    png: bytes | None
    caption: str
    tokens: str


def _row(matrix: np.ndarray, step: int) -> np.ndarray:
    return matrix[min(step, matrix.shape[0] - 1)]


def _agreement(attn_row: np.ndarray, attr_row: np.ndarray) -> str:
    """Rank agreement of one step, with interp.compare's definitions (attribution by magnitude)."""
    from . import compare

    a, b = attn_row, np.abs(attr_row)
    k = min(3, a.size)
    parts = [
        ("Kendall τ", compare.kendall_tau(a, b)), ("Spearman ρ", compare.spearman(a, b)),
        (f"top-{k} overlap", compare.topk_overlap(a, b, k)), ("JS distance", compare.jensen_shannon(a, b)),
    ]
    return " · ".join(f"{name} {'n/a' if math.isnan(v) else f'{v:.2f}'}" for name, v in parts)


def render_state(data: ExplorerData, state: State) -> Rendered:
    """Draw one state of the explorer (pure: the widget and the static export both use it)."""
    source, target = data.tokens(state.example, state.run)
    attn = as_matrix(data.attention(state.example, state.run, state.module), state.head) \
        if state.module is not None else None
    attr = data.attribution(state.example, state.run, state.method) if state.method is not None else None
    base = attn if attn is not None else attr
    if base is None:
        return Rendered(None, "<i>nothing stored for this example</i>", "")
    n_rows, n_cols = base.shape
    step = min(max(state.step, 0), n_rows - 1)
    rows, cols = tick_labels(target, n_rows), tick_labels(source, n_cols)
    problems: list[str] = []
    if attn is not None and attr is not None and attn.shape != attr.shape:
        problems.append(f"attention is {attn.shape[0]}×{attn.shape[1]} but the attribution is "
                        f"{attr.shape[0]}×{attr.shape[1]}: they cannot be compared")
    if source is not None and len(source) != n_cols:
        problems.append(f"{len(source)} source tokens for {n_cols} key positions")

    view = state.view
    head = "" if state.head is None else f" · head {state.head}"
    what = {
        "attention": f"attention · {state.module}{head}",
        "attribution": f"attribution · {state.method}",
        "difference": f"attention − |{state.method}| (each row normalised)",
        "rank": f"rank(attention) − rank(|{state.method}|): blue = attention ranks it higher",
        "tokens": "tokens",
    }[view]
    png = None
    comparable = attn is not None and attr is not None and attn.shape == attr.shape
    highlight = step if n_rows > 1 else None
    if view == "attention" and attn is not None:
        png = render_heatmap(attn, row_labels=rows, col_labels=cols, vmin=0.0, highlight_row=highlight, title=what)
    elif view == "attribution" and attr is not None:
        png = render_heatmap(attr, row_labels=rows, col_labels=cols, cmap="RdBu_r", center=0.0,
                             highlight_row=highlight, title=what)
    elif view == "difference" and comparable:
        png = render_heatmap(row_distribution(attn) - row_distribution(attr), row_labels=rows,
                             col_labels=cols, cmap="RdBu_r", center=0.0, highlight_row=highlight, title=what)
    elif view == "rank" and comparable:
        png = render_heatmap(rank_rows(attr) - rank_rows(attn), row_labels=rows, col_labels=cols,
                             cmap="RdBu_r", center=0.0, highlight_row=highlight, title=what)
    elif view != "tokens":
        problems.append(f"the {view} view needs {' and '.join(_NEEDS[view])}")

    caption = [f"<b>{html.escape(what)}</b>"]
    if n_rows > 1:
        tok = rows[step]
        caption.append(f"step {step} of {n_rows - 1}: target token <code>{html.escape(tok)}</code>")
    if comparable:
        caption.append(html.escape(_agreement(_row(attn, step), _row(attr, step))))
    caption += [f'<span style="color:#b00">{html.escape(p)}</span>' for p in problems]

    tokens = []
    if target is not None:
        marked = [
            f'<b style="outline:2px solid #f22">{html.escape(t)}</b>' if i == step and n_rows > 1
            else html.escape(t)
            for i, t in enumerate(target)
        ]
        tokens.append('<div class="interp-target"><b>target</b> ' + " ".join(marked) + "</div>")
    if attn is not None:
        tokens.append(f'<div class="interp-source-attention">{highlight_html(cols, _row(attn, step), label="attention", vmin=0.0)}</div>')
    if attr is not None:
        tokens.append(f'<div class="interp-source-attribution">{highlight_html(cols, _row(attr, step), label=str(state.method))}</div>')
    return Rendered(png, "<br>".join(caption), "\n".join(tokens))


class Explorer:
    """The interactive explorer over :class:`ExplorerData`.

    Controls (``explorer.controls``): ``example``, ``run``, ``module``, ``head``, ``step``,
    ``method`` and ``view``; a control with one choice or none is hidden. ``explorer.widget``
    is the ipywidgets box; ``explorer.image`` holds the PNG, ``explorer.caption`` and
    ``explorer.tokens`` the HTML. Renders are cached by :class:`State`.
    """

    def __init__(self, data: ExplorerData, *, view: str = "attention", example: str | None = None,
                 cache_size: int = 256, fallback: bool = True):
        import ipywidgets as w

        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
        self.data = data
        self.fallback = fallback
        self._cache: OrderedDict[State, Rendered] = OrderedDict()
        self._cache_size = cache_size
        self._syncing = False
        examples = data.examples()
        if example is not None and str(example) not in examples:
            raise KeyError(f"no example {example!r}; the first ones are {examples[:5]}")
        def dropdown(name: str, **kwargs: Any) -> Any:  # one Layout each: hiding one hides only it
            return w.Dropdown(description=name, layout=w.Layout(width="auto"),
                              style={"description_width": "initial"}, **kwargs)

        self.controls: dict[str, Any] = {
            "example": dropdown("example", options=examples,
                                value=str(example) if example else examples[0]),
            "run": dropdown("run"),
            "module": dropdown("module"),
            "head": dropdown("head"),
            "method": dropdown("method"),
            "step": w.IntSlider(description="step", min=0, max=0, continuous_update=True,
                                layout=w.Layout(width="420px")),
            "view": w.ToggleButtons(options=list(VIEWS), value=view, style={"button_width": "88px"}),
        }
        for name, control in self.controls.items():
            control.add_class(f"interp-{name}")
        # flex-start: shown at its own size (a flex column would stretch and blur it)
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto",
                                                           align_self="flex-start"))
        self.image.add_class("interp-heatmap")
        self.caption = w.HTML()
        self.caption.add_class("interp-caption")
        self.tokens = w.HTML(layout=w.Layout(max_height="260px", overflow="auto"))
        self.tokens.add_class("interp-tokens")
        c = self.controls
        self.widget = w.VBox([
            w.HBox([c["example"], c["run"], c["module"], c["head"], c["method"]],
                   layout=w.Layout(flex_flow="row wrap")),
            w.HBox([c["view"], c["step"]], layout=w.Layout(flex_flow="row wrap")),
            self.image, self.caption, self.tokens,
        ])
        self.widget.add_class("interp-explorer")
        self._sync_options()
        for control in c.values():
            control.observe(self._on_change, names="value")
        self.redraw()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> State:
        c = self.controls
        return State(c["example"].value, c["run"].value or "", c["module"].value, c["head"].value,
                     int(c["step"].value), c["method"].value, c["view"].value)

    def set(self, **values: Any) -> None:
        """Set several controls at once, redrawing once (``explorer.set(example="3", step=2)``)."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise KeyError(f"unknown controls {sorted(unknown)}; controls are {sorted(self.controls)}")
        self._syncing = True
        try:
            for name in ("example", "run", "module", "head", "method", "view", "step"):
                if name in values:
                    self.controls[name].value = values[name]
                    self._sync_options()
        finally:
            self._syncing = False
        self.redraw()

    def _choose(self, control: Any, options: list[Any], prefer: Any = None) -> None:
        old = control.value
        control.options = options
        if options:
            control.value = old if old in [v for _, v in _pairs(options)] else (
                prefer if prefer in [v for _, v in _pairs(options)] else _pairs(options)[0][1])
        control.layout.display = None if len(options) > 1 else "none"

    def _sync_options(self) -> None:
        """Offer only the runs, modules, heads, methods, steps and views this example has."""
        was = self._syncing
        self._syncing = True
        try:
            c, d = self.controls, self.data
            example = c["example"].value
            self._choose(c["run"], d.runs(example))
            run = c["run"].value or ""
            self._choose(c["module"], d.modules(example, run))
            self._choose(c["method"], d.methods(example, run))
            module, method = c["module"].value, c["method"].value
            arr = d.attention(example, run, module) if module is not None else None
            heads = arr.shape[0] if arr is not None and arr.ndim == 3 else 0
            self._choose(c["head"], [("mean", "mean")] + [(str(h), h) for h in range(heads)] if heads else [],
                         prefer="mean")
            base = arr if arr is not None else (d.attribution(example, run, method) if method else None)
            n_rows = 1 if base is None else base.shape[-2]
            c["step"].max = max(n_rows - 1, 0)
            c["step"].layout.display = None if n_rows > 1 else "none"
            views = [v for v in VIEWS if all(
                (module if need == "attention" else method) is not None for need in _NEEDS[v])]
            self._choose(c["view"], views)
        finally:
            self._syncing = was

    def _on_change(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        if change["owner"] in (self.controls["example"], self.controls["run"], self.controls["module"],
                               self.controls["method"]):
            self._sync_options()
        self.redraw()

    # ------------------------------------------------------------------ drawing

    def render(self, state: State | None = None) -> Rendered:
        """The view for ``state`` (default: the current one), from the cache when seen before."""
        state = state or self.state
        hit = self._cache.get(state)
        if hit is not None:
            self._cache.move_to_end(state)
            return hit
        out = render_state(self.data, state)
        self._cache[state] = out
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def redraw(self) -> None:
        """Show the current state (called on every control change)."""
        out = self.render()
        if out.png is not None:
            self.image.value = out.png
        self.image.layout.display = None if out.png is not None else "none"
        self.caption.value = out.caption
        self.tokens.value = out.tokens

    # ------------------------------------------------------------------ static output

    def png(self) -> bytes:
        """PNG of the current view (the attention or attribution heatmap in the tokens view)."""
        out = self.render()
        if out.png is None:
            for view in ("attention", "attribution"):
                other = self.render(replace(self.state, view=view))
                if other.png is not None:
                    return other.png
            raise ValueError("this example has nothing to draw")
        return out.png

    def html(self) -> str:
        """A self-contained HTML page of the current view (PNG inlined), for pages without a kernel."""
        out = self.render()
        img = base64.b64encode(self.png()).decode("ascii")
        st = self.state
        title = html.escape(f"interp explorer: example {st.example}" + (f", run {st.run}" if st.run else ""))
        return (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>'
            f'<body style="font-family:sans-serif"><h3>{title}</h3>'
            f'<img alt="{html.escape(st.view)} heatmap" src="data:image/png;base64,{img}" '
            f'style="max-width:100%"><p>{out.caption}</p><div>{out.tokens}</div></body></html>\n'
        )

    def export(self, folder: str | Path, name: str = "explorer") -> tuple[Path, Path]:
        """Write ``name.png`` and ``name.html`` of the current view into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        png_path, html_path = folder / f"{name}.png", folder / f"{name}.html"
        png_path.write_bytes(self.png())
        html_path.write_text(self.html(), encoding="utf-8")
        return png_path, html_path

    def static_image(self) -> Any:
        """The current view as an ``IPython.display.Image`` (what GitHub shows without a kernel)."""
        from IPython.display import Image

        return Image(data=self.png(), format="png")

    def display(self) -> None:
        """Show the live explorer and, when ``fallback`` is on, its static PNG below it."""
        from IPython.display import display

        display(self.widget)
        if self.fallback:
            display(self.static_image())

    def _ipython_display_(self) -> None:
        self.display()

    def __repr__(self) -> str:
        return f"Explorer({astuple(self.state)})"


def _pairs(options: list[Any]) -> list[tuple[str, Any]]:
    return [o if isinstance(o, tuple) else (str(o), o) for o in options]


def explore(data: Any, *, view: str = "attention", example: str | None = None, fallback: bool = True,
            **kwargs: Any) -> Explorer:
    """The explorer over what a lesson has; make it the last line of a cell to show it.

    ``data``: a list of example dicts ``{"id", "source", "target", "attention", "attributions",
    "run"}`` (or ``{id: dict}``, or one dict), a :class:`interp.Store` (``kwargs`` filter it:
    ``run=``, ``module=``, ``example=``...), a :class:`interp.Capture` or ``{module: batch
    array}`` (``kwargs``: ``source=``, ``target=``, ``attributions=``, ``ids=``, ``run=``).
    Shown in a notebook, it displays the live widget and (``fallback=True``) a static PNG of the
    first view beneath it, for readers without a kernel.
    """
    return Explorer(as_data(data, **kwargs), view=view, example=example, fallback=fallback)
