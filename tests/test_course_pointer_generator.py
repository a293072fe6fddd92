"""The pointer-generator model: batches in both id spaces, the gate, the copy path, decoding."""

from __future__ import annotations

import random

import pytest
import torch

from course.data.vocab import EOS, SOS, UNK, Vocab
from course.seq2seq import Seq2SeqConfig, build_seq2seq
from course.seq2seq.pointer_generator import (
    PointerBatches,
    PointerGenerator,
    collate_pointer,
    encode_pair,
    pointer_generator_loss,
    pointer_greedy_decode,
)

VOCAB = Vocab(["the", "cat", "met", "on", "mat", "."])   # ids 4..9


def config(**kwargs) -> Seq2SeqConfig:
    return Seq2SeqConfig(len(VOCAB), len(VOCAB), embed_dim=8, hidden_size=12, attention_units=10, **kwargs)


def batch():
    pairs = [{"src": "zoe met the cat on mat .".split(), "tgt": "zoe met cat".split()},
             {"src": "the cat met bo and al".split(), "tgt": "al met bo .".split()}]
    return next(iter(PointerBatches(pairs, VOCAB, batch_size=2)))


def test_batches_carry_vocabulary_and_extended_ids():
    b = batch()
    assert b.unknown == [["zoe"], ["bo", "and", "al"]] and b.extra_words == 3
    assert b.src[0, 0].item() == UNK and b.src_ext[0, 0].item() == len(VOCAB)
    assert b.tgt_in[0, 0].item() == SOS
    assert b.tgt_out[0].tolist()[:4] == [UNK, 6, 5, EOS]
    assert b.tgt_out_ext[0].tolist()[:4] == [len(VOCAB), 6, 5, EOS]
    assert b.tgt_out_ext[1].tolist() == [len(VOCAB) + 2, 6, len(VOCAB), 9, EOS]
    again = collate_pointer([encode_pair({"src": ["x"], "tgt": ["the"]}, VOCAB)], [0])
    assert again.extra_words == 1 and again.tgt_out_ext[0].tolist() == [4, EOS]


def test_without_the_copy_path_it_is_the_bahdanau_baseline():
    torch.manual_seed(0)
    model = PointerGenerator(config(), copy=False).eval()
    baseline = build_seq2seq(config()).eval()
    missing = baseline.load_state_dict(model.state_dict(), strict=False)
    assert missing.unexpected_keys == ["decoder.gate.weight", "decoder.gate.bias"] and not missing.missing_keys
    b = batch()
    with torch.no_grad():
        out = model(b.src, b.src_lengths, b.tgt_in, b.src_ext, b.extra_words)
        reference = baseline(b.src, b.src_lengths, b.tgt_in)
    assert torch.all(out.p_gen == 1)
    torch.testing.assert_close(out.probs[..., :len(VOCAB)], torch.softmax(reference.logits, -1))
    torch.testing.assert_close(out.attention, reference.attention)
    assert torch.all(out.probs[..., len(VOCAB):] == 0)


def test_unknown_words_get_exactly_the_copied_attention_mass():
    torch.manual_seed(1)
    model = PointerGenerator(config(coverage=True)).eval()
    b = batch()
    with torch.no_grad():
        out = model(b.src, b.src_lengths, b.tgt_in, b.src_ext, b.extra_words)
    torch.testing.assert_close(out.probs.sum(-1), torch.ones_like(out.p_gen))
    assert bool(((out.p_gen > 0) & (out.p_gen < 1)).all())
    # "bo" (extended id V) occurs at source position 3 of the second example
    copied = (1 - out.p_gen[1]) * out.attention[1, :, 3]
    torch.testing.assert_close(out.probs[1, :, len(VOCAB)], copied)
    assert torch.all(out.attention[1, :, 6:] == 0)          # padding is never copied


def test_loss_uses_extended_targets_and_adds_coverage():
    torch.manual_seed(2)
    b = batch()
    plain = PointerGenerator(config())
    covered = PointerGenerator(config(coverage=True))
    assert torch.isfinite(pointer_generator_loss(plain, b))
    with_coverage = pointer_generator_loss(covered, b)
    without = pointer_generator_loss(covered, b, coverage_weight=0.0)
    assert with_coverage.item() > without.item()
    no_copy = PointerGenerator(config(), copy=False)
    assert pointer_generator_loss(no_copy, b).item() < 20     # <unk> targets: finite, not -log(eps)


def test_it_learns_to_copy_words_it_has_never_seen():
    rng = random.Random(0)
    vocab = Vocab(["name", "is", "hello", "my", "."])

    def example():
        name = "".join(rng.choice("bdkmst") + rng.choice("aeiou") for _ in range(3))
        return {"src": ["hello", "my", "name", "is", name, "."], "tgt": [name]}

    torch.manual_seed(0)
    model = PointerGenerator(Seq2SeqConfig(len(vocab), len(vocab), embed_dim=8, hidden_size=16,
                                           attention_units=16))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        b = collate_pointer([encode_pair(example(), vocab) for _ in range(16)], range(16))
        optimizer.zero_grad()
        pointer_generator_loss(model, b).backward()
        optimizer.step()
    test = [example() for _ in range(20)]
    b = collate_pointer([encode_pair(e, vocab) for e in test], range(20))
    hypotheses = pointer_greedy_decode(model, b, vocab, max_len=4)
    assert sum(h.words == e["tgt"] for h, e in zip(hypotheses, test)) >= 18
    assert all(h.p_gen.shape == (len(h.words) + 1,) and h.attention.shape[0] == len(h.words) + 1
               for h in hypotheses)
    assert float(torch.stack([h.p_gen[0] for h in hypotheses]).mean()) < 0.5   # the names are copied


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="Bahdanau"):
        PointerGenerator(config(decoder="luong"))
    with pytest.raises(ValueError, match="must be one"):
        PointerGenerator(Seq2SeqConfig(10, 12))
    with pytest.raises(ValueError, match="batch_size"):
        PointerBatches([], VOCAB, batch_size=0)
    model, b = PointerGenerator(config()), batch()
    with pytest.raises(ValueError, match="src_ext"):
        model(b.src, b.src_lengths, b.tgt_in, b.src_ext[:, :2], b.extra_words)
    with pytest.raises(ValueError, match="max_len"):
        pointer_greedy_decode(model, b, VOCAB, max_len=0)
