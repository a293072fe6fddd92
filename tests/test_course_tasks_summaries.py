"""The ``summaries`` task: one-sentence summaries whose names and numbers must be copied."""

from course.data.vocab import Vocab
from course.tasks import TASKS, load_task, summaries


def test_summary_words_are_copied_from_the_key_sentence_and_only_in_is_generated():
    for example in load_task("summaries", "test"):
        src, tgt, start = example["src"], example["tgt"], example["key_start"]
        assert len(tgt) == 7 and tgt[5] == "in"
        assert sorted(j for _, j in example["alignment"]) == [0, 1, 2, 3, 4, 6]
        for i, j in example["alignment"]:
            assert src[i] == tgt[j] and start <= i < start + summaries.KEY_LENGTH
        key = src[start:start + summaries.KEY_LENGTH]
        assert key[-3] == "on" and key[-2] in summaries.DAYS   # this week's event
        assert src.count("last") == 1 and src.count("year") == 1  # one distractor of last year


def test_key_sentence_comes_first_or_second_and_the_distractor_differs():
    examples = load_task("summaries", "train")
    firsts = sum(e["key_start"] == 0 for e in examples)
    assert 0.4 * len(examples) < firsts < 0.6 * len(examples)
    for e in examples[:200]:
        src, start = e["src"], e["key_start"]
        distractor = src[:12] if start else src[summaries.KEY_LENGTH:summaries.KEY_LENGTH + 12]
        assert distractor[-3:] == ["last", "year", "."]
        assert distractor[0] != e["tgt"][0] and distractor[7] != e["tgt"][3]  # another person, another number


def test_test_names_and_numbers_are_out_of_a_training_vocabulary():
    train, test = load_task("summaries", "train"), load_task("summaries", "test")
    vocab = Vocab.build([e["src"] + e["tgt"] for e in train], min_freq=5)
    surnames = [e["tgt"][1] for e in test]
    numbers = [e["tgt"][3] for e in test]
    assert sum(w not in vocab for w in surnames) > 0.99 * len(test)
    assert sum(w not in vocab for w in numbers) > 0.95 * len(test)
    seen = {w for e in train for w in e["src"]}
    assert sum(w in seen for w in surnames) < 0.1 * len(test)          # most never occur in training at all
    assert all(w in vocab for e in test for w in (e["tgt"][0], e["tgt"][2], e["tgt"][4], "in"))


def test_extra_distractors_keep_the_summary_and_alignment():
    example = load_task("summaries", "valid")[3]
    longer = summaries.add_distractors(example, 4, seed=1)
    assert longer["tgt"] == example["tgt"]
    assert len(longer["src"]) == len(example["src"]) + 4 * 12
    assert longer["src"].count("last") == 5
    for i, j in longer["alignment"]:
        assert longer["src"][i] == longer["tgt"][j]
    assert summaries.add_distractors(example, 4, seed=1) == longer
    assert summaries.add_distractors(example, 0, seed=1)["src"] == example["src"]


def test_generation_is_deterministic_and_registered():
    assert summaries.generate(20, 5) == summaries.generate(20, 5)
    assert summaries.generate(20, 5) != summaries.generate(20, 6)
    assert TASKS["summaries"].kind == "summarisation"


def test_passive_key_moves_the_words_and_keeps_the_alignment():
    example = load_task("summaries", "test")[7]
    passive = summaries.passive_key(example)
    assert passive["tgt"] == example["tgt"]
    moved = list(example["src"])
    moved.remove(",")                                    # the passive has one comma fewer, two new words
    assert sorted(passive["src"]) == sorted(moved + ["were", "by"])
    start = example["key_start"]
    assert passive["src"][start:start + 3] == [example["tgt"][3], example["tgt"][4], "were"]
    for i, j in passive["alignment"]:
        assert passive["src"][i] == passive["tgt"][j]
