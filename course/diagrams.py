"""Architecture diagrams drawn in code, so every lesson's figure of its mechanism is reproducible.

A :class:`Diagram` is a set of boxes (tensors or operations) and arrows between them. Each arrow
may carry the shape of the tensor that flows along it (``"[B, S, 2H]"``), and each box has a
*role*: the query, the keys and the values of attention are coloured the same way in every lesson,
with a legend, so a reader can see at a glance which state asks, which states are compared and
which are mixed.

    d = Diagram("Bahdanau attention, one decoder step")
    d.node("h", (0, 0), "encoder states $h_j$", role="key/value")
    d.node("s", (0, 2), "decoder state $s_{t-1}$", role="query")
    d.node("a", (3, 1), "softmax over $j$", role="weights")
    d.arrow("h", "a", "[B, S, 2H]")
    d.arrow("s", "a", "[B, H]")
    d.draw()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Patch

__all__ = ["ROLES", "Diagram"]

ROLES: dict[str, tuple[str, str]] = {
    # role: (face colour, legend text)
    "input": ("#e9ecef", "input"),
    "state": ("#dee2e6", "state / operation"),
    "query": ("#f4a261", "query"),
    "key": ("#2a9d8f", "keys"),
    "value": ("#8ecae6", "values"),
    "key/value": ("#76c7b7", "keys and values"),
    "weights": ("#e9c46a", "attention weights"),
    "context": ("#a8dadc", "context vector"),
    "output": ("#cdb4db", "output"),
}


@dataclass
class _Node:
    key: str
    xy: tuple[float, float]
    text: str
    role: str


@dataclass
class _Arrow:
    source: str
    target: str
    shape: str
    label: str
    bend: float
    dashed: bool


@dataclass
class Diagram:
    """Boxes and arrows with tensor shapes; :meth:`draw` renders them with a role legend."""

    title: str
    size: tuple[float, float] = (10.0, 4.5)
    nodes: dict[str, _Node] = field(default_factory=dict)
    arrows: list[_Arrow] = field(default_factory=list)

    def node(self, key: str, xy: tuple[float, float], text: str, role: str = "state") -> Diagram:
        """Add a box at ``xy`` (data coordinates) showing ``text``; returns the diagram."""
        if key in self.nodes:
            raise ValueError(f"diagram {self.title!r}: a node named {key!r} already exists")
        if role not in ROLES:
            raise ValueError(f"diagram {self.title!r}: unknown role {role!r} for {key!r}; "
                             f"choose one of {sorted(ROLES)}")
        self.nodes[key] = _Node(key, (float(xy[0]), float(xy[1])), text, role)
        return self

    def arrow(self, source: str, target: str, shape: str = "", *, label: str = "",
              bend: float = 0.0, dashed: bool = False) -> Diagram:
        """Add an arrow carrying a tensor of ``shape`` (and an optional ``label``)."""
        for end in (source, target):
            if end not in self.nodes:
                raise KeyError(f"diagram {self.title!r}: no node named {end!r}; add it with "
                               f".node() first (nodes: {sorted(self.nodes)})")
        self.arrows.append(_Arrow(source, target, shape, label, bend, dashed))
        return self

    def draw(self, ax: Any = None) -> Any:
        """Render the diagram and return its ``Axes``."""
        if not self.nodes:
            raise ValueError(f"diagram {self.title!r} has no nodes")
        if ax is None:
            _, ax = plt.subplots(figsize=self.size, layout="constrained")
        boxes = {}
        for node in self.nodes.values():
            colour = ROLES[node.role][0]
            text = ax.text(*node.xy, node.text, ha="center", va="center", fontsize=9, zorder=3,
                           bbox={"boxstyle": "round,pad=0.45", "facecolor": colour,
                                 "edgecolor": "#343a40", "linewidth": 1.0})
            boxes[node.key] = text
        for arrow in self.arrows:
            patch = FancyArrowPatch(
                posA=self.nodes[arrow.source].xy, posB=self.nodes[arrow.target].xy,
                patchA=boxes[arrow.source].get_bbox_patch(), patchB=boxes[arrow.target].get_bbox_patch(),
                arrowstyle="-|>", mutation_scale=12, color="#343a40", linewidth=1.1,
                linestyle="--" if arrow.dashed else "-", connectionstyle=f"arc3,rad={arrow.bend}",
                zorder=2)
            ax.add_patch(patch)
            words = " ".join(part for part in (arrow.label, arrow.shape) if part)
            if words:
                (x0, y0), (x1, y1) = self.nodes[arrow.source].xy, self.nodes[arrow.target].xy
                mx, my = (x0 + x1) / 2, (y0 + y1) / 2
                # an arc's midpoint is off the chord by about bend/2 of its length, to the right
                mx, my = mx + arrow.bend * (y1 - y0) / 2, my - arrow.bend * (x1 - x0) / 2
                ax.text(mx, my, words, ha="center", va="center", fontsize=7.5, color="#1d3557",
                        zorder=4, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                        "edgecolor": "none", "alpha": 0.85})
        xs = [n.xy[0] for n in self.nodes.values()]
        ys = [n.xy[1] for n in self.nodes.values()]
        ax.set_xlim(min(xs) - 1.2, max(xs) + 1.2)
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
        ax.set_axis_off()
        ax.set_title(self.title)
        used = []
        for node in self.nodes.values():
            if node.role not in used and node.role not in ("state", "input"):
                used.append(node.role)
        if used:
            ax.legend(handles=[Patch(facecolor=ROLES[r][0], edgecolor="#343a40", label=ROLES[r][1])
                               for r in used], loc="upper center", bbox_to_anchor=(0.5, 0.0),
                      ncols=len(used), fontsize=8, frameon=False)
        return ax
