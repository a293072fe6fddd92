"""PairClassifier(attention="aligned"): shapes, masks, padding, and that each hypothesis word is
compared with the premise vector its attention row aligns it to."""

import pytest
import torch

import interp
from course import Vocab
from course.ablations import uniform_attention
from course.data.loaders import make_pair_loader
from course.models.two_sequences import PairClassifier, run_lstm

PAIRS = [
    {"premise": "a man sleeps in the park".split(), "hypothesis": "a person sleeps".split(), "label": "entailment"},
    {"premise": "a dog runs".split(), "hypothesis": "a cat runs on the beach".split(), "label": "contradiction"},
    {"premise": "a girl plays".split(), "hypothesis": "a tall girl plays".split(), "label": "neutral"},
]
LABELS = ("entailment", "neutral", "contradiction")


@pytest.fixture
def pair_batch():
    vocab = Vocab.build([p["premise"] + p["hypothesis"] for p in PAIRS])
    return vocab, next(iter(make_pair_loader(PAIRS, vocab, LABELS, batch_size=3)))


def inputs(b):
    return b.premise, b.premise_lengths, b.hypothesis, b.hypothesis_lengths


@pytest.mark.parametrize("score", [None, "dot", "additive", "bilinear"])
def test_aligned_rows_shapes_and_masks(pair_batch, score):
    vocab, b = pair_batch
    torch.manual_seed(0)
    model = PairClassifier(len(vocab), 3, embed_dim=6, hidden_size=8, attention="aligned", score=score)
    out = model(*inputs(b))
    assert out.logits.shape == (3, 3)
    assert out.attention.shape == (3, b.hypothesis.size(1), b.premise.size(1))
    premise_pad = ~(b.premise != 0).unsqueeze(1).expand_as(out.attention)
    assert torch.equal(out.attention[premise_pad], torch.zeros(int(premise_pad.sum())))
    real_steps = (b.hypothesis != 0).float()
    torch.testing.assert_close(out.attention.sum(-1), real_steps)  # one row per real word, 0 past the end
    with interp.capture(model, "attention") as cap:
        model(*inputs(b))
    steps = real_steps.bool()
    torch.testing.assert_close(cap["attention"][steps], out.attention[steps])


def test_aligned_ignores_padding_of_both_sequences(pair_batch):
    vocab, b = pair_batch
    torch.manual_seed(0)
    model = PairClassifier(len(vocab), 3, embed_dim=6, hidden_size=8, attention="aligned").eval()
    full = model(*inputs(b))
    for row in range(3):
        p, h = int(b.premise_lengths[row]), int(b.hypothesis_lengths[row])
        alone = model(b.premise[row:row + 1, :p], b.premise_lengths[row:row + 1],
                      b.hypothesis[row:row + 1, :h], b.hypothesis_lengths[row:row + 1])
        torch.testing.assert_close(alone.logits, full.logits[row:row + 1])
        torch.testing.assert_close(alone.attention[0], full.attention[row, :h, :p])


def test_aligned_compares_each_word_with_its_aligned_premise_vector(pair_batch):
    vocab, b = pair_batch
    torch.manual_seed(0)
    model = PairClassifier(len(vocab), 3, embed_dim=6, hidden_size=8, attention="aligned").eval()
    seen = {}
    hook = model.compare.register_forward_hook(lambda module, args, output: seen.update(x=args[0]))
    with torch.no_grad():
        out = model(*inputs(b))
        embedded = model.embedding(b.premise)
        states, _ = run_lstm(model.premise_lstm, embedded, b.premise_lengths)
    hook.remove()
    y = torch.cat([embedded, states], dim=-1)                  # the premise words [e; states]
    word = y.size(-1)
    h, a = seen["x"][..., :word], seen["x"][..., word:2 * word]
    real = (b.hypothesis != 0)
    torch.testing.assert_close(a[real], (out.attention @ y)[real])  # a_t = sum_i alpha_ti y_i
    torch.testing.assert_close(seen["x"][..., 2 * word:3 * word], h - a)
    torch.testing.assert_close(seen["x"][..., 3 * word:], h * a)
    # the label depends on the alignment: uniform rows give other aligned vectors and other logits
    uniform_attention(model)
    with torch.no_grad():
        flat = model(*inputs(b))
    chance = (b.premise != 0).float() / b.premise_lengths.unsqueeze(1).float()   # [B, L]
    torch.testing.assert_close(flat.attention, chance.unsqueeze(1) * real.unsqueeze(-1).float())
    assert not torch.allclose(flat.logits, out.logits)


def test_aligned_rejects_an_odd_hidden_size_and_dot_elsewhere():
    with pytest.raises(ValueError, match="must be even"):
        PairClassifier(10, 3, hidden_size=7, attention="aligned")
    with pytest.raises(ValueError, match="needs attention='aligned'"):
        PairClassifier(10, 3, attention="word_by_word", score="dot")
    assert PairClassifier(10, 3, attention="word_by_word").attention.score.__class__.__name__ == "AdditiveScore"


def test_aligned_dot_score_starts_by_matching_a_word_with_itself():
    torch.manual_seed(0)
    model = PairClassifier(12, 3, embed_dim=16, hidden_size=8, attention="aligned").eval()
    premise = torch.tensor([[4, 5, 6, 7, 8]])
    hypothesis = torch.tensor([[6, 8, 4]])
    with torch.no_grad():
        out = model(premise, torch.tensor([5]), hypothesis, torch.tensor([3]))
    assert out.attention[0].argmax(-1).tolist() == [2, 4, 0]  # each word's own position
