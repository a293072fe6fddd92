"""The bundled tasks: deterministic, shipped files match the generators, alignments are right."""

import gzip
import json

import pytest

from course.tasks import TASKS, dates, generate_task, load_task, reorder, task_path
from course.tasks.registry import to_jsonl_gz


@pytest.mark.parametrize("name", sorted(TASKS))
def test_shipped_files_equal_regeneration(name):
    for split in ("valid", "test"):
        assert task_path(name, split).read_bytes() == to_jsonl_gz(generate_task(name, split)), split


@pytest.mark.parametrize("name", sorted(TASKS))
def test_splits_do_not_overlap(name):
    key = TASKS[name].key
    train = {key(e) for e in load_task(name, "train")}
    for split in ("valid", "test"):
        assert not train & {key(e) for e in load_task(name, split)}


@pytest.mark.parametrize("name", sorted(n for n, spec in TASKS.items() if spec.kind == "seq2seq"))
def test_alignment_indices_are_in_range_and_cover_the_target(name):
    for example in load_task(name, "valid"):
        src, tgt = example["src"], example["tgt"]
        for i, j in example["alignment"]:
            assert 0 <= i < len(src) and 0 <= j < len(tgt)
        aligned_targets = {j for _, j in example["alignment"]}
        unaligned = [tgt[j] for j in range(len(tgt)) if j not in aligned_targets]
        assert set(unaligned) <= {"-"}  # only the ISO dashes translate nothing


def test_date_alignments_point_at_the_right_tokens():
    import datetime as dt

    ex = dates.make_example(dt.date(2021, 3, 7), "fr_FR", "full")
    assert ex["src"] == ["dimanche", "7", "mars", "2", "0", "2", "1"]
    assert "".join(ex["tgt"]) == "2021-03-07"
    links = {(i, j) for i, j in ex["alignment"]}
    assert {(3, 0), (4, 1), (5, 2), (6, 3)} <= links      # year digits one-to-one
    assert {(2, 5), (2, 6)} <= links                      # month name -> both month digits
    assert {(1, 9), (1, 8)} <= links                      # "7" -> "0 7"
    assert not any(i == 0 for i, _ in links)              # the weekday translates nothing


def test_reorder_alignments_follow_the_grammar():
    rng = reorder.random.Random(5)
    for _ in range(200):
        ex = reorder.make_sentence(rng, rng.randint(1, 5))
        for i, j in ex["alignment"]:
            s, t = ex["src"][i], ex["tgt"][j]
            if s in reorder.NOUNS:
                assert t.startswith(reorder.LEXICON["noun"][s])
            elif s in reorder.ADJECTIVES:
                assert t == reorder.LEXICON["adj"][s]
            elif s in ("the",):
                assert t.endswith("ta")
            elif s in reorder.CONJUNCTIONS:
                assert t == reorder.LEXICON["conj"][s]
    # many-to-one: "does not see" is one target token
    negated = [e for e in reorder.generate(50, 3) if "not" in e["src"]][0]
    i = negated["src"].index("not")
    j = next(j for s, j in negated["alignment"] if s == i)
    assert sorted(s for s, jj in negated["alignment"] if jj == j) == [i - 1, i, i + 1]


def test_reorder_reaches_long_sources():
    lengths = [len(e["src"]) for e in load_task("reorder", "test")]
    assert max(lengths) >= 40 and min(lengths) < 10
    assert sum(n >= 40 for n in lengths) >= 100  # enough long examples to measure on


def test_generation_is_deterministic():
    assert reorder.generate(20, 9) == reorder.generate(20, 9)
    assert dates.generate(20, 9) == dates.generate(20, 9)


def test_loader_errors(tmp_path):
    with pytest.raises(KeyError, match="unknown task"):
        load_task("nope", "train")
    with pytest.raises(KeyError, match="unknown split"):
        load_task("dates", "dev")
    with pytest.raises(FileNotFoundError, match="python -m course.tasks build"):
        load_task("dates", "train", data_dir=tmp_path)
    bad = tmp_path / "dates" / "train.jsonl.gz"
    bad.parent.mkdir()
    with gzip.open(bad, "wt") as f:
        f.write(json.dumps({"src": ["a"], "tgt": ["b"], "alignment": []}) + "\n{broken\n")
    with pytest.raises(ValueError, match=r"train.jsonl.gz:2"):
        load_task("dates", "train", data_dir=tmp_path)


def test_gold_matrices_sure_and_possible():
    from course.alignments import batch_gold_matrices, gold_matrices

    # target 0 <- sources 0 and 1 ("the dog"); target 1 <- source 2
    sure, possible = gold_matrices([[0, 0], [1, 0], [2, 1]], src_len=3, tgt_len=2)
    assert possible.tolist() == [[True, True, False], [False, False, True]]
    assert sure.tolist() == [[False, False, False], [False, False, True]]
    with pytest.raises(ValueError, match="outside"):
        gold_matrices([[5, 0]], src_len=3, tgt_len=2)
    s, p = batch_gold_matrices([{"src": ["a", "b", "c"], "tgt": ["x", "y"],
                                 "alignment": [[0, 0], [1, 0], [2, 1]]}], 4, 3)
    assert s.shape == p.shape == (1, 3, 4) and p[0, :2, :3].tolist() == possible.tolist()


def test_perfect_attention_scores_zero_aer_on_gold():
    import numpy as np

    from course.alignments import gold_matrices
    from interp.compare import alignment_error_rate, attention_to_alignment

    for ex in load_task("reorder", "valid")[:20]:
        sure, possible = gold_matrices(ex["alignment"], len(ex["src"]), len(ex["tgt"]))
        attention = possible / possible.sum(1, keepdims=True)  # spread over the gold sources
        links = attention_to_alignment(attention)
        assert alignment_error_rate(links, sure, possible)["aer"].iloc[0] == 0.0
        shifted = np.roll(links, 1, axis=1)  # every target pointing one source to the right
        assert alignment_error_rate(shifted, sure, possible)["aer"].iloc[0] > 0.5
