import pytest

from course.ner_metrics import bio_spans, span_f1


def test_spans_follow_bio_and_conll_rules():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG", "I-ORG", "O", "I-PER"]
    assert bio_spans(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 5), ("ORG", 5, 7), ("PER", 8, 9)]
    assert bio_spans([]) == []
    assert bio_spans(["O", "O"]) == []


def test_span_f1_counts_exact_matches_only():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"]]  # the person is cut short
    scores = span_f1(gold, predicted)
    assert scores["all"]["precision"] == pytest.approx(2 / 3)
    assert scores["all"]["recall"] == pytest.approx(2 / 3)
    assert scores["all"]["f1"] == pytest.approx(2 / 3)
    assert scores["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert scores["LOC"]["f1"] == 1.0 and scores["ORG"]["support"] == 1


def test_span_f1_wrong_type_is_a_miss_and_empty_is_zero():
    assert span_f1([["B-PER"]], [["B-LOC"]])["all"]["f1"] == 0.0
    assert span_f1([["O"]], [["O"]])["all"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_span_f1_rejects_mismatches():
    with pytest.raises(ValueError, match="sentence 0"):
        span_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="2 gold sentences"):
        span_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="BIO tags"):
        bio_spans(["PER"])
