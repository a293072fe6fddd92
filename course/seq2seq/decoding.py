"""Greedy decoding and beam search over any decoder with the ``step`` interface."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from course.data.vocab import EOS, SOS
from course.seq2seq import Seq2Seq
from course.seq2seq.encoder import EncoderOutput


@dataclass
class Hypothesis:
    """One decoded sequence: ids without SOS/EOS, its log-probability, and its attention rows."""

    tokens: list[int]
    score: float
    attention: Tensor | None  # [len(tokens) + 1, S]: one row per emitted token, EOS included


def select_memory(memory: EncoderOutput, index: Tensor) -> EncoderOutput:
    return EncoderOutput(memory.outputs.index_select(0, index),
                         memory.hidden.index_select(1, index),
                         memory.cell.index_select(1, index),
                         memory.mask.index_select(0, index))


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: Tensor, src_lengths: Tensor,
                  max_len: int | None = None) -> list[Hypothesis]:
    """Take the most likely token at each step, for a whole batch at once."""
    max_len = model.max_tgt_len if max_len is None else max_len
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    model.eval()
    memory = model.encode(src, src_lengths)
    decoder = model.decoder
    state = decoder.init_state(memory)
    prepared = decoder.prepare(memory)
    batch = src.size(0)
    prev = torch.full((batch,), SOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    tokens, scores, rows = [], torch.zeros(batch), []
    for _ in range(max_len):
        logits, state, weights = decoder.step(prev, state, memory, prepared)
        logp = torch.log_softmax(logits, -1)
        prev = logp.argmax(-1)
        scores += torch.where(finished, 0.0, logp.gather(1, prev[:, None]).squeeze(1)).cpu()
        tokens.append(prev)
        if weights is not None:
            rows.append(weights)
        finished |= prev == EOS
        if bool(finished.all()):
            break
    ids = torch.stack(tokens, 1).tolist()
    attention = torch.stack(rows, 1) if rows else None
    out = []
    for b in range(batch):
        seq = ids[b]
        n = seq.index(EOS) if EOS in seq else len(seq)
        att = attention[b, : min(n + 1, len(seq))].cpu() if attention is not None else None
        out.append(Hypothesis(seq[:n], float(scores[b]), att))
    return out


@torch.no_grad()
def beam_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, beam_size: int = 5,
                max_len: int | None = None, length_penalty: float = 1.0) -> list[Hypothesis]:
    """Keep the ``beam_size`` best prefixes per source; rank finished ones by score / length^alpha.

    Each source is searched on its own with its beams as the batch, which keeps the code plain;
    ``length_penalty`` (alpha) stops the search from preferring short outputs.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    max_len = model.max_tgt_len if max_len is None else max_len
    model.eval()
    memory_all = model.encode(src, src_lengths)
    decoder = model.decoder
    results = []
    for b in range(src.size(0)):
        memory = select_memory(memory_all, torch.full((beam_size,), b, dtype=torch.long, device=src.device))
        state = decoder.init_state(memory)
        prepared = decoder.prepare(memory)
        prev = torch.full((beam_size,), SOS, dtype=torch.long, device=src.device)
        beam_scores = torch.full((beam_size,), float("-inf"), device=src.device)
        beam_scores[0] = 0.0  # all beams start identical: keep one alive
        histories: list[list[int]] = [[] for _ in range(beam_size)]
        attn_hist: list[list[Tensor]] = [[] for _ in range(beam_size)]
        finished: list[Hypothesis] = []
        for t in range(max_len):
            logits, state, weights = decoder.step(prev, state, memory, prepared)
            logp = torch.log_softmax(logits, -1)
            vocab = logp.size(-1)
            candidates = (beam_scores[:, None] + logp).view(-1)
            top_scores, top_idx = candidates.topk(min(2 * beam_size, candidates.numel()))
            new_beams, new_scores, new_hist, new_attn = [], [], [], []
            for score, idx in zip(top_scores.tolist(), top_idx.tolist()):
                if score == float("-inf"):
                    break
                origin, token = divmod(idx, vocab)
                rows = attn_hist[origin] + ([weights[origin]] if weights is not None else [])
                if token == EOS:
                    length = len(histories[origin]) + 1
                    att = torch.stack(rows).cpu() if rows else None
                    finished.append(Hypothesis(histories[origin], score / length ** length_penalty, att))
                    continue
                new_beams.append((origin, token))
                new_scores.append(score)
                new_hist.append(histories[origin] + [token])
                new_attn.append(rows)
                if len(new_beams) == beam_size:
                    break
            best_finished = max((h.score for h in finished), default=float("-inf"))
            if not new_beams or len(finished) >= beam_size and best_finished > max(
                    s / (t + 2) ** length_penalty for s in new_scores):
                break
            origins = torch.tensor([o for o, _ in new_beams], device=src.device)
            pad = beam_size - len(new_beams)
            origins = torch.cat([origins, origins[:1].repeat(pad)])
            state = decoder.reorder_state(state, origins)
            prev = torch.tensor([tok for _, tok in new_beams] + [new_beams[0][1]] * pad, device=src.device)
            beam_scores = torch.tensor(new_scores + [float("-inf")] * pad, device=src.device)
            histories = new_hist + [new_hist[0]] * pad
            attn_hist = new_attn + [new_attn[0]] * pad
        if not finished:  # ran out of length: return the best open beam
            best = int(beam_scores.argmax())
            rows = attn_hist[best]
            finished.append(Hypothesis(histories[best], float(beam_scores[best]) / max(1, len(histories[best])) ** length_penalty,
                                       torch.stack(rows).cpu() if rows else None))
        results.append(max(finished, key=lambda h: h.score))
    return results
