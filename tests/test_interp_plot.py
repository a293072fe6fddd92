"""Static figures: tokens as tick labels, one colour scale for the comparison, ranks, head grids,
token highlighting and files written as PNG and SVG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from interp import plot  # noqa: E402

SRC, TGT = ["le", "chat", "$x$", "<s>"], ["the", "cat", "."]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels(ax, axis):
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_attention_heatmap_labels_tokens_and_takes_tensors_and_heads():
    w = torch.softmax(torch.randn(2, 3, 4), -1)
    ax = plot.attention_heatmap(w, SRC, TGT, head=1)
    assert _labels(ax, "x") == ["le", "chat", r"\$x\$", "<s>"]  # '$' shown, not mathtext
    assert _labels(ax, "y") == TGT
    np.testing.assert_allclose(ax.collections[0].get_array().reshape(3, 4), w[1].numpy(), rtol=1e-6)
    mean = plot.attention_heatmap(w, SRC, TGT, head="mean")
    np.testing.assert_allclose(mean.collections[0].get_array().reshape(3, 4), w.mean(0).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="head="):
        plot.attention_heatmap(w, SRC, TGT)


def test_attribution_heatmap_is_centred_on_zero():
    scores = np.array([0.5, -2.0, 1.0, 0.0])
    ax = plot.attribution_heatmap(scores, SRC)
    lo, hi = ax.collections[0].get_clim()
    assert lo == pytest.approx(-hi) and hi >= 2.0


def test_compare_shares_one_scale_and_ranks():
    rng = np.random.default_rng(0)
    attn = rng.random((3, 4))
    attr = rng.normal(size=(3, 4)) * 10
    fig = plot.compare_heatmaps(attn, attr, SRC, TGT, method="ig")
    left, right = (ax.collections[0] for ax in fig.axes[:2])
    assert left.get_clim() == right.get_clim()
    np.testing.assert_allclose(right.get_array().reshape(3, 4).sum(1), 1.0)
    fig = plot.compare_heatmaps(attn, attr, SRC, TGT, mode="rank")
    ranks = fig.axes[1].collections[0].get_array().reshape(3, 4)
    expected = np.argsort(np.argsort(-np.abs(attr), axis=1), axis=1) + 1
    np.testing.assert_array_equal(ranks, expected)
    with pytest.raises(ValueError, match="same"):
        plot.compare_heatmaps(attn, attr[:2], SRC, TGT)
    with pytest.raises(ValueError, match="mode"):
        plot.compare_heatmaps(attn, attr, mode="both")


def test_head_grid_has_one_panel_per_head_on_one_scale():
    w = np.random.default_rng(1).random((5, 3, 4))
    fig = plot.head_grid(w, SRC, TGT, ncols=2)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.collections and ax.get_title()]
    assert [ax.get_title() for ax in panels] == [f"head {i}" for i in range(5)]
    assert len({ax.collections[0].get_clim() for ax in panels}) == 1
    with pytest.raises(ValueError, match="heads, queries, keys"):
        plot.head_grid(w[0])


def test_token_highlight_wraps_long_texts_into_lines():
    tokens = [f"token{i}" for i in range(80)] + ["$a$", "<b>"]
    ax = plot.token_highlight(tokens, np.linspace(-1, 1, len(tokens)), title="IG")
    texts = [t for t in ax.texts if t.get_text() != "IG"]
    assert [t.get_text() for t in texts] == tokens
    assert len({round(t.get_position()[1], 3) for t in texts}) > 2
    colours = {t.get_bbox_patch().get_facecolor() for t in texts}
    assert len(colours) > 10
    with pytest.raises(ValueError, match="one score per token"):
        plot.token_highlight(["a"], [1.0, 2.0])


def test_save_writes_png_and_svg(tmp_path):
    ax = plot.attention_heatmap(np.eye(3), SRC[:3], TGT)
    paths = plot.save(ax, tmp_path / "fig" / "attention")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in paths[1].read_bytes()[:2000]
    with pytest.raises(ValueError, match="png, svg or pdf"):
        plot.save(ax, tmp_path / "x", formats=["gif"])
