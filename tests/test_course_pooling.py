"""Attention pooling classifiers, the unpacked LSTM, batches and the evidence helpers."""

import pytest
import torch
from torch import nn

import interp
from course import Vocab
from course.data.loaders import make_text_loader
from course.models.evidence import attention_mass, chance_mass, gold_mask
from course.models.losses import accuracy, classification_loss
from course.models.pooling import (
    AttentionPoolClassifier,
    LSTMClassifier,
    SelfAttentiveClassifier,
    lengths_from_padding,
    orthogonality_penalty,
)
from course.models.recurrent import TokenEncoder, reverse_within_lengths
from course.seq2seq.encoder import LSTMEncoder
from course.training import fit

EXAMPLES = [
    {"tokens": "a b c great d".split(), "label": "pos"},
    {"tokens": "a awful b".split(), "label": "neg"},
    {"tokens": "c c great".split(), "label": "pos"},
    {"tokens": "awful a b c d e f".split(), "label": "neg"},
]
LABELS = ("neg", "pos")


@pytest.fixture
def batch():
    vocab = Vocab.build(e["tokens"] for e in EXAMPLES)
    return vocab, next(iter(make_text_loader(EXAMPLES, vocab, LABELS, batch_size=4)))


def copy_packed_weights(packed: LSTMEncoder, mine: TokenEncoder) -> None:
    mine.embedding.load_state_dict(packed.embedding.state_dict())
    state = packed.lstm.state_dict()
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    for layer in range(packed.num_layers):
        mine.lstm.forward_layers[layer].load_state_dict({f"{n}_l0": state[f"{n}_l{layer}"] for n in names})
        mine.lstm.backward_layers[layer].load_state_dict(
            {f"{n}_l0": state[f"{n}_l{layer}_reverse"] for n in names})


@pytest.mark.parametrize("layers", [1, 2])
def test_unpacked_lstm_equals_packed_lstm(layers):
    torch.manual_seed(0)
    packed, mine = LSTMEncoder(30, 6, 5, num_layers=layers), TokenEncoder(30, 6, 5, num_layers=layers)
    copy_packed_weights(packed, mine)
    lengths = torch.tensor([7, 3, 5, 1])
    tokens = torch.randint(4, 30, (4, 7)) * (torch.arange(7) < lengths[:, None])
    reference, ours = packed(tokens, lengths), mine(tokens, lengths)
    torch.testing.assert_close(ours.outputs, reference.outputs)
    torch.testing.assert_close(ours.final, reference.hidden[-1])
    assert torch.equal(ours.mask, reference.mask)


def test_reverse_within_lengths_leaves_padding_in_place():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert reverse_within_lengths(x, torch.tensor([3, 2])).tolist() == [[3, 2, 1, 0], [5, 4, 0, 0]]


def test_lengths_from_padding_uses_the_last_real_token():
    assert lengths_from_padding(torch.tensor([[5, 0, 6, 0], [7, 0, 0, 0]])).tolist() == [3, 1]


def test_text_loader_pads_and_labels(batch):
    vocab, b = batch
    assert b.tokens.shape == (4, 7) and b.lengths.tolist() == [5, 3, 3, 7]
    assert b.labels.tolist() == [1, 0, 1, 0]
    assert torch.equal(b.mask, b.tokens != 0)
    with pytest.raises(KeyError, match="example 0 has label 'maybe'"):
        make_text_loader([{"tokens": ["a"], "label": "maybe"}], vocab, LABELS)
    with pytest.raises(ValueError, match="example 0 is empty"):
        make_text_loader([{"tokens": [], "label": "pos"}], vocab, LABELS)


MODELS = {
    "attention": lambda n: AttentionPoolClassifier(n, 2, embed_dim=6, hidden_size=5, attention_units=4),
    "self_attentive": lambda n: SelfAttentiveClassifier(n, 2, embed_dim=6, hidden_size=5,
                                                        attention_units=4, hops=3, mlp_size=8),
    "self_attentive_linear": lambda n: SelfAttentiveClassifier(n, 2, embed_dim=6, hidden_size=5,
                                                               attention_units=4, hops=3, mlp_size=0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_attention_weights_are_distributions_with_zero_padding(batch, name):
    vocab, b = batch
    model = MODELS[name](len(vocab))
    out = model(b.tokens, b.lengths)
    hops = 3 if name.startswith("self_attentive") else 1
    assert out.logits.shape == (4, 2) and out.attention.shape == (4, hops, 7)
    padded = ~b.mask.unsqueeze(1).expand_as(out.attention)
    assert torch.equal(out.attention[padded], torch.zeros(int(padded.sum())))
    torch.testing.assert_close(out.attention.sum(-1), torch.ones(4, hops))
    # the weights in the output are the ones the attention module returned: interp sees the same
    with interp.capture(model, "attention") as cap:
        model(b.tokens, b.lengths)
    torch.testing.assert_close(cap["attention"], out.attention)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_padding_does_not_change_predictions(batch, name):
    vocab, b = batch
    model = MODELS[name](len(vocab)).eval()
    full = model(b.tokens, b.lengths)
    alone = model(b.tokens[1:2, :3], b.lengths[1:2])
    torch.testing.assert_close(alone.logits, full.logits[1:2])
    torch.testing.assert_close(alone.attention, full.attention[1:2, :, :3])


def test_explicit_lengths_keep_the_mask_when_pad_appears_inside(batch):
    vocab, b = batch
    model = MODELS["attention"](len(vocab))
    tokens = b.tokens.clone()
    tokens[0, 4] = 0  # an attribution baseline replacing the last real token by PAD
    weights = model(tokens, b.lengths).attention
    assert weights[0, 0, 4] > 0  # still a real position: the lengths say so


def test_orthogonality_penalty_values():
    one_hot = torch.eye(3).unsqueeze(0)  # three hops on three different tokens: no penalty
    assert orthogonality_penalty(one_hot).item() == 0.0
    same = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # two hops on the same token
    assert orthogonality_penalty(same).item() == pytest.approx(2.0)  # off-diagonal 1s
    with pytest.raises(ValueError, match="batch, hops, keys"):
        orthogonality_penalty(torch.ones(2, 2))


def test_self_attentive_penalty_enters_the_loss(batch):
    vocab, b = batch
    model = MODELS["self_attentive"](len(vocab))
    out = model(b.tokens, b.lengths)
    with_penalty = classification_loss(model, b)
    model.penalty_weight = 0.0
    without = classification_loss(model, b)
    torch.testing.assert_close(with_penalty - without, out.penalty)
    with pytest.raises(ValueError, match="penalty_weight"):
        SelfAttentiveClassifier(10, 2, penalty_weight=-1)


def test_self_attentive_with_mlp_size_0_is_linear_on_the_flattened_rows(batch):
    vocab, b = batch
    model = MODELS["self_attentive_linear"](len(vocab))
    assert isinstance(model.mlp, nn.Linear) and model.mlp.in_features == 3 * model.state_size
    encoded = model.encode(b.tokens, b.lengths)
    rows = model.attention(encoded.outputs, encoded.mask).context  # M = A H, [batch, hops, 2d]
    torch.testing.assert_close(model(b.tokens, b.lengths).logits, model.mlp(rows.flatten(1)))
    with pytest.raises(ValueError, match="mlp_size"):
        SelfAttentiveClassifier(10, 2, mlp_size=-1)


def test_a_dead_relu_mlp_stops_every_gradient_and_the_linear_head_does_not(batch):
    """Why mlp_size=0 exists: once every ReLU unit is off for all inputs, nothing below it learns."""
    vocab, b = batch
    torch.manual_seed(0)
    dead, linear = MODELS["self_attentive"](len(vocab)), MODELS["self_attentive_linear"](len(vocab))
    with torch.no_grad():
        dead.mlp[0].bias.fill_(-100.0)  # every hidden unit off, for every input
    for model, learns in ((dead, False), (linear, True)):
        model.penalty_weight = 0.0  # the cross-entropy alone
        classification_loss(model, b).backward()
        gradient = model.attention.w_s2.weight.grad.abs().sum().item()
        assert (gradient > 0) == learns


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_baselines_have_no_attention_and_ignore_padding(batch, pooling):
    vocab, b = batch
    model = LSTMClassifier(len(vocab), 2, embed_dim=6, hidden_size=5, pooling=pooling).eval()
    full = model(b.tokens, b.lengths)
    assert full.attention is None and full.logits.shape == (4, 2)
    torch.testing.assert_close(model(b.tokens[1:2, :3], b.lengths[1:2]).logits, full.logits[1:2])
    with pytest.raises(ValueError, match="pooling must be one of"):
        LSTMClassifier(10, 2, pooling="median")


def test_attention_pooling_learns_the_cue_and_looks_at_it(batch):
    vocab, _ = batch
    torch.manual_seed(0)
    loader = make_text_loader(EXAMPLES * 4, vocab, LABELS, batch_size=8)
    model = MODELS["attention"](len(vocab))
    fit(model, loader, epochs=40, lr=0.05, loss_fn=classification_loss, progress=False)
    assert accuracy(model, loader) == 1.0
    b = next(iter(make_text_loader(EXAMPLES, vocab, LABELS, batch_size=4)))
    cues = [[e["tokens"].index("great" if e["label"] == "pos" else "awful")] for e in EXAMPLES]
    gold = gold_mask(cues, tuple(b.tokens.shape))
    mass = attention_mass(model.eval()(b.tokens, b.lengths).attention, gold)
    assert mass.mean() > 2 * chance_mass(gold, b.mask).mean()


def test_evidence_helpers():
    gold = gold_mask([[0], [1, 2]], (2, 3))
    assert gold.tolist() == [[True, False, False], [False, True, True]]
    weights = torch.tensor([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    torch.testing.assert_close(attention_mass(weights, gold), torch.tensor([0.5, 0.8]))
    mask = torch.tensor([[True, True, False], [True, True, True]])
    torch.testing.assert_close(chance_mass(gold, mask), torch.tensor([0.5, 2 / 3]))
    with pytest.raises(IndexError, match="example 0: gold position 5"):
        gold_mask([[5]], (1, 3))
    with pytest.raises(ValueError, match="2 examples"):
        gold_mask([[0], [0]], (1, 3))
