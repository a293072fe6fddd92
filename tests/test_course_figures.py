"""course.figures and course.diagrams: the helpers every lesson draws its figures with."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course.claims import holds  # noqa: E402
from course.diagrams import Diagram  # noqa: E402
from course.figures import heatmap, heatmap_panels, plot_training  # noqa: E402
from course.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_heatmap_labels_axes_ticks_and_colour_bar():
    weights = torch.softmax(torch.randn(3, 4), -1)
    ax = heatmap(weights, x_labels=list("abcd"), y_labels=["x", "y", "z"], title="where it looks",
                 xlabel="source token", ylabel="target token")
    assert ax.get_title() == "where it looks"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("source token", "target token")
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
    (mesh,) = ax.collections
    assert mesh.colorbar is not None and mesh.colorbar.ax.get_ylabel() == "attention weight"
    assert mesh.get_clim()[0] == 0.0 and mesh.get_cmap().name == "viridis"


def test_heatmap_refuses_negative_values_on_a_sequential_scale():
    with pytest.raises(ValueError, match="signed=True"):
        heatmap(np.array([[0.5, -0.2]]), title="grad", xlabel="token")


def test_signed_heatmap_is_diverging_and_symmetric():
    ax = heatmap(np.array([[0.5, -2.0, 1.0]]), title="gradient", xlabel="token", signed=True,
                 cbar_label="gradient")
    low, high = ax.collections[0].get_clim()
    assert (low, high) == (-2.0, 2.0)
    cmap = ax.collections[0].get_cmap()
    (r0, _, b0, _), (r1, _, b1, _) = cmap(0.0), cmap(1.0)
    assert b0 > r0 and r1 > b1  # blue below zero, red above


def test_heatmap_rejects_the_wrong_number_of_labels():
    with pytest.raises(ValueError, match="3 x labels for 4"):
        heatmap(np.ones((2, 4)), x_labels=list("abc"), title="t", xlabel="x")


def test_panels_share_one_scale_and_one_colour_bar():
    a, b = np.full((2, 3), 0.2), np.full((2, 3), 0.8)
    fig = heatmap_panels({"first": a, "second": b}, x_labels=list("abc"), y_labels=["p", "q"],
                         title="two models", xlabel="source token", ylabel="target token")
    axes = [ax for ax in fig.axes if ax.get_title() in ("first", "second")]
    assert len(axes) == 2
    assert {ax.collections[0].get_clim() for ax in axes} == {(0.0, 0.8)}
    assert len(fig.axes) == 3  # two panels and the one colour bar
    assert fig.get_suptitle() == "two models"


def test_plot_training_draws_training_and_validation_per_model():
    one = History(train_loss=[2.0, 1.0, 0.5], val_loss=[2.1, 1.4, 1.2])
    ax = plot_training({"plain": one, "attention": {"train_loss": [2, 0.7], "val_loss": [2, 0.9]}})
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["plain: training", "plain: validation", "attention: training", "attention: validation"]
    assert list(ax.get_lines()[1].get_ydata()) == [2.1, 1.4, 1.2]
    assert ax.get_xlabel() == "epoch"
    single = plot_training(one)
    assert [line.get_label() for line in single.get_lines()] == ["training", "validation"]


def test_plot_training_refuses_an_empty_history():
    with pytest.raises(ValueError, match="no training loss"):
        plot_training(History())


def test_diagram_draws_boxes_shapes_and_the_role_legend():
    d = Diagram("one step")
    d.node("h", (0, 0), "encoder states", role="key/value").node("s", (0, 2), "decoder state", role="query")
    d.node("a", (3, 1), "weights", role="weights").arrow("h", "a", "[B, S, 2H]").arrow("s", "a", "[B, H]")
    ax = d.draw()
    texts = [t.get_text() for t in ax.texts]
    assert {"encoder states", "decoder state", "weights", "[B, S, 2H]", "[B, H]"} <= set(texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["keys and values", "query", "attention weights"]
    assert len(ax.patches) == 2 and ax.get_title() == "one step"


def test_diagram_errors_name_the_problem():
    d = Diagram("d").node("a", (0, 0), "a")
    with pytest.raises(KeyError, match="no node named 'b'"):
        d.arrow("a", "b")
    with pytest.raises(ValueError, match="already exists"):
        d.node("a", (1, 1), "again")
    with pytest.raises(ValueError, match="unknown role 'queries'"):
        d.node("q", (1, 1), "q", role="queries")


def test_holds_mirrors_claim_without_recording():
    assert holds(0.95, ">=", 0.9) and not holds(0.5, ">=", 0.9) and not holds(float("nan"), "<", 1)
    with pytest.raises(ValueError):
        holds(1, "==", 1)
