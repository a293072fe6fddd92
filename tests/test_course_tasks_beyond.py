"""The non-translation bundled tasks: labels follow from the planted evidence, gold is right."""

import pytest

from course.tasks import TASKS, babi, documents, load_task, ner, nli, reviews

MINE = ["reviews", "documents", "nli", "babi1", "babi2", "babi3", "ner"]


@pytest.mark.parametrize("name", MINE)
def test_registered_with_fields_and_loadable(name):
    spec = TASKS[name]
    examples = load_task(name, "valid")
    assert len(examples) >= 250
    assert all(set(spec.fields) <= e.keys() for e in examples)
    assert spec.generate(5, 3) == spec.generate(5, 3)


def cue_polarity(tokens, position):
    """+1 / -1 for the sentiment word at ``position``, flipped by a negator two or one tokens back."""
    polarity = 1 if tokens[position] in reviews.POSITIVE else -1
    window = tokens[max(0, position - 2):position]
    return -polarity if any(t in reviews.NEGATORS for t in window) else polarity


def test_review_labels_follow_the_cues_and_rationale_marks_them():
    for example in load_task("reviews", "test"):
        tokens, rationale = example["tokens"], example["rationale"]
        assert 100 <= len(tokens) <= 420
        words = [i for i in rationale if tokens[i] in reviews.POSITIVE + reviews.NEGATIVE]
        negators = [i for i in rationale if tokens[i] in reviews.NEGATORS]
        assert 1 <= len(words) <= 3 and len(words) + len(negators) == len(rationale)
        want = 1 if example["label"] == "positive" else -1
        assert all(cue_polarity(tokens, i) == want for i in words)
        # no sentiment word outside the rationale: the cues alone decide
        assert not [i for i, t in enumerate(tokens) if t in reviews.POSITIVE + reviews.NEGATIVE and i not in words]


def test_reviews_contain_distractor_negations():
    examples = load_task("reviews", "valid")
    outside = sum(t in reviews.NEGATORS for e in examples for i, t in enumerate(e["tokens"]) if i not in e["rationale"])
    assert outside > len(examples)  # "not" mostly appears where it decides nothing


VOTE_VERBS = {"voted", "decided", "agreed", "chose"}  # the verbs of the vote frames, and only there


def body_of(sentence):
    """The voting body of a vote sentence (the word after its first "the" that names a body)."""
    return next(w for w in sentence if w in documents.BODIES)


def test_documents_highest_voting_body_decides():
    assert all(VOTE_VERBS & set(frame.split()) for frame in documents.VOTE_FRAMES)
    assert not any(VOTE_VERBS & set(frame.split()) for frame in documents.OPINION_FRAMES + documents.FILLER_FRAMES)
    for example in load_task("documents", "test"):
        sentences, key, votes = example["sentences"], example["key_sentence"], example["votes"]
        assert 8 <= len(sentences) <= 16
        assert sentences[key][example["key_word"]] == example["label"]
        assert votes == [i for i, s in enumerate(sentences) if VOTE_VERBS & set(s)] and key in votes
        ranks = {i: documents.BODIES.index(body_of(sentences[i])) for i in votes}
        assert ranks[key] == example["authority"] == max(ranks.values())
        assert [i for i in votes if ranks[i] == ranks[key]] == [key]  # the only vote of the deciding body
        assert example["authority"] == 0 or 3 <= len(votes) - 1 <= 6


def test_documents_deciding_body_varies_and_votes_do_not_count():
    examples = load_task("documents", "valid")
    deciding = {documents.BODIES[e["authority"]] for e in examples}
    overridden = {body_of(e["sentences"][i]) for e in examples for i in e["votes"] if i != e["key_sentence"]}
    assert deciding == set(documents.BODIES) and overridden == set(documents.BODIES[:-1])
    def verbs(e):
        return [w for i in e["votes"] for w in e["sentences"][i] if w in documents.LABELS]
    majority = sum(max(documents.LABELS, key=verbs(e).count) == e["label"] for e in examples)
    assert majority < 0.65 * len(examples)  # the most voted verb is often not the decision
    others = sum(any(w != e["label"] for w in verbs(e)) for e in examples)
    assert others > len(examples) / 2


def test_document_conflicts_have_two_votes_of_the_deciding_body():
    examples = documents.generate_conflicts(60, 5)
    assert examples == documents.generate_conflicts(60, 5)
    for example in examples:
        sentences, key, earlier = example["sentences"], example["key_sentence"], example["earlier_vote"]
        assert earlier < key and {earlier, key} <= set(example["votes"])
        assert body_of(sentences[earlier]) == body_of(sentences[key]) == documents.BODIES[example["authority"]]
        assert sentences[key][example["key_word"]] == example["label"]
        assert example["label"] not in sentences[earlier] and "second" in sentences[key]


def test_nli_alignment_links_equal_or_related_words():
    hypernym_of = {w: h for table in (nli.SUBJECTS, nli.INSTRUMENTS) for h, ws in table.items() for w in ws}
    for example in load_task("nli", "test"):
        premise, hypothesis = example["premise"], example["hypothesis"]
        i_edit, j_edit = example["edit"]
        for i, j in example["alignment"]:
            p, h = premise[i], hypothesis[j]
            if [i, j] == example["edit"]:
                assert p != h
                kind = example["relation"]
                if kind == "hypernym":
                    assert hypernym_of[p] == h
                elif kind == "antonym":
                    assert nli.ADJECTIVE_ANTONYMS[p] == h
            else:
                assert p == h or {p, h} == {"a", "an"}
        label = example["label"]
        expected = {"hypernym": "entailment", "drop": "entailment", "antonym": "contradiction",
                    "sibling": "contradiction", "incompatible": "contradiction", "hyponym": "neutral",
                    "add": "neutral"}[example["relation"]]
        assert label == expected
        if example["relation"] == "drop":
            assert j_edit == -1 and premise[i_edit] in nli.ADJECTIVE_ANTONYMS
        if example["relation"] == "add":
            assert i_edit == -1 and hypothesis[j_edit] in nli.ADJECTIVE_ANTONYMS


def test_nli_labels_are_balanced_and_premises_have_several_scenes():
    examples = load_task("nli", "train")
    counts = {label: sum(e["label"] == label for e in examples) for label in nli.LABELS}
    assert max(counts.values()) - min(counts.values()) <= 2
    assert sum("and" in e["premise"] for e in examples) > len(examples) / 2


@pytest.mark.parametrize("task", [1, 2, 3])
def test_babi_answers_follow_from_the_supporting_facts(task):
    for example in load_task(f"babi{task}", "test"):
        story, supporting = example["story"], example["supporting"]
        assert len(supporting) == task
        assert all(0 <= i < len(story) for i in supporting)
        facts = [story[i] for i in supporting]
        if task < 3:
            # the answer room is named by the supporting fact that moved the carrier last
            moves = [f for f in facts if f[-2] == "the" and f[-1] in babi.ROOMS]
            assert moves and moves[-1][-1] == example["answer"]
        else:
            rooms = [f[-1] for f in facts if f[-1] in babi.ROOMS]
            assert example["answer"] in rooms and example["question"][-1] in rooms


def test_babi_task1_supporting_fact_is_the_last_move():
    for example in load_task("babi1", "valid"):
        person = example["question"][-1]
        last = max(i for i, s in enumerate(example["story"]) if s[0] == person)
        assert example["supporting"] == [last] and example["story"][last][-1] == example["answer"]


def test_ner_tags_are_valid_bio_and_ambiguous_words_take_both_types():
    examples = load_task("ner", "valid")
    kinds = {}
    for example in examples:
        assert len(example["tokens"]) == len(example["tags"])
        previous = "O"
        for token, tag in zip(example["tokens"], example["tags"]):
            assert tag in ner.TAGS
            if tag.startswith("I-"):
                assert previous[2:] == tag[2:]
            if token in ner.AMBIGUOUS and tag.startswith("B-"):
                kinds.setdefault(token, set()).add(tag[2:])
            previous = tag
    assert any(k >= {"PER", "LOC"} for k in kinds.values())
