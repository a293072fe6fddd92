"""Vocabulary round trips, special ids, padding, lengths and masks."""

import pytest
import torch

from course.data.batches import pad_sequences
from course.data.loaders import LengthBucketSampler, collate_pairs, make_loader
from course.data.vocab import EOS, PAD, SOS, UNK, Vocab, tokenize
from course.masks import lengths_to_mask


def test_special_ids_are_distinct_and_pad_is_not_sos():
    assert len({PAD, SOS, EOS, UNK}) == 4
    assert PAD != SOS
    vocab = Vocab(["a", "b"])
    assert vocab.itos[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"]


def test_round_trip_and_json():
    vocab = Vocab.build([["the", "dog"], ["the", "cat"]])
    ids = vocab.encode(["the", "cat", "dog"], add_sos=True, add_eos=True)
    assert ids[0] == SOS and ids[-1] == EOS
    assert vocab.decode(ids) == ["the", "cat", "dog"]
    assert Vocab.from_json(vocab.to_json()) == vocab
    assert vocab.itos[4] == "the"  # most frequent first


def test_unknown_tokens_raise_with_their_names():
    vocab = Vocab(["a"])
    with pytest.raises(KeyError, match="'zebra'.*unknown='unk'"):
        vocab.encode(["a", "zebra"])
    assert vocab.encode(["a", "zebra"], unknown="unk") == [4, UNK]


def test_bad_inputs_are_explained():
    vocab = Vocab(["a"])
    with pytest.raises(TypeError, match="tokenize"):
        vocab.encode("a b")
    with pytest.raises(IndexError, match="outside the vocabulary"):
        vocab.decode([99])
    with pytest.raises(ValueError, match="not a saved Vocab"):
        Vocab.from_json('{"itos": ["x"]}')
    with pytest.raises(TypeError):
        tokenize(3)
    with pytest.raises(ValueError, match="empty"):
        pad_sequences([[1, 2], []])
    with pytest.raises(ValueError, match="empty batch"):
        pad_sequences([])


def test_padding_lengths_and_masks():
    padded, lengths = pad_sequences([[5, 6, 7], [8]])
    assert padded.tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert lengths.tolist() == [3, 1]
    assert lengths_to_mask(lengths).tolist() == [[True, True, True], [True, False, False]]


def test_collate_builds_teacher_forcing_pairs():
    batch = collate_pairs([([5, 6], [7, 8, 9], 0), ([5], [7], 1)])
    assert batch.tgt_in.tolist() == [[SOS, 7, 8, 9], [SOS, 7, PAD, PAD]]
    assert batch.tgt_out.tolist() == [[7, 8, 9, EOS], [7, EOS, PAD, PAD]]
    assert batch.src_mask.tolist() == [[True, True], [True, False]]


def test_loader_reports_the_pair_with_an_unknown_token():
    vocab = Vocab(["a", "b"])
    with pytest.raises(KeyError, match="pair 1"):
        make_loader([{"src": ["a"], "tgt": ["b"]}, {"src": ["c"], "tgt": ["b"]}], vocab, vocab)


def test_bucket_sampler_covers_every_index_once_and_groups_lengths():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    sampler = LengthBucketSampler(lengths, 3, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(10))
    assert len(batches) == len(sampler) == 4
    spreads = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert max(spreads) <= 2  # sorted by length before chunking
