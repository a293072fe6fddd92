"""Checkpoints from strangers: configs that ask for huge models, vocabularies or tensors that do
not fit the config, wrong dtypes and NaN weights are refused before anything is allocated."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import course.checkpoint as checkpoint
from course.checkpoint import load_seq2seq, save_seq2seq
from course.data.vocab import Vocab
from course.seq2seq import Seq2SeqConfig, build_seq2seq


@pytest.fixture
def saved(tmp_path):
    src = Vocab.build([list("abcdef")])
    tgt = Vocab.build([list("uvwxyz")])
    torch.manual_seed(0)
    config = Seq2SeqConfig(src_vocab_size=len(src), tgt_vocab_size=len(tgt), embed_dim=8,
                           hidden_size=8, attention_units=8)
    model = build_seq2seq(config)
    return save_seq2seq(tmp_path / "good.safetensors", model, src, tgt), model


def tamper(path, out, *, config=None, vocab=None, tensors=None):
    """Rewrite a checkpoint with edited config fields, target vocabulary or tensors."""
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    meta = json.loads(header["metadata"])
    meta["config"].update(config or {})
    if vocab is not None:
        meta["tgt_vocab"] = vocab
    state.update(tensors or {})
    save_file(state, str(out), metadata={"format": header["format"], "metadata": json.dumps(meta)})
    return out


@pytest.fixture
def builds(monkeypatch):
    """Record every real (non-meta) model build; refuse any that would be huge."""
    real: list[Seq2SeqConfig] = []
    original = checkpoint.build_seq2seq

    def guarded(config):
        if torch.empty(()).device.type != "meta":
            real.append(config)
            if config.src_vocab_size * config.embed_dim > 10**7 or config.hidden_size > 10**4 or config.num_layers > 100:
                raise AssertionError(f"a model this large was about to be allocated: {config}")
        return original(config)

    monkeypatch.setattr(checkpoint, "build_seq2seq", guarded)
    return real


ATTACKS = {
    "huge source vocabulary": (dict(config={"src_vocab_size": 200_000_000}), "src_vocab_size=200,000,000"),
    "huge hidden size": (dict(config={"hidden_size": 100_000}), "hidden_size=100,000"),
    "many layers": (dict(config={"num_layers": 10**6}), "num_layers"),
    "size as text": (dict(config={"hidden_size": "8"}), "wrong type"),
    "size as bool": (dict(config={"bidirectional": 1}), "wrong type"),
    "config that does not fit the tensors": (dict(config={"attention_units": 4}), "needs"),
    "vocabulary shorter than the config": (dict(vocab=Vocab.build([list("uv")]).to_json()), "tokens but the config"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_untrusted_configs_are_refused_before_allocation(saved, tmp_path, builds, name):
    edits, message = ATTACKS[name]
    bad = tamper(saved[0], tmp_path / "bad.safetensors", **edits)
    with pytest.raises(ValueError, match=message):
        load_seq2seq(bad)
    assert builds == []  # no real model was built


def test_wrong_dtype_and_nan_tensors_are_refused(saved, tmp_path, builds):
    path, model = saved
    name = "encoder.embedding.weight"
    weight = model.state_dict()[name]
    as_double = tamper(path, tmp_path / "f64.safetensors", tensors={name: weight.double()})
    with pytest.raises(ValueError, match=f"{name}.*float64.*needs torch.float32"):
        load_seq2seq(as_double)
    poisoned = weight.clone()
    poisoned[3, 2] = float("nan")
    with pytest.raises(ValueError, match=f"{name}.*NaN"):
        load_seq2seq(tamper(path, tmp_path / "nan.safetensors", tensors={name: poisoned}))
    assert builds == []


def test_a_sound_checkpoint_still_loads_exactly(saved, builds):
    path, model = saved
    loaded, src, tgt, _ = load_seq2seq(path)
    assert len(builds) == 1
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
