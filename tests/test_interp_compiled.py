"""``torch.compile``d models: a capture on the compiled module records (it runs uncompiled while
captured), and a capture or ``capture_dataset`` that records nothing says so."""

from __future__ import annotations

import pytest
import torch
from test_interp_models import batches, make_seq2seq, toy_batch

import interp


@pytest.mark.slow
def test_capture_on_compiled_wrapper_records_and_compilation_comes_back():
    model, batch = make_seq2seq(), toy_batch()
    with torch.no_grad():
        with interp.capture(model, "attention") as plain:
            expected_out = model(*batch["inputs"])
        compiled = torch.compile(model, backend="eager")
        compiled(*batch["inputs"])  # warm-up: compiled before the capture starts
        forward = compiled.__dict__["forward"]
        for selection in ("attention", "_orig_mod.attention", None):
            with interp.capture(compiled, selection) as cap:
                out = compiled(*batch["inputs"])
            assert cap.names == ["attention"]
            assert len(cap.calls("attention")) == 5
            assert torch.equal(cap["attention"], plain["attention"]) and torch.equal(out, expected_out)
        assert compiled.__dict__["forward"] is forward  # compiled again afterwards


@pytest.mark.slow
def test_capture_on_model_compiled_in_place_records():
    model, batch = make_seq2seq(), toy_batch()
    model.compile(backend="eager")
    with torch.no_grad():
        model(*batch["inputs"])
        impl = model._compiled_call_impl
        with interp.capture(model, "attention") as cap:
            model(*batch["inputs"])
    assert len(cap.calls("attention")) == 5
    assert model._compiled_call_impl is impl


def test_capture_that_sees_no_call_says_so():
    model = make_seq2seq()
    with pytest.warns(RuntimeWarning, match="none of the 1 selected modules .*torch.compile"):
        with interp.capture(model, "attention"):
            pass  # e.g. the forward went through a compiled graph that skips hooks


def test_capture_dataset_that_records_nothing_says_so(tmp_path):
    model = make_seq2seq()
    with pytest.warns(RuntimeWarning, match="ran 2 batches .*recorded nothing"):
        report = interp.capture_dataset(model, batches(2), tmp_path / "s.sqlite", run="r",
                                        modules="attention", forward=lambda m, b: None,
                                        progress=False)
    assert report.records_written == 0
