"""Hierarchical, two-sequence, memory, tagging and forecasting models: shapes, masks, padding,
what interp captures, the papers' formulas, baselines and bad input."""

import pytest
import torch

import interp
from course import Vocab
from course.data.loaders import (
    make_document_loader,
    make_pair_loader,
    make_story_loader,
    make_tag_loader,
)
from course.models.hierarchical import HierarchicalAttentionNetwork
from course.models.losses import accuracy, classification_loss, tagging_loss
from course.models.memory import MemoryNetwork, position_encoding
from course.models.tagger import BiLSTMTagger
from course.models.temporal import AttentionForecaster, forecast_loss, seasonal_naive
from course.models.two_sequences import PairClassifier
from course.training import fit

DOCS = [
    {"sentences": [["a", "b"], ["the", "board", "approved", "it"], ["c"]], "label": "yes"},
    {"sentences": [["the", "board", "rejected", "it"]], "label": "no"},
    {"sentences": [["c", "a"], ["b"], ["a", "b", "c"], ["the", "board", "rejected", "it"]], "label": "no"},
]
PAIRS = [
    {"premise": "a man sleeps in the park".split(), "hypothesis": "a person sleeps".split(), "label": "entailment"},
    {"premise": "a dog runs".split(), "hypothesis": "a cat runs on the beach".split(), "label": "contradiction"},
    {"premise": "a girl plays".split(), "hypothesis": "a tall girl plays".split(), "label": "neutral"},
]
STORIES = [
    {"story": [["mary", "went", "to", "the", "kitchen"], ["john", "went", "to", "the", "garden"]],
     "question": ["where", "is", "mary"], "answer": "kitchen", "supporting": [0]},
    {"story": [["john", "went", "to", "the", "kitchen"]], "question": ["where", "is", "john"],
     "answer": "kitchen", "supporting": [0]},
    {"story": [["mary", "went", "to", "the", "garden"], ["john", "went", "to", "the", "kitchen"],
               ["mary", "went", "to", "the", "kitchen"]],
     "question": ["where", "is", "john"], "answer": "kitchen", "supporting": [1]},
]
TAGGED = [
    {"tokens": "Ann moved to Paris .".split(), "tags": ["B-PER", "O", "O", "B-LOC", "O"]},
    {"tokens": "Paris said so".split(), "tags": ["B-PER", "O", "O"]},
]
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")


def vocab_of(*token_lists):
    return Vocab.build(token_lists)


@pytest.fixture
def doc_batch():
    vocab = vocab_of(*[s for d in DOCS for s in d["sentences"]])
    return vocab, next(iter(make_document_loader(DOCS, vocab, ("no", "yes"), batch_size=3)))


def test_han_weights_masks_and_capture(doc_batch):
    vocab, b = doc_batch
    model = HierarchicalAttentionNetwork(len(vocab), 2, embed_dim=6, word_hidden=5, sentence_hidden=4,
                                         attention_units=3)
    out = model(b.tokens, b.sentence_lengths)
    assert out.logits.shape == (3, 2)
    assert out.word_attention.shape == b.tokens.shape and out.sentence_attention.shape == (3, 4)
    word_mask = torch.arange(b.tokens.size(2)) < b.sentence_lengths.unsqueeze(-1)
    assert torch.equal(out.word_attention[~word_mask], torch.zeros(int((~word_mask).sum())))
    real = b.sentence_lengths > 0
    torch.testing.assert_close(out.word_attention.sum(-1), real.float())
    assert torch.equal(out.sentence_attention[~real], torch.zeros(int((~real).sum())))
    torch.testing.assert_close(out.sentence_attention.sum(-1), torch.ones(3))
    with interp.capture(model, ["word_attention", "sentence_attention"]) as cap:
        model(b.tokens, b.sentence_lengths)
    torch.testing.assert_close(cap["word_attention"].squeeze(1), out.word_attention[real])
    torch.testing.assert_close(cap["sentence_attention"].squeeze(1), out.sentence_attention)


def test_han_padding_invariance_and_baseline(doc_batch):
    vocab, b = doc_batch
    model = HierarchicalAttentionNetwork(len(vocab), 2, embed_dim=6, word_hidden=5, sentence_hidden=4).eval()
    full = model(b.tokens, b.sentence_lengths)
    alone = model(b.tokens[1:2, :1, :4], b.sentence_lengths[1:2, :1])
    torch.testing.assert_close(alone.logits, full.logits[1:2])
    baseline = HierarchicalAttentionNetwork(len(vocab), 2, pooling="mean")
    out = baseline(b.tokens, b.sentence_lengths)
    assert out.word_attention is None and out.sentence_attention is None and out.logits.shape == (3, 2)
    bad = b.sentence_lengths.clone()
    bad[1, 2] = 2  # a real sentence after a padding one
    with pytest.raises(ValueError, match="must come after"):
        model(b.tokens, bad)
    with pytest.raises(ValueError, match="pooling must be one of"):
        HierarchicalAttentionNetwork(10, 2, pooling="max")


@pytest.fixture
def pair_batch():
    vocab = vocab_of(*[p["premise"] + p["hypothesis"] for p in PAIRS])
    labels = ("entailment", "neutral", "contradiction")
    return vocab, next(iter(make_pair_loader(PAIRS, vocab, labels, batch_size=3)))


@pytest.mark.parametrize("score", ["additive", "bilinear"])
def test_word_by_word_attention_rows_and_padding(pair_batch, score):
    vocab, b = pair_batch
    model = PairClassifier(len(vocab), 3, embed_dim=6, hidden_size=5, score=score)
    out = model(b.premise, b.premise_lengths, b.hypothesis, b.hypothesis_lengths)
    assert out.logits.shape == (3, 3) and out.attention.shape == (3, b.hypothesis.size(1), b.premise.size(1))
    premise_pad = ~(b.premise != 0).unsqueeze(1).expand_as(out.attention)
    assert torch.equal(out.attention[premise_pad], torch.zeros(int(premise_pad.sum())))
    real_steps = (b.hypothesis != 0).float()
    torch.testing.assert_close(out.attention.sum(-1), real_steps)  # padded hypothesis steps are zero rows
    with interp.capture(model, "attention") as cap:
        model(b.premise, b.premise_lengths, b.hypothesis, b.hypothesis_lengths)
    steps = real_steps.bool()
    torch.testing.assert_close(cap["attention"][steps], out.attention[steps])  # one call per step, stacked


def test_pair_models_ignore_padding_of_both_sequences(pair_batch):
    vocab, b = pair_batch
    for mode in ("none", "final", "word_by_word"):
        model = PairClassifier(len(vocab), 3, embed_dim=6, hidden_size=5, attention=mode).eval()
        full = model(b.premise, b.premise_lengths, b.hypothesis, b.hypothesis_lengths)
        p, h = int(b.premise_lengths[0]), int(b.hypothesis_lengths[0])
        alone = model(b.premise[:1, :p], b.premise_lengths[:1], b.hypothesis[:1, :h], b.hypothesis_lengths[:1])
        torch.testing.assert_close(alone.logits, full.logits[:1])
        assert (full.attention is None) == (mode == "none")
    with pytest.raises(ValueError, match="attention must be one of"):
        PairClassifier(10, 3, attention="cross")
    with pytest.raises(ValueError, match="2 premises but 3 hypotheses"):
        model(b.premise[:2], b.premise_lengths[:2], b.hypothesis, b.hypothesis_lengths)


@pytest.fixture
def story_batch():
    vocab = vocab_of(*[s for e in STORIES for s in e["story"]], *[e["question"] for e in STORIES])
    return vocab, next(iter(make_story_loader(STORIES, vocab, batch_size=3)))


def test_position_encoding_matches_the_paper():
    dim, length = 4, 3
    encoding = position_encoding(torch.tensor([length]), width=5, dim=dim)[0]
    for j in range(1, length + 1):
        for k in range(1, dim + 1):
            expected = (1 - j / length) - (k / dim) * (1 - 2 * j / length)
            assert encoding[j - 1, k - 1].item() == pytest.approx(expected)
    assert torch.equal(encoding[length:], torch.zeros(2, dim))  # past the sentence: nothing


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_memory_network_hops_masks_and_tying(story_batch, hops):
    vocab, b = story_batch
    model = MemoryNetwork(len(vocab), embed_dim=8, hops=hops, max_memories=5)
    out = model(b.story, b.story_lengths, b.question, b.question_lengths)
    assert out.logits.shape == (3, len(vocab)) and out.attention.shape == (3, hops, 3)
    real = (b.story_lengths > 0).unsqueeze(1).expand_as(out.attention)
    assert torch.equal(out.attention[~real], torch.zeros(int((~real).sum())))
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(3, hops))
    with interp.capture(model, "attention") as cap:
        model(b.story, b.story_lengths, b.question, b.question_lengths)
    torch.testing.assert_close(cap["attention"], out.attention)  # hops stacked along the query axis
    assert len(model.embeddings) == hops + 1  # adjacent tying: A^{k+1} = C^k
    # the answer matrix is the last output embedding: changing it changes the logits directly
    with torch.no_grad():
        model.embeddings[-1].weight[5] += 1.0
    assert not torch.allclose(model(b.story, b.story_lengths, b.question, b.question_lengths).logits[:, 5],
                              out.logits[:, 5])


def test_temporal_encoding_uses_memory_age_so_padding_does_not_matter(story_batch):
    vocab, b = story_batch
    model = MemoryNetwork(len(vocab), embed_dim=8, hops=2, max_memories=5).eval()
    full = model(b.story, b.story_lengths, b.question, b.question_lengths)
    n, q = int((b.story_lengths[1] > 0).sum()), int(b.question_lengths[1])
    alone = model(b.story[1:2, :n], b.story_lengths[1:2, :n], b.question[1:2, :q], b.question_lengths[1:2])
    torch.testing.assert_close(alone.logits, full.logits[1:2])
    with pytest.raises(ValueError, match="max_memories"):
        MemoryNetwork(len(vocab), max_memories=2)(b.story, b.story_lengths, b.question, b.question_lengths)
    with pytest.raises(ValueError, match="hops must be between 1 and 10"):
        MemoryNetwork(10, hops=0)


def test_memory_network_learns_task1_toy_and_attends_to_the_fact(story_batch):
    vocab, _ = story_batch
    torch.manual_seed(0)
    loader = make_story_loader(STORIES * 8, vocab, batch_size=8)
    model = MemoryNetwork(len(vocab), embed_dim=16, hops=1, max_memories=5)
    fit(model, loader, epochs=30, lr=0.05, loss_fn=classification_loss, progress=False)
    assert accuracy(model, loader) == 1.0
    b = next(iter(make_story_loader(STORIES, vocab, batch_size=3)))
    weights = model.eval()(b.story, b.story_lengths, b.question, b.question_lengths).attention[:, 0]
    on_fact = torch.stack([weights[i, e["supporting"][0]] for i, e in enumerate(STORIES)])
    chance = torch.tensor([1 / len(e["story"]) for e in STORIES])
    assert on_fact.mean() > chance.mean()


def test_tagger_with_and_without_self_attention():
    vocab = vocab_of(*[e["tokens"] for e in TAGGED])
    b = next(iter(make_tag_loader(TAGGED, vocab, TAGS, batch_size=2)))
    model = BiLSTMTagger(len(vocab), len(TAGS), embed_dim=6, hidden_size=5, attention_units=4)
    out = model(b.tokens, b.lengths)
    assert out.logits.shape == (2, 5, len(TAGS)) and out.attention.shape == (2, 5, 5)
    mask = b.tokens != 0
    pair_mask = mask.unsqueeze(1) & mask.unsqueeze(2)
    assert torch.equal(out.attention[~pair_mask], torch.zeros(int((~pair_mask).sum())))
    torch.testing.assert_close(out.attention.sum(-1), mask.float())
    assert b.tags[1, 3:].tolist() == [-100, -100]
    baseline = BiLSTMTagger(len(vocab), len(TAGS), attention=False)
    assert baseline(b.tokens, b.lengths).attention is None
    loss = tagging_loss(model, b)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="3 tokens but 2 tags"):
        make_tag_loader([{"tokens": ["a", "b", "c"], "tags": ["O", "O"]}], vocab, TAGS)
    with pytest.raises(KeyError, match="B-ORG"):
        make_tag_loader([{"tokens": ["Ann"], "tags": ["B-ORG"]}], vocab, TAGS)


def test_forecaster_attention_and_seasonal_naive():
    torch.manual_seed(0)
    window = torch.randn(4, 12)
    model = AttentionForecaster(horizon=2, hidden_size=6, attention_units=5)
    out = model(window)
    assert out.prediction.shape == (4, 2) and out.attention.shape == (4, 1, 12)
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(4, 1))
    assert AttentionForecaster(attention=False)(window).attention is None
    torch.testing.assert_close(seasonal_naive(window, period=5, horizon=2), window[:, 7:9])
    with pytest.raises(ValueError, match="window must be"):
        model(torch.randn(4, 12, 3))
    with pytest.raises(ValueError, match="horizon"):
        seasonal_naive(window, period=5, horizon=6)


@pytest.mark.parametrize("values", ["states", "inputs"])
def test_forecaster_learns_a_periodic_series(values):
    """On a noisy periodic series the next value is the value one period ago: easy to learn."""
    from course.datasets.series import make_windows, window_loader

    torch.manual_seed(0)
    period, steps = 6, 18
    pattern = torch.randn(period)
    series = pattern.repeat(60) + 0.05 * torch.randn(period * 60)
    inputs, targets = make_windows(series.numpy(), window=steps)
    loader = window_loader(inputs, targets, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    model = AttentionForecaster(hidden_size=16, attention_units=16, values=values)
    history = fit(model, loader, epochs=15, lr=0.01, loss_fn=forecast_loss, progress=False)
    assert history.train_loss[-1] < 0.2 * history.train_loss[0]
    weights = model.eval()(inputs[:8]).attention
    torch.testing.assert_close(weights.sum(-1), torch.ones(8, 1))


def test_linear_start_switches_the_softmax_off_and_on(story_batch):
    vocab, b = story_batch
    model = MemoryNetwork(len(vocab), embed_dim=8, hops=2, max_memories=5)
    model.linear_start(True)
    raw = model(b.story, b.story_lengths, b.question, b.question_lengths).attention
    padded = ~(b.story_lengths > 0).unsqueeze(1).expand_as(raw)
    assert torch.equal(raw[padded], torch.zeros(int(padded.sum())))
    assert not torch.allclose(raw.sum(-1), torch.ones(3, 2))  # raw dot products, not a distribution
    model.linear_start(False)
    soft = model(b.story, b.story_lengths, b.question, b.question_lengths).attention
    torch.testing.assert_close(soft.sum(-1), torch.ones(3, 2))
