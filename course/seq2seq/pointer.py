"""The pointer-generator's output distribution (See, Liu & Manning 2017): generate or copy.

At each output step the decoder has a distribution over its fixed vocabulary, ``P_vocab``, and an
attention distribution over the source, ``a``. A gate ``p_gen`` in [0, 1] mixes *generating* from
the vocabulary with *copying* a source token, and the copy probability of a word is the attention
on every source position that holds it::

    P(w) = p_gen · P_vocab(w) + (1 − p_gen) · Σ_{i : x_i = w} a_i

Words outside the vocabulary can still be produced by copying: each sentence's unknown source
words get ids after the vocabulary (the *extended vocabulary*: ``len(vocab) + k`` for its k-th
distinct unknown word), so names and numbers never seen in training can appear in the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from course.data.vocab import PAD, UNK, Vocab


def extended_source_ids(tokens: Sequence[str], vocab: Vocab) -> tuple[list[int], list[int], list[str]]:
    """``(ids, extended_ids, unknown_words)`` for one source sentence.

    ``ids`` map unknown words to ``<unk>`` (what the encoder reads); ``extended_ids`` give the
    k-th distinct unknown word the id ``len(vocab) + k`` (what the copy distribution writes to).
    """
    if isinstance(tokens, str):
        raise TypeError("extended_source_ids expects a list of tokens, not a string")
    unknown: list[str] = []
    ids, extended = [], []
    for token in tokens:
        index = vocab.stoi.get(token)
        if index is None:
            if token not in unknown:
                unknown.append(token)
            ids.append(UNK)
            extended.append(len(vocab) + unknown.index(token))
        else:
            ids.append(index)
            extended.append(index)
    return ids, extended, unknown


def extended_target_ids(tokens: Sequence[str], vocab: Vocab, unknown_words: Sequence[str]) -> list[int]:
    """Target ids in the extended vocabulary: a word unknown to the vocabulary but present in the
    source is copyable (its extended id); one that is in neither stays ``<unk>``."""
    if isinstance(tokens, str):
        raise TypeError("extended_target_ids expects a list of tokens, not a string")
    out = []
    for token in tokens:
        index = vocab.stoi.get(token)
        if index is None:
            index = len(vocab) + list(unknown_words).index(token) if token in unknown_words else UNK
        out.append(index)
    return out


def decode_extended(ids: Sequence[int], vocab: Vocab, unknown_words: Sequence[str]) -> list[str]:
    """Words for extended ids: the vocabulary's, then the sentence's own unknown words."""
    words = []
    for index in ids:
        index = int(index)
        if 0 <= index < len(vocab):
            words.append(vocab.itos[index])
        elif len(vocab) <= index < len(vocab) + len(unknown_words):
            words.append(unknown_words[index - len(vocab)])
        else:
            raise ValueError(f"id {index} is outside the extended vocabulary of {len(vocab)} + "
                             f"{len(unknown_words)} words")
    return words


def check_mixture_inputs(vocab_probs: Tensor, attention: Tensor, p_gen: Tensor,
                         extended_ids: Tensor, extra_words: int) -> None:
    if vocab_probs.dim() != 3 or attention.dim() != 3:
        raise ValueError(f"vocab_probs must be [batch, steps, vocab] and attention [batch, steps, source], "
                         f"got {tuple(vocab_probs.shape)} and {tuple(attention.shape)}")
    if vocab_probs.shape[:2] != attention.shape[:2]:
        raise ValueError(f"vocab_probs {tuple(vocab_probs.shape)} and attention {tuple(attention.shape)} "
                         "disagree on batch and steps")
    if p_gen.shape != vocab_probs.shape[:2]:
        raise ValueError(f"p_gen must be [batch, steps] = {tuple(vocab_probs.shape[:2])}, got {tuple(p_gen.shape)}")
    if extended_ids.shape != (attention.size(0), attention.size(2)):
        raise ValueError(f"extended_ids must be [batch, source] = {(attention.size(0), attention.size(2))}, "
                         f"got {tuple(extended_ids.shape)}")
    if extra_words < 0:
        raise ValueError(f"extra_words must be at least 0, got {extra_words}")
    if bool(((p_gen < 0) | (p_gen > 1) | torch.isnan(p_gen)).any()):
        raise ValueError("p_gen must lie in [0, 1] (a sigmoid's output)")
    if extended_ids.numel() and (int(extended_ids.min()) < 0
                                 or int(extended_ids.max()) >= vocab_probs.size(-1) + extra_words):
        raise ValueError(f"extended_ids must lie in [0, {vocab_probs.size(-1) + extra_words}); "
                         "raise extra_words to the largest number of unknown words in a sentence")


def pointer_generator_distribution(vocab_probs: Tensor, attention: Tensor, p_gen: Tensor,
                                   extended_ids: Tensor, extra_words: int) -> Tensor:
    """``P(w) = p_gen · P_vocab(w) + (1 − p_gen) · Σ_{i: x_i = w} a_i`` over the extended vocabulary.

    ``vocab_probs [B, T, V]`` (rows sum to one), ``attention [B, T, S]`` (zero on padded source
    positions), ``p_gen [B, T]``, ``extended_ids [B, S]`` (from :func:`extended_source_ids`, any id on
    padding), ``extra_words`` the width added for unknown source words. Returns ``[B, T, V + extra]``.
    """
    check_mixture_inputs(vocab_probs, attention, p_gen, extended_ids, extra_words)
    batch, steps, _ = vocab_probs.shape
    gate = p_gen.unsqueeze(-1)
    generated = gate * vocab_probs
    if extra_words:
        generated = torch.cat([generated, generated.new_zeros(batch, steps, extra_words)], dim=-1)
    index = extended_ids.unsqueeze(1).expand(-1, steps, -1)
    return generated.scatter_add(-1, index, (1 - gate) * attention)


def pointer_nll(distribution: Tensor, targets: Tensor, eps: float = 1e-12) -> Tensor:
    """Mean negative log-likelihood of ``targets [B, T]`` (extended ids; PAD ignored)."""
    if distribution.shape[:2] != targets.shape:
        raise ValueError(f"targets must be [batch, steps] = {tuple(distribution.shape[:2])}, got {tuple(targets.shape)}")
    real = targets != PAD
    if not bool(real.any()):
        raise ValueError("every target is padding: nothing to score")
    picked = distribution.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    return -torch.log(picked.clamp_min(eps))[real].mean()
