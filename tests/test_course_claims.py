"""The claim helper asserts and records; the ablation really disables attention."""

from __future__ import annotations

import json

import pytest
import torch

from course.ablations import UniformNormalizer, uniform_attention
from course.claims import claim, finding
from course.seq2seq import Seq2SeqConfig, build_seq2seq


def test_claim_holds_records_and_returns(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(log))
    assert claim("gain", 12.0, ">=", 10, breaks="uniform attention") is True
    finding("spread", 3.5)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["name"] for r in records] == ["gain", "spread"]
    assert records[0]["holds"] is True and records[0]["threshold"] == 10.0
    assert records[1]["kind"] == "finding" and records[1]["holds"] is None


def test_failing_claim_raises_unless_recording(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("COURSE_CLAIMS_FILE", str(log))
    with pytest.raises(AssertionError, match="measured 4, expected >= 10"):
        claim("gain", 4, ">=", 10, breaks="uniform attention")
    monkeypatch.setenv("COURSE_CLAIMS_MODE", "record")
    assert claim("gain", 4, ">=", 10, breaks="uniform attention") is False
    assert [json.loads(line)["holds"] for line in log.read_text().splitlines()] == [False, False]


def test_nan_never_holds_and_bad_input_is_refused(monkeypatch):
    monkeypatch.delenv("COURSE_CLAIMS_FILE", raising=False)
    with pytest.raises(AssertionError):
        claim("nan", float("nan"), "<", 1, breaks="x")
    with pytest.raises(ValueError, match="op must be one of"):
        claim("op", 1, "==", 1, breaks="x")
    with pytest.raises(ValueError, match="broken mechanism"):
        claim("no breaks", 1, ">", 0, breaks="")
    with pytest.raises(TypeError, match="must be a number"):
        claim("text", "high", ">", 0, breaks="x")


def test_uniform_attention_replaces_the_normaliser_and_flattens_weights():
    config = Seq2SeqConfig(9, 9, decoder="bahdanau", embed_dim=8, hidden_size=8, attention_units=8)
    model = build_seq2seq(config).eval()
    assert uniform_attention(model) == 1
    assert isinstance(model.decoder.attention.normalizer, UniformNormalizer)
    src = torch.tensor([[4, 5, 6, 7], [4, 5, 0, 0]])
    out = model(src, torch.tensor([4, 2]), torch.tensor([[1, 4, 5], [1, 4, 5]]))
    torch.testing.assert_close(out.attention[0], torch.full((3, 4), 0.25))
    torch.testing.assert_close(out.attention[1], torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 3))
    assert uniform_attention(model) == 0  # already ablated: idempotent


@pytest.mark.parametrize("score", ["dot", "multihead"])
def test_uniform_attention_keeps_one_row_per_query_on_the_parallel_luong_path(score):
    # Luong without input feeding attends from every target step at once: the uniform weights
    # must have one row per step (a [batch, keys] mask used to give a single row)
    config = Seq2SeqConfig(9, 9, decoder="luong", score=score, heads=2 if score == "multihead" else 1,
                           embed_dim=8, hidden_size=8, bidirectional=score == "multihead")
    model = build_seq2seq(config).eval()
    uniform_attention(model)
    assert model.decoder.can_run_parallel
    src = torch.tensor([[4, 5, 6, 7], [4, 5, 0, 0]])
    out = model(src, torch.tensor([4, 2]), torch.tensor([[1, 4, 5], [1, 4, 5]]))
    assert out.logits.shape == (2, 3, 9)
    rows = out.attention if score == "dot" else out.attention[:, 0]
    torch.testing.assert_close(rows[0], torch.full((3, 4), 0.25))
    torch.testing.assert_close(rows[1], torch.tensor([[0.5, 0.5, 0.0, 0.0]] * 3))


def test_uniform_attention_refuses_a_model_without_attention():
    with pytest.raises(ValueError, match="no attention normaliser"):
        uniform_attention(torch.nn.Linear(2, 2))
