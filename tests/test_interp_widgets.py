"""The explorer without a browser: every control changes what is shown, tokens stay text, data
comes from example dicts, captured batches or a store, and the static fallback is a real PNG."""

from __future__ import annotations

import io

import IPython.display
import numpy as np
import pytest
import torch
from PIL import Image

from interp import Store
from interp.explorer_data import MemoryData, examples_from_batch
from interp.render import HIGHLIGHT_RGB, highlight_html, rank_rows, render_heatmap
from interp.widgets import Explorer, explore

EVIL = ["<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=1">', "a&b"]


def _attention(rng, *shape):
    w = rng.random(shape)
    return w / w.sum(-1, keepdims=True)


def _example(ex_id, rng, *, heads=0, run="", n_tgt=4, n_src=6):
    shape = (heads, n_tgt, n_src) if heads else (n_tgt, n_src)
    return {
        "id": ex_id, "run": run,
        "source": ([f"s{i}" for i in range(n_src - 3)] + EVIL)[:n_src],
        "target": [f"t{i}" for i in range(n_tgt)],
        "attention": {"cross": _attention(rng, *shape), "other": _attention(rng, *shape)},
        "attributions": {"ig": rng.normal(size=(n_tgt, n_src)), "saliency": rng.random((n_tgt, n_src))},
    }


@pytest.fixture
def explorer():
    rng = np.random.default_rng(0)
    examples = [_example("a", rng, run="r1"), _example("a", rng, run="r2", heads=3),
                _example("b", rng, run="r1", n_tgt=5, n_src=7)]
    return explore(examples)


def _shown(e: Explorer) -> tuple[bytes, str, str]:
    return e.image.value, e.caption.value, e.tokens.value


@pytest.mark.parametrize("control, value, changes", [
    ("step", 2, {"image", "caption", "tokens"}),
    ("view", "attribution", {"image", "caption"}),
    ("view", "difference", {"image", "caption"}),
    ("view", "rank", {"image", "caption"}),
    ("module", "other", {"image", "tokens"}),
    ("example", "b", {"image", "caption", "tokens"}),
    ("run", "r2", {"image", "caption", "tokens"}),
])
def test_each_control_changes_what_is_shown(explorer, control, value, changes):
    before = dict(zip(("image", "caption", "tokens"), _shown(explorer)))
    explorer.controls[control].value = value
    after = dict(zip(("image", "caption", "tokens"), _shown(explorer)))
    changed = {k for k in before if before[k] != after[k]}
    assert changes <= changed, f"{control}={value!r} changed only {changed}"
    assert getattr(explorer.state, control) == value


def test_method_changes_attribution_image_and_tokens(explorer):
    explorer.controls["view"].value = "attribution"
    before = _shown(explorer)
    explorer.controls["method"].value = "saliency"
    after = _shown(explorer)
    assert before[0] != after[0] and before[2] != after[2]
    assert "saliency" in after[1]


def test_head_control_appears_for_multi_head_weights_and_changes_the_image(explorer):
    assert explorer.controls["head"].layout.display == "none"
    explorer.controls["run"].value = "r2"
    assert explorer.controls["head"].layout.display is None
    assert explorer.controls["head"].value == "mean"
    before = explorer.image.value
    explorer.controls["head"].value = 1
    assert explorer.image.value != before
    assert "head 1" in explorer.caption.value or explorer.state.head == 1


def _highlight_rows(png: bytes) -> set[int]:
    arr = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    ys, _ = np.nonzero(np.all(arr == HIGHLIGHT_RGB, axis=-1))
    return set(ys.tolist())


def test_moving_the_step_moves_the_highlighted_row(explorer):
    rows0 = _highlight_rows(explorer.image.value)
    explorer.controls["step"].value = 3
    rows3 = _highlight_rows(explorer.image.value)
    assert rows0 and rows3
    assert min(rows3) > max(rows0), "the outlined row should move down with the step"
    assert 'outline:2px solid #f22">t3<' in explorer.tokens.value


def test_tokens_are_escaped_everywhere(explorer):
    for view in ("attention", "tokens"):
        explorer.controls["view"].value = view
        shown = explorer.tokens.value + explorer.caption.value
        assert "<script" not in shown and "<img" not in shown
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in shown
        assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in shown
        assert "a&amp;b" in shown
    page = explorer.html()
    assert "<script" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page


def test_target_tokens_are_escaped_in_the_caption():
    rng = np.random.default_rng(1)
    ex = {"source": ["x", "y"], "target": ["<b>bold</b>", "&"], "attention": _attention(rng, 2, 2)}
    e = explore(ex)
    assert "&lt;b&gt;bold&lt;/b&gt;" in e.caption.value and "<b>bold" not in e.caption.value


def test_highlight_html_colours_by_score_and_escapes():
    out = highlight_html(["<i>", "b"], [0.9, 0.1])
    assert out.count('class="interp-token"') == 2 and "&lt;i&gt;" in out and "<i>" not in out
    colours = [part.split("background:")[1][:7] for part in out.split('class="interp-token"')[1:]]
    assert colours[0] != colours[1]
    with pytest.raises(ValueError, match="2 tokens but 3 scores"):
        highlight_html(["a", "b"], [1, 2, 3])


def test_only_controls_with_a_choice_are_shown():
    rng = np.random.default_rng(5)
    e = explore([_example("a", rng), _example("b", rng)])
    shown = {name for name, c in e.controls.items() if c.layout.display != "none"}
    assert shown == {"example", "module", "method", "step", "view"}


def test_views_without_an_attribution_are_not_offered():
    rng = np.random.default_rng(2)
    e = explore([{"source": list("abc"), "target": list("xy"), "attention": _attention(rng, 2, 3)}])
    assert list(e.controls["view"].options) == ["attention", "tokens"]
    assert e.controls["method"].layout.display == "none"


def test_classifier_has_no_step_and_a_long_input_stays_one_readable_image():
    rng = np.random.default_rng(3)
    n = 1000
    e = explore({"source": [f"w{i}" for i in range(n)], "attention": _attention(rng, n),
                 "attributions": {"ig": rng.normal(size=n)}})
    assert e.controls["step"].layout.display == "none"
    img = Image.open(io.BytesIO(e.image.value))
    assert img.height > 100 and img.width < 1400, "1,000 tokens should fold into lines"
    assert e.tokens.value.count('class="interp-token"') == 2 * n
    e.controls["view"].value = "tokens"
    assert e.image.layout.display == "none"


def test_renders_are_cached_by_state(explorer):
    first = explorer.render()
    explorer.controls["step"].value = 1
    explorer.controls["step"].value = 0
    assert explorer.render() is first


def test_examples_from_a_captured_batch_are_cut_to_their_lengths():
    weights = torch.rand(2, 4, 5)
    scores = torch.rand(2, 4, 5)
    exs = examples_from_batch({"attn": weights}, [list("abc"), list("abcde")], [list("xy"), list("wxyz")],
                              attributions={"ig": scores}, ids=["p", "q"])
    assert [e["id"] for e in exs] == ["p", "q"]
    assert exs[0]["attention"]["attn"].shape == (2, 3)
    assert exs[1]["attention"]["attn"].shape == (4, 5)
    np.testing.assert_allclose(exs[0]["attributions"]["ig"], scores[0, :2, :3].numpy())
    e = explore({"attn": weights}, source=[list("abc"), list("abcde")], target=[list("xy"), list("wxyz")])
    assert list(e.controls["example"].options) == ["0", "1"]
    cls = examples_from_batch(torch.rand(2, 1, 6), [list("abc"), list("abcdef")])
    assert cls[0]["attention"]["attention"].shape == (1, 3)


def test_explore_a_store(tmp_path):
    rng = np.random.default_rng(4)
    src, tgt = ["le", "<script>", "&"], ["the", "cat"]
    with Store(tmp_path / "s.sqlite") as store:
        for run in ("base", "other"):
            for ex in ("0", "1"):
                store.add(_attention(rng, 2, 3).astype(np.float32), run=run, module="dec.attn",
                          example=ex, source=src, target=tgt)
                store.add(rng.normal(size=(2, 3)).astype(np.float32), run=run, module="embed",
                          example=ex, kind="integrated_gradients", source=src, target=tgt)
        e = explore(store, run="base")
        assert list(e.controls["example"].options) == ["0", "1"]
        assert e.controls["run"].layout.display == "none"
        assert e.state.module == "dec.attn" and e.state.method == "integrated_gradients"
        stored = store.one(run="base", module="dec.attn", example="0").array()
        assert e.data.attention("0", "base", "dec.attn").tolist() == stored.tolist()
        before = e.image.value
        e.controls["example"].value = "1"
        assert e.image.value != before
        assert "&lt;script&gt;" in e.tokens.value
        with pytest.raises(ValueError, match="no records"):
            explore(store, run="missing")


def test_static_export_and_fallback(explorer, tmp_path, monkeypatch):
    png, page = explorer.export(tmp_path / "out")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text(encoding="utf-8")
    assert "data:image/png;base64," in text and "<script" not in text
    explorer.controls["view"].value = "tokens"
    assert explorer.png()[:4] == b"\x89PNG", "the tokens view still exports a heatmap"
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    explorer._ipython_display_()
    assert shown[0] is explorer.widget
    assert isinstance(shown[1], IPython.display.Image) and shown[1].data == explorer.png()
    explorer.fallback = False
    shown.clear()
    explorer._ipython_display_()
    assert shown == [explorer.widget]


@pytest.mark.parametrize("data, message", [
    ([{"source": ["a"], "attention": np.ones((1, 1)), "colour": 1}], "unknown keys"),
    ([{"source": "a b", "attention": np.ones((1, 2))}], "not one string"),
    ([{"attention": np.ones((1, 1, 1, 1))}], "index the batch first"),
    ([{"source": ["a"]}], "neither 'attention' nor 'attributions'"),
    ([], "no examples"),
    (42, "cannot explore a int"),
])
def test_bad_input_says_what_to_do(data, message):
    with pytest.raises((TypeError, ValueError), match=message):
        explore(data)


def test_bad_arguments():
    ex = {"attention": np.ones((2, 2)) / 2}
    with pytest.raises(ValueError, match="view must be one of"):
        explore(ex, view="sideways")
    with pytest.raises(TypeError, match="only apply to a Store"):
        explore(ex, run="x")
    with pytest.raises(KeyError, match="unknown controls"):
        explore(ex).set(colour="red")
    with pytest.raises(ValueError, match="given twice"):
        MemoryData([{"id": 1, **ex}, {"id": 1, **ex}])


def test_render_heatmap_is_a_png_whose_colours_follow_the_values():
    small = render_heatmap(np.array([[0.0, 1.0]]), col_labels=["lo", "hi"], cmap="gray")
    arr = np.asarray(Image.open(io.BytesIO(small)).convert("L"))
    assert arr.max() > 200 and arr.min() < 50
    with pytest.raises(ValueError, match="empty"):
        render_heatmap(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="unknown colormap"):
        render_heatmap(np.ones((2, 2)), cmap="nope")


def test_rank_rows_ranks_by_magnitude():
    assert rank_rows(np.array([[0.1, -0.9, 0.5]])).tolist() == [[3.0, 1.0, 2.0]]
