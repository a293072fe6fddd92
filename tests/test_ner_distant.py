"""The ``ner_distant`` task: only the distant cue word decides whether a surname is PER or ORG."""

from collections import Counter

from course.ner_metrics import bio_spans
from course.tasks import TASKS, load_task, ner_distant


def test_every_person_or_company_follows_the_cue_15_to_40_tokens_back():
    for example in load_task("ner_distant", "test"):
        tokens, tags, cue = example["tokens"], example["tags"], example["cue"]
        assert len(tokens) == len(tags)
        start, end = example["cue_sentence"]
        assert start <= cue < end and tokens[end - 1] == "." and all(t == "O" for t in tags[start:end])
        kind = "PER" if tokens[cue] in ner_distant.PERSON_CUES else "ORG"
        assert tokens[cue] in ner_distant.PERSON_CUES + ner_distant.COMPANY_CUES
        mentions = [(k, s) for k, s, _ in bio_spans(tags) if k != "LOC"]
        assert mentions and all(k == kind for k, _ in mentions)
        assert all(ner_distant.MIN_DISTANCE <= s - cue <= ner_distant.MAX_DISTANCE for _, s in mentions)
        assert len({tokens[s] for _, s in mentions}) == 1  # one surname per item
        for d in example["distractors"]:
            assert d >= end and tokens[d] in ner_distant.PERSON_CUES + ner_distant.COMPANY_CUES


def test_neither_the_surname_nor_its_neighbours_give_the_type_away():
    examples = load_task("ner_distant", "train")
    contexts = {"PER": Counter(), "ORG": Counter()}
    for example in examples:
        tokens = example["tokens"]
        for kind, s, e in bio_spans(example["tags"]):
            if kind != "LOC":
                contexts[kind][(tokens[s - 1] if s else "<s>", tokens[e])] += 1
    # every local context (word before, word after) occurs with both types
    assert set(contexts["PER"]) == set(contexts["ORG"])
    kinds = Counter(k for e in examples for k, _, _ in bio_spans(e["tags"]) if k != "LOC")
    assert 0.4 < kinds["PER"] / (kinds["PER"] + kinds["ORG"]) < 0.6
    share = sum(bool(e["distractors"]) for e in examples) / len(examples)
    assert 0.3 < share < 0.45  # items with a distractor are longer, so more often redrawn


def test_generation_is_deterministic_and_registered_as_tagging():
    assert ner_distant.generate(5, 7) == ner_distant.generate(5, 7)
    assert TASKS["ner_distant"].kind == "tagging"
    assert {"cue", "cue_sentence", "distractors"} <= set(TASKS["ner_distant"].fields)
