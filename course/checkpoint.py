"""Checkpoints as one safetensors file: weights plus a JSON header, never pickle.

A checkpoint a learner downloads from someone else cannot run code when loaded: safetensors holds
only tensors, and the config and vocabularies travel as JSON in its metadata. Nor can it make
the loader allocate more than the file holds: :func:`load_seq2seq` checks the config's types,
bounds its sizes by the tensors' dimensions, builds the model on the ``meta`` device (no memory)
and compares every expected tensor's name, shape and dtype with the file's, checks the tensors
are finite and the vocabularies match the config, and only then builds the real model.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from course.data.vocab import Vocab
from course.seq2seq import Seq2Seq, Seq2SeqConfig, build_seq2seq

FORMAT = "lstm-attention-checkpoint/1"


def save_checkpoint(path: str | Path, model: nn.Module, metadata: dict[str, Any] | None = None) -> Path:
    """Write the model's weights and JSON-serialisable ``metadata`` to ``path`` (.safetensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {"format": FORMAT, "metadata": json.dumps(metadata or {})}
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    tmp.replace(path)  # a crash mid-write never leaves a half checkpoint under the real name
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read weights and metadata back; a file that is not one of ours gets a clear error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{path} is not a readable safetensors checkpoint ({err})") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path} is not a course checkpoint (format {header.get('format')!r}, expected {FORMAT!r})")
    try:
        metadata = json.loads(header["metadata"])
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: its metadata is missing or not JSON ({err}); the file is damaged") from None
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: its metadata is a {type(metadata).__name__}, not a JSON object")
    return tensors, metadata


def save_seq2seq(path: str | Path, model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab,
                 extra: dict[str, Any] | None = None) -> Path:
    """Save a seq2seq model with what rebuilds it: its config and both vocabularies."""
    if model.config is None:
        raise ValueError("this model has no config; build it with build_seq2seq(config) to save it")
    meta = {"config": model.config.to_dict(), "src_vocab": src_vocab.to_json(),
            "tgt_vocab": tgt_vocab.to_json(), "extra": extra or {}}
    return save_checkpoint(path, model, meta)


def load_seq2seq(path: str | Path) -> tuple[Seq2Seq, Vocab, Vocab, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_seq2seq`; returns (model, src_vocab, tgt_vocab, extra).

    The file is untrusted: its config and vocabularies are checked against its tensors before
    anything is allocated (see the module docstring), and any mismatch is one clear error.
    """
    tensors, meta = load_checkpoint(path)
    for key in ("config", "src_vocab", "tgt_vocab"):
        if key not in meta:
            raise ValueError(f"{path} has no {key!r} in its metadata: it was not saved with save_seq2seq")
    config = config_from_checkpoint(meta["config"], tensors, path)
    vocabs = []
    for key, size_field in (("src_vocab", "src_vocab_size"), ("tgt_vocab", "tgt_vocab_size")):
        try:
            vocab = Vocab.from_json(meta[key])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: {key} is not a saved vocabulary ({err})") from None
        if len(vocab) != getattr(config, size_field):
            raise ValueError(f"{path}: {key} has {len(vocab)} tokens but the config says "
                             f"{size_field}={getattr(config, size_field)}; the file is inconsistent")
        vocabs.append(vocab)
    check_tensors_fit(config, tensors, path)
    model = build_seq2seq(config)
    model.load_state_dict(tensors)
    extra = meta.get("extra", {})
    return model, vocabs[0], vocabs[1], extra if isinstance(extra, dict) else {}


# Config fields that size a tensor: none can exceed the largest dimension in the file.
SIZE_FIELDS = ("src_vocab_size", "tgt_vocab_size", "embed_dim", "hidden_size", "attention_units", "heads")


def config_from_checkpoint(data: Any, tensors: dict[str, torch.Tensor], path: str | Path) -> Seq2SeqConfig:
    """A :class:`Seq2SeqConfig` from untrusted JSON: types checked, sizes bounded by the tensors."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: config is a {type(data).__name__}, not a JSON object")
    for f in fields(Seq2SeqConfig):
        if f.name not in data:
            continue
        value, default = data[f.name], f.default
        if default is MISSING or isinstance(default, int) and not isinstance(default, bool) or default is None:
            ok = isinstance(value, int) and not isinstance(value, bool) or (default is None and value is None)
        elif isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"{path}: config field {f.name}={value!r} has the wrong type "
                             f"(expected like {default!r}); the file is damaged or not a course checkpoint")
    largest = max((max(t.shape, default=1) for t in tensors.values()), default=0)
    for name in SIZE_FIELDS:
        value = data.get(name)
        if isinstance(value, int) and value > largest:
            raise ValueError(f"{path}: config says {name}={value:,}, larger than any tensor dimension in "
                             f"the file ({largest:,}); refusing to build a model the weights cannot fill")
    if data.get("score") == "location" and isinstance(data.get("max_src_len"), int) and data["max_src_len"] > largest:
        raise ValueError(f"{path}: config says max_src_len={data['max_src_len']:,}, larger than any tensor "
                         f"dimension in the file ({largest:,})")
    if isinstance(data.get("num_layers"), int) and data["num_layers"] > max(len(tensors), 1):
        raise ValueError(f"{path}: config says num_layers={data['num_layers']:,} but the file holds only "
                         f"{len(tensors)} tensors")
    try:
        return Seq2SeqConfig.from_dict(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: invalid config ({err})") from None


def check_tensors_fit(config: Seq2SeqConfig, tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Raise unless ``tensors`` are exactly the weights the config's model has (names, shapes,
    dtypes) and all finite. The model is built on the ``meta`` device: no memory is allocated."""
    with torch.device("meta"):
        skeleton = build_seq2seq(config)
    expected = skeleton.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: its tensors do not match its config (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}); the file is damaged or inconsistent")
    for name, want in expected.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise ValueError(f"{path}: tensor {name!r} is {got.dtype} {tuple(got.shape)} but the config's "
                             f"model needs {want.dtype} {tuple(want.shape)}")
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise ValueError(f"{path}: tensor {name!r} holds NaN or infinite values; refusing to load "
                             f"a broken model (was it saved after training diverged?)")
