"""Vocabulary and tokenisation with distinct special ids.

PAD is 0 (so zero-initialised tensors are padding), SOS 1, EOS 2, UNK 3: PAD is never SOS, a bug
that silently teaches a decoder to start on padding.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<sos>", "<eos>", "<unk>")


def tokenize(text: str) -> list[str]:
    """Split on whitespace: the bundled tasks are stored pre-tokenised, one space between tokens."""
    if not isinstance(text, str):
        raise TypeError(f"tokenize expects a string, got {type(text).__name__}")
    return text.split()


class Vocab:
    """A bijection between tokens and ids, with the four special tokens first."""

    def __init__(self, tokens: Iterable[str]):
        self.itos: list[str] = list(SPECIALS)
        seen = set(self.itos)
        for token in tokens:
            if not isinstance(token, str) or not token:
                raise ValueError(f"vocabulary tokens must be non-empty strings, got {token!r}")
            if token not in seen:
                seen.add(token)
                self.itos.append(token)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_freq: int = 1) -> Vocab:
        """Build from tokenised sequences, most frequent first (ties broken alphabetically)."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts: Counter[str] = Counter()
        for seq in sequences:
            if isinstance(seq, str):
                raise TypeError("Vocab.build expects tokenised sequences (lists of tokens), got a str")
            counts.update(seq)
        ordered = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS),
                         key=lambda t: (-counts[t], t))
        return cls(ordered)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def encode(self, tokens: Sequence[str], add_eos: bool = False, add_sos: bool = False,
               unknown: Literal["error", "unk"] = "error") -> list[int]:
        """Map tokens to ids.

        Unknown tokens raise by default, naming them, because a silent UNK hides data bugs; pass
        ``unknown="unk"`` to map them to UNK on purpose (e.g. for open-vocabulary user input).
        """
        if isinstance(tokens, str):
            raise TypeError("encode expects a list of tokens; call tokenize(text) first")
        if unknown not in ("error", "unk"):
            raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
        ids = []
        missing = []
        for token in tokens:
            idx = self.stoi.get(token)
            if idx is None:
                missing.append(token)
                idx = UNK
            ids.append(idx)
        if missing and unknown == "error":
            shown = ", ".join(repr(t) for t in dict.fromkeys(missing))
            raise KeyError(
                f"{len(missing)} token(s) not in the vocabulary of {len(self)}: {shown[:200]}. "
                "Build the vocabulary from data that contains them, or pass unknown='unk' to map "
                "them to <unk>."
            )
        if add_sos:
            ids = [SOS, *ids]
        if add_eos:
            ids = [*ids, EOS]
        return ids

    def decode(self, ids: Iterable[int], strip_special: bool = True) -> list[str]:
        """Map ids back to tokens, stopping at EOS and dropping PAD/SOS when ``strip_special``."""
        out = []
        for raw in ids:
            idx = int(raw)
            if not 0 <= idx < len(self.itos):
                raise IndexError(f"id {idx} is outside the vocabulary (size {len(self.itos)})")
            if strip_special:
                if idx == EOS:
                    break
                if idx in (PAD, SOS):
                    continue
            out.append(self.itos[idx])
        return out

    def to_json(self) -> str:
        return json.dumps({"itos": self.itos})

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        data = json.loads(text)
        itos = data.get("itos") if isinstance(data, dict) else None
        if not isinstance(itos, list) or tuple(itos[:4]) != SPECIALS:
            raise ValueError("not a saved Vocab: expected {'itos': [<pad>, <sos>, <eos>, <unk>, ...]}")
        return cls(itos[4:])
