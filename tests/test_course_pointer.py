"""The pointer-generator's mixture: copy mass lands on the right ids, unknown words are copyable."""

from __future__ import annotations

import pytest
import torch

from course.data.vocab import UNK, Vocab
from course.seq2seq.pointer import (
    decode_extended,
    extended_source_ids,
    extended_target_ids,
    pointer_generator_distribution,
    pointer_nll,
)

VOCAB = Vocab(["the", "cat", "sat", "on", "mat"])  # ids 4..8 after the four specials


def test_unknown_source_words_get_ids_after_the_vocabulary():
    ids, extended, unknown = extended_source_ids(["zoe", "sat", "on", "bo", "zoe"], VOCAB)
    assert unknown == ["zoe", "bo"]
    assert ids == [UNK, 6, 7, UNK, UNK]
    assert extended == [9, 6, 7, 10, 9]
    assert decode_extended(extended, VOCAB, unknown) == ["zoe", "sat", "on", "bo", "zoe"]
    assert extended_target_ids(["bo", "sat", "max"], VOCAB, unknown) == [10, 6, UNK]
    with pytest.raises(ValueError, match="outside the extended vocabulary"):
        decode_extended([11], VOCAB, unknown)


def test_mixture_matches_the_formula_by_hand():
    _, extended, unknown = extended_source_ids(["zoe", "sat", "zoe"], VOCAB)
    vocab_probs = torch.softmax(torch.randn(1, 2, len(VOCAB)), -1)
    attention = torch.tensor([[[0.5, 0.2, 0.3], [0.1, 0.8, 0.1]]])
    p_gen = torch.tensor([[0.25, 0.9]])
    out = pointer_generator_distribution(vocab_probs, attention, p_gen, torch.tensor([extended]), len(unknown))
    assert out.shape == (1, 2, len(VOCAB) + 1)
    for t in range(2):
        g = float(p_gen[0, t])
        # "zoe" (id 9) exists only by copying, from two positions
        assert out[0, t, 9].item() == pytest.approx((1 - g) * float(attention[0, t, 0] + attention[0, t, 2]))
        # "sat" (id 6) is generated and copied
        assert out[0, t, 6].item() == pytest.approx(g * float(vocab_probs[0, t, 6]) + (1 - g) * float(attention[0, t, 1]))
        # a word not in the source is generated only
        assert out[0, t, 4].item() == pytest.approx(g * float(vocab_probs[0, t, 4]))
    torch.testing.assert_close(out.sum(-1), torch.ones(1, 2))


def test_the_gate_at_its_ends_gives_pure_generation_or_pure_copying():
    vocab_probs = torch.softmax(torch.randn(2, 3, len(VOCAB)), -1)
    attention = torch.softmax(torch.randn(2, 3, 4), -1)
    ids = torch.tensor([[4, 5, 9, 10], [6, 6, 7, 8]])
    generate = pointer_generator_distribution(vocab_probs, attention, torch.ones(2, 3), ids, 2)
    torch.testing.assert_close(generate[..., : len(VOCAB)], vocab_probs)
    assert torch.all(generate[..., len(VOCAB):] == 0)
    copy = pointer_generator_distribution(vocab_probs, attention, torch.zeros(2, 3), ids, 2)
    torch.testing.assert_close(copy[1, :, 6], attention[1, :, 0] + attention[1, :, 1])
    torch.testing.assert_close(copy[0, :, 10], attention[0, :, 3])
    assert torch.all(copy[1, :, :6] == 0)


def test_gradients_reach_the_gate_and_the_attention():
    vocab_probs = torch.softmax(torch.randn(1, 1, len(VOCAB), requires_grad=True), -1)
    scores = torch.randn(1, 1, 3, requires_grad=True)
    gate_logit = torch.zeros(1, 1, requires_grad=True)
    out = pointer_generator_distribution(vocab_probs, torch.softmax(scores, -1), torch.sigmoid(gate_logit),
                                         torch.tensor([[9, 5, 6]]), 1)
    loss = pointer_nll(out, torch.tensor([[9]]))      # the unknown word: only copying can produce it
    loss.backward()
    assert gate_logit.grad.item() > 0                 # copying more (a lower p_gen) lowers the loss
    assert scores.grad[0, 0, 0] < 0                   # more attention on its position lowers the loss


def test_loss_ignores_padding_and_errors_say_what_is_wrong():
    distribution = torch.full((1, 2, 10), 0.1)
    assert pointer_nll(distribution, torch.tensor([[5, 0]])).item() == pytest.approx(-torch.log(torch.tensor(0.1)).item())
    with pytest.raises(ValueError, match="every target is padding"):
        pointer_nll(distribution, torch.zeros(1, 2, dtype=torch.long))
    vocab_probs, attention = torch.full((1, 1, 9), 1 / 9), torch.ones(1, 1, 2) / 2
    with pytest.raises(ValueError, match=r"p_gen must lie in \[0, 1\]"):
        pointer_generator_distribution(vocab_probs, attention, torch.full((1, 1), 1.5), torch.tensor([[4, 5]]), 0)
    with pytest.raises(ValueError, match="raise extra_words"):
        pointer_generator_distribution(vocab_probs, attention, torch.full((1, 1), 0.5), torch.tensor([[4, 9]]), 0)
    with pytest.raises(ValueError, match="extended_ids must be"):
        pointer_generator_distribution(vocab_probs, attention, torch.full((1, 1), 0.5), torch.tensor([4, 5]), 0)
    with pytest.raises(TypeError, match="list of tokens"):
        extended_source_ids("the cat", VOCAB)
