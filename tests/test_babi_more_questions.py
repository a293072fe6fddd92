"""Lesson 12 trains task 3 on more questions than the bundled file holds, drawn from the same
generator with the training seed: the bundled file must be their first questions, and none of
them may repeat a validation or test question."""

from course.tasks import TASKS, load_task


def test_more_task3_questions_extend_the_bundled_file_without_held_out_ones():
    spec = TASKS["babi3"]
    bundled = load_task("babi3", "train")
    more = spec.generate(len(bundled) + 1000, spec.seeds["train"])
    assert len(more) == len(bundled) + 1000
    assert more[: len(bundled)] == bundled
    held_out = {spec.key(e) for split in ("valid", "test") for e in load_task("babi3", split)}
    assert not any(spec.key(e) in held_out for e in more)


def test_task3_questions_have_three_supporting_facts_that_name_object_and_rooms():
    spec = TASKS["babi3"]
    for example in spec.generate(300, spec.seeds["train"]):
        assert len(example["supporting"]) == 3
        facts = [example["story"][i] for i in example["supporting"]]
        obj, later = example["question"][3], example["question"][-1]
        assert any(obj in f for f in facts)
        assert any(later in f for f in facts)
        assert any(example["answer"] in f for f in facts)
