"""The ``spans`` task: the label is the number of x inside the queried, bracketed span."""

from collections import Counter

from course.tasks import TASKS, load_task, spans


def test_label_counts_the_x_inside_the_gold_span_and_only_there():
    for example in load_task("spans", "test"):
        tokens, query = example["tokens"], example["query"]
        start, end = example["span"]
        assert example["spans"][query] == [start, end]
        assert tokens[start] == spans.opener(query) and tokens[end - 1] == spans.closer(query)
        assert spans.MIN_CONTENT <= end - start - 2 <= spans.MAX_CONTENT
        inside = [i for i in range(start + 1, end - 1) if tokens[i] == spans.COUNTED]
        assert inside == example["x_positions"] and str(len(inside)) == example["label"]
        assert tokens.count(spans.opener(query)) == 1 and tokens.count(spans.closer(query)) == 1


def test_spans_are_disjoint_named_and_the_count_is_not_given_away():
    examples = load_task("spans", "train")
    labels = Counter(e["label"] for e in examples)
    assert set(labels) == set(spans.LABELS) and min(labels.values()) > 0.15 * len(examples)
    outside_x = 0
    for example in examples:
        intervals = sorted(example["spans"].values())
        assert 2 <= len(intervals) <= 3
        assert all(a[1] < b[0] for a, b in zip(intervals, intervals[1:]))  # at least one filler between
        start, end = example["span"]
        outside_x += sum(t == spans.COUNTED for i, t in enumerate(example["tokens"]) if not start <= i < end)
    # x also occurs outside the queried span, so counting every x in the sequence does not work
    assert outside_x > len(examples)
    total = Counter(min(e["tokens"].count(spans.COUNTED), spans.MAX_COUNT) == int(e["label"]) for e in examples)
    assert total[True] < 0.3 * len(examples)


def test_generation_is_deterministic_and_registered():
    assert spans.generate(20, 5) == spans.generate(20, 5)
    assert spans.generate(20, 5) != spans.generate(20, 6)
    assert TASKS["spans"].kind == "classification"
    assert {"tokens", "query", "label", "span"} <= set(TASKS["spans"].fields)
