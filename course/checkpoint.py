"""Checkpoints as one safetensors file: weights plus a JSON header, never pickle.

A checkpoint a learner downloads from someone else cannot run code when loaded: safetensors holds
only tensors, and the config and vocabularies travel as JSON in its metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from course.seq2seq import Seq2Seq, Seq2SeqConfig, build_seq2seq
from course.vocab import Vocab

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
    return tensors, json.loads(header["metadata"])


def save_seq2seq(path: str | Path, model: Seq2Seq, src_vocab: Vocab, tgt_vocab: Vocab,
                 extra: dict[str, Any] | None = None) -> Path:
    """Save a seq2seq model with what rebuilds it: its config and both vocabularies."""
    if model.config is None:
        raise ValueError("this model has no config; build it with build_seq2seq(config) to save it")
    meta = {"config": model.config.to_dict(), "src_vocab": src_vocab.to_json(),
            "tgt_vocab": tgt_vocab.to_json(), "extra": extra or {}}
    return save_checkpoint(path, model, meta)


def load_seq2seq(path: str | Path) -> tuple[Seq2Seq, Vocab, Vocab, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_seq2seq`; returns (model, src_vocab, tgt_vocab, extra)."""
    tensors, meta = load_checkpoint(path)
    for key in ("config", "src_vocab", "tgt_vocab"):
        if key not in meta:
            raise ValueError(f"{path} has no {key!r} in its metadata: it was not saved with save_seq2seq")
    model = build_seq2seq(Seq2SeqConfig.from_dict(meta["config"]))
    model.load_state_dict(tensors)
    return model, Vocab.from_json(meta["src_vocab"]), Vocab.from_json(meta["tgt_vocab"]), meta.get("extra", {})
