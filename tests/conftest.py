"""Shared fixtures: tiny models and data so unit tests stay fast on two cores."""

from __future__ import annotations

import pytest
import torch

from course.data.loaders import make_loader
from course.data.vocab import Vocab
from course.seq2seq import Seq2SeqConfig, build_seq2seq


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)


def reversal_pairs() -> list[dict]:
    """A tiny reversal task: every model can learn it in a few hundred steps."""
    g = torch.Generator().manual_seed(0)
    letters = list("abcdef")
    pairs = []
    for _ in range(64):
        n = int(torch.randint(2, 6, (1,), generator=g))
        src = [letters[int(i)] for i in torch.randint(0, 6, (n,), generator=g)]
        pairs.append({"src": src, "tgt": src[::-1], "alignment": [[i, n - 1 - i] for i in range(n)]})
    return pairs


@pytest.fixture
def toy_pairs():
    return reversal_pairs()


@pytest.fixture
def toy_vocab(toy_pairs):
    return Vocab.build([p["src"] for p in toy_pairs])


@pytest.fixture
def toy_batch(toy_pairs, toy_vocab):
    return next(iter(make_loader(toy_pairs[:8], toy_vocab, toy_vocab, batch_size=8)))


def make_model(vocab: Vocab, decoder: str, **kwargs):
    config = Seq2SeqConfig(len(vocab), len(vocab), decoder=decoder, embed_dim=8, hidden_size=12,
                           attention_units=10, **kwargs)
    return build_seq2seq(config)


@pytest.fixture
def clean_registry():
    """Restore interp's extractor registry after a test that registers its own."""
    from interp import extractors

    before = dict(extractors._REGISTRY)
    yield
    extractors._REGISTRY.clear()
    extractors._REGISTRY.update(before)
