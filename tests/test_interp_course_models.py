"""Every attention variant of the course passes capture's validation and is found automatically:
the captured weights equal the attention the model returns, outputs unchanged."""

from __future__ import annotations

import pytest
import torch
from test_course_variants_models import VARIANTS

import interp
from course.seeding import seed_everything

from conftest import make_model


@pytest.mark.parametrize("variant", VARIANTS)
def test_course_variant_captured_automatically_and_equal_to_returned_attention(toy_batch, toy_vocab, variant):
    seed_everything(0)
    model = make_model(toy_vocab, **VARIANTS[variant]).eval()
    args = (toy_batch.src, toy_batch.src_lengths, toy_batch.tgt_in)
    with torch.no_grad():
        before = model(*args)
        with interp.capture(model) as auto:
            during = model(*args)
        with interp.capture(model, "decoder.attention") as named:
            model(*args)
    assert auto.names == ["decoder.attention"]
    assert torch.equal(auto["decoder.attention"], before.attention)
    assert torch.equal(named["decoder.attention"], before.attention)
    assert torch.equal(during.logits, before.logits)
