"""Lesson 18's data and model: digit images composed from scikit-learn's scans, and Show, Attend and Tell."""

import numpy as np
import pytest
import torch

from course.ablations import UniformNormalizer, uniform_attention
from course.attention.normalizers import HardNormalizer
from course.datasets.digit_captions import (
    CELL,
    GRID,
    WORDS,
    cell_box,
    compose,
    load_digit_captions,
    load_scans,
    region_masks,
    split_scans,
)
from course.models.show_attend_tell import ShowAttendTell, caption_loss_terms, localisation


def test_compose_is_deterministic_and_seeded():
    pool = split_scans()["train"]
    a, b = compose(pool, 50, seed=5), compose(pool, 50, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.digits == b.digits and a.scans == b.scans and a.boxes == b.boxes
    assert not np.array_equal(a.images, compose(pool, 50, seed=6).images)
    np.testing.assert_array_equal(load_digit_captions("test", 20).images, load_digit_captions("test").images[:20])


def test_gold_boxes_hold_the_pasted_scan_and_nothing_else():
    scans, labels = load_scans()
    data = load_digit_captions("valid", 200)
    assert data.images.shape == (200, GRID[0] * CELL, GRID[1] * CELL)
    for image, digits, scan_ids, cells, boxes, words in zip(data.images, data.digits, data.scans, data.cells,
                                                            data.boxes, data.captions()):
        assert 2 <= len(digits) <= 4 and cells == sorted(set(cells))        # distinct cells, reading order
        ink = np.zeros_like(image, dtype=bool)
        for digit, scan, cell, box, word in zip(digits, scan_ids, cells, boxes, words):
            top, left, bottom, right = box
            assert box == cell_box(cell) and digit == labels[scan] and word == WORDS[digit]
            np.testing.assert_array_equal(image[top:bottom, left:right], scans[scan])
            ink[top:bottom, left:right] = True
        assert not image[~ink].any()                                     # nothing outside the boxes


def test_splits_use_disjoint_scans_covering_all():
    splits = split_scans()
    sets = {name: set(ids.tolist()) for name, ids in splits.items()}
    assert not sets["train"] & sets["valid"] and not sets["train"] & sets["test"] and not sets["valid"] & sets["test"]
    assert len(sets["train"] | sets["valid"] | sets["test"]) == len(load_scans()[1]) == 1797
    for split in ("train", "valid", "test"):
        used = {s for scans in load_digit_captions(split, 300).scans for s in scans}
        assert used <= sets[split]


def test_region_masks_mark_the_four_regions_of_each_box():
    data = load_digit_captions("test", 30)
    masks = region_masks(data, (4, 8), length=5)
    assert masks.shape == (30, 5, 32)
    for i, cells in enumerate(data.cells):
        for t in range(5):
            if t >= len(cells):
                assert not masks[i, t].any()
                continue
            row, column = divmod(cells[t], GRID[1])
            expected = np.zeros((4, 8), dtype=bool)
            expected[2 * row:2 * row + 2, 2 * column:2 * column + 2] = True
            np.testing.assert_array_equal(masks[i, t].reshape(4, 8), expected)
    with pytest.raises(ValueError, match="tile"):
        region_masks(data, (3, 8))


def test_compose_rejects_bad_settings():
    with pytest.raises(ValueError, match="digits per image"):
        compose(split_scans()["train"], 3, 0, digits=(2, 9))
    with pytest.raises(KeyError, match="split"):
        load_digit_captions("dev")


def batch(size=6, length=4):
    torch.manual_seed(0)
    images = torch.rand(size, 16, 32)
    tgt = torch.randint(3, 13, (size, length + 1))
    return images, tgt[:, :-1], tgt[:, 1:]


def test_soft_attention_weights_are_distributions_and_greedy_matches_forward():
    model = ShowAttendTell(13).eval()
    images, tgt_in, tgt_out = batch()
    out = model(images, tgt_in)
    assert out.logits.shape == (6, 4, 13) and out.weights.shape == (6, 4, 32) and out.log_prob is None
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(6, 4))
    words, weights = model.greedy(images, bos=1, eos=2, max_length=4)
    again = model(images, torch.cat([torch.ones(6, 1, dtype=torch.long), words[:, :-1]], 1))
    torch.testing.assert_close(weights, again.weights)
    torch.testing.assert_close(again.logits.argmax(-1), words)


def test_hard_attention_samples_in_training_and_takes_the_argmax_in_eval():
    model = ShowAttendTell(13, normalizer=HardNormalizer("reinforce"))
    images, tgt_in, tgt_out = batch()
    model.train()
    terms = caption_loss_terms(model, images, tgt_in, tgt_out, samples=3)
    assert {"cross_entropy", "reinforce", "total"} <= terms.keys()
    terms["total"].backward()
    assert model.attention.score.v.weight.grad.abs().sum() > 0            # REINFORCE reaches the scorer
    model.eval()
    out = model(images, tgt_in)
    assert out.log_prob is None and set(out.weights.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(6, 4))


def test_decoding_samples_copies_equals_decoding_repeated_images():
    model = ShowAttendTell(13).eval()
    images, tgt_in, _ = batch()
    together = model(images, tgt_in.repeat_interleave(3, 0), samples=3)
    apart = model(images.repeat_interleave(3, 0), tgt_in.repeat_interleave(3, 0))
    torch.testing.assert_close(together.logits, apart.logits)
    with pytest.raises(ValueError, match="captions"):
        model(images, tgt_in, samples=2)


def test_uniform_ablation_replaces_the_decoder_attention():
    model = ShowAttendTell(13)
    assert uniform_attention(model) == 1 and isinstance(model.attention.normalizer, UniformNormalizer)
    images, tgt_in, _ = batch()
    torch.testing.assert_close(model.eval()(images, tgt_in).weights, torch.full((6, 4, 32), 1 / 32))


def test_localisation_counts_hits_mass_and_chance():
    gold = torch.zeros(1, 2, 4, dtype=torch.bool)
    gold[0, 0, :2] = True
    gold[0, 1, 3] = True
    weights = torch.tensor([[[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]]])
    result = localisation(weights, gold, torch.tensor([[True, True]]))
    assert result["hit"] == pytest.approx(0.5) and result["mass"] == pytest.approx((0.7 + 0.1) / 2)
    assert result["chance"] == pytest.approx((0.5 + 0.25) / 2)
    only_first = localisation(weights, gold, torch.tensor([[True, False]]))
    assert only_first["hit"] == 1.0
    with pytest.raises(ValueError, match="no word"):
        localisation(weights, gold, torch.zeros(1, 2, dtype=torch.bool))


def test_expected_attention_trains_hard_attention_on_the_soft_weights_when_drawn():
    images, tgt_in, tgt_out = batch()
    always = ShowAttendTell(13, normalizer=HardNormalizer("reinforce"), expected_attention=1.0).train()
    out = always(images, tgt_in)
    assert out.log_prob is None and not set(out.weights.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(6, 4))
    terms = caption_loss_terms(always, images, tgt_in, tgt_out, samples=2)
    assert "reinforce" not in terms
    always.eval()
    assert set(always(images, tgt_in).weights.unique().tolist()) == {0.0, 1.0}     # eval: the argmax
    never = ShowAttendTell(13, normalizer=HardNormalizer("reinforce"), expected_attention=0.0).train()
    assert never(images, tgt_in).log_prob is not None
    with pytest.raises(ValueError, match="probability"):
        ShowAttendTell(13, expected_attention=1.5)
