"""Show, Attend and Tell (Xu et al. 2015) at the scale of a CPU: a small CNN encoder whose feature
map is a grid of regions, and an LSTM decoder that attends over the regions at every word.

At step ``t`` the attention reads the previous hidden state, ``e_ti = f_att(a_i, h_{t-1})`` (the
additive MLP of :class:`course.attention.AdditiveScore`), normalises the energies over the regions
(softmax: *soft* attention; :class:`course.attention.normalizers.HardNormalizer` with REINFORCE: *hard*,
one sampled region) and takes the context ``z_t``; the LSTM reads the previous word and ``z_t``;
the word comes from Xu's deep output ``L_o(E y_{t-1} + L_h h_t + L_z z_t)``. The initial state is
an MLP of the mean annotation. Xu's gating scalar and doubly stochastic regulariser are left out.
As in Xu et al. (section 4.1), hard attention can be trained with ``expected_attention=p``: with
probability ``p`` a training batch reads the expected context (the soft weights of the same scorer)
instead of the samples, which keeps the sampling policy from collapsing onto one region early.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from course.attention import AdditiveScore, Attention, SoftmaxNormalizer
from course.attention.normalizers import HardNormalizer


class CaptionOutput(NamedTuple):
    """Teacher-forced decoding: ``logits [B, T, V]``, attention ``weights [B, T, R]`` and, for
    hard attention in training, the sampled regions' log-probabilities ``log_prob [B, T]``."""

    logits: Tensor
    weights: Tensor
    log_prob: Tensor | None


class DigitEncoder(nn.Module):
    """Two 3x3 convolutions, each followed by batch norm, ReLU and 2x2 max pooling, then a learned embedding
    per region added to its features: ``images [B, H, W]`` to annotations ``[B, H/4 * W/4, channels]``.

    Each region covers 4x4 pixels and sees 10x10 (its receptive field). The region embedding
    gives a shallow encoder what a deep one carries implicitly: where a region is. (Batch norm
    is there for speed: without it the decoder sits for hundreds of updates on uniform-looking
    attention before it finds the digits.)
    """

    def __init__(self, channels: int = 32, regions: tuple[int, int] = (4, 8)):
        super().__init__()
        self.regions = regions
        self.conv1 = nn.Conv2d(1, channels // 2, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(channels // 2)
        self.conv2 = nn.Conv2d(channels // 2, channels, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(channels)
        self.position = nn.Parameter(0.1 * torch.randn(regions[0] * regions[1], channels))

    def forward(self, images: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.norm1(self.conv1(images.unsqueeze(1)))), 2)
        x = F.max_pool2d(F.relu(self.norm2(self.conv2(x))), 2)                    # [B, C, H/4, W/4]
        if tuple(x.shape[-2:]) != self.regions:
            raise ValueError(f"the feature map is {tuple(x.shape[-2:])} regions, the encoder was built "
                             f"for {self.regions}: images must be {self.regions[0] * 4}x{self.regions[1] * 4}")
        return x.flatten(2).transpose(1, 2) + self.position


class ShowAttendTell(nn.Module):
    """CNN encoder and attentive LSTM decoder; ``normalizer`` picks soft (default) or hard attention.

    ``expected_attention``: for a sampling normaliser, the probability that a training batch uses
    the expected context (softmax over the same energies) instead of the samples.
    """

    def __init__(self, vocab_size: int, channels: int = 32, hidden: int = 64, embed: int = 32,
                 units: int = 32, normalizer: nn.Module | None = None, regions: tuple[int, int] = (4, 8),
                 expected_attention: float = 0.0):
        super().__init__()
        if not 0.0 <= expected_attention <= 1.0:
            raise ValueError(f"expected_attention is a probability, got {expected_attention}")
        self.encoder = DigitEncoder(channels, regions)
        self.embedding = nn.Embedding(vocab_size, embed)
        self.init_h = nn.Linear(channels, hidden)
        self.init_c = nn.Linear(channels, hidden)
        self.attention = Attention(AdditiveScore(hidden, channels, units),
                                   normalizer if normalizer is not None else SoftmaxNormalizer())
        self.expected_attention = expected_attention
        # the same scorer with softmax weights: Xu et al.'s expected context for hard attention
        self.expected = Attention(self.attention.score, SoftmaxNormalizer()) if expected_attention else None
        self.lstm = nn.LSTMCell(embed + channels, hidden)
        self.out_h = nn.Linear(hidden, embed)
        self.out_z = nn.Linear(channels, embed, bias=False)
        self.out = nn.Linear(embed, vocab_size)

    def start(self, images: Tensor) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
        """Annotations ``[B, R, C]``, their key projection, and the initial ``(h, c)``."""
        annotations = self.encoder(images)
        mean = annotations.mean(1)
        state = (torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean)))
        return annotations, self.attention.prepare(annotations), state

    def step(self, annotations: Tensor, prepared: Tensor, word: Tensor, state: tuple[Tensor, Tensor],
             expected: bool = False) -> tuple[Tensor, Tensor, Tensor | None, tuple[Tensor, Tensor]]:
        """One word: ``logits [B, V]``, ``weights [B, R]``, the sample's log-probability (hard
        attention in training, else None) and the new ``(h, c)``; ``expected`` reads the expected
        context (see ``expected_attention``)."""
        h, c = state
        attention = self.expected if expected and self.expected is not None else self.attention
        attended = attention(h.unsqueeze(1), annotations, prepared=prepared)
        context, weights = attended.context[:, 0], attended.weights[:, 0]
        embedded = self.embedding(word)
        h, c = self.lstm(torch.cat([embedded, context], -1), (h, c))
        logits = self.out(embedded + self.out_h(h) + self.out_z(context))
        log_prob = None if attention is self.expected else self.attention.sample_log_prob()
        return logits, weights, None if log_prob is None else log_prob[:, 0], (h, c)

    def forward(self, images: Tensor, tgt_in: Tensor, samples: int = 1) -> CaptionOutput:
        """Teacher forcing: ``tgt_in [B, T]`` starts with the start token. With ``samples=K`` each
        image is encoded once and decoded K times (rows ``i * K .. i * K + K - 1`` of the output;
        ``tgt_in`` must already be repeated with ``repeat_interleave``)."""
        annotations, prepared, state = self.start(images)
        if samples > 1:
            annotations, prepared = annotations.repeat_interleave(samples, 0), prepared.repeat_interleave(samples, 0)
            state = (state[0].repeat_interleave(samples, 0), state[1].repeat_interleave(samples, 0))
        if annotations.size(0) != tgt_in.size(0):
            raise ValueError(f"{annotations.size(0)} decoded images but {tgt_in.size(0)} captions")
        expected = (self.training and self.expected is not None
                    and bool(torch.rand((), device=tgt_in.device) < self.expected_attention))
        logits, weights, log_probs = [], [], []
        for t in range(tgt_in.size(1)):
            step_logits, step_weights, log_prob, state = self.step(annotations, prepared, tgt_in[:, t], state,
                                                                   expected)
            logits.append(step_logits)
            weights.append(step_weights)
            log_probs.append(log_prob)
        log_prob = None if any(p is None for p in log_probs) else torch.stack(log_probs, 1)
        return CaptionOutput(torch.stack(logits, 1), torch.stack(weights, 1), log_prob)

    @torch.no_grad()
    def greedy(self, images: Tensor, bos: int, eos: int, max_length: int = 6) -> tuple[Tensor, Tensor]:
        """Greedy captions ``[B, L]`` (``eos`` repeated once a caption has ended) and the weights
        ``[B, L, R]`` of each emitted word. Call it in ``eval()`` mode (hard attention: the argmax)."""
        annotations, prepared, state = self.start(images)
        word = torch.full((images.size(0),), bos, dtype=torch.long, device=images.device)
        done = torch.zeros(images.size(0), dtype=torch.bool, device=images.device)
        words, weights = [], []
        for _ in range(max_length):
            logits, step_weights, _, state = self.step(annotations, prepared, word, state)
            word = torch.where(done, torch.full_like(word, eos), logits.argmax(-1))
            words.append(word)
            weights.append(step_weights)
            done = done | (word == eos)
            if bool(done.all()):
                break
        return torch.stack(words, 1), torch.stack(weights, 1)


def hard_normalizers(model: nn.Module) -> list[HardNormalizer]:
    """The REINFORCE hard-attention normalisers inside ``model``."""
    return [m for m in model.modules() if isinstance(m, HardNormalizer) and m.estimator == "reinforce"]


def caption_loss_terms(model: ShowAttendTell, images: Tensor, tgt_in: Tensor, tgt_out: Tensor, pad: int = 0,
                       samples: int = 1, reinforce_weight: float = 1.0) -> dict[str, Tensor]:
    """Cross-entropy of the caption words and, for hard attention in training, the REINFORCE term.

    The reward of a sampled region at step ``t`` is the log-likelihood of word ``t``. With
    ``samples=K > 1`` each image is decoded K times and a sample's baseline is the mean reward of
    the other K-1 (leave-one-out, :meth:`HardNormalizer.reinforce_loss`); with one sample, a
    moving average of past rewards.
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    hard = hard_normalizers(model) if model.training else []
    samples = samples if hard else 1
    if samples > 1:
        tgt_in, tgt_out = tgt_in.repeat_interleave(samples, 0), tgt_out.repeat_interleave(samples, 0)
    out = model(images, tgt_in, samples=samples)
    valid = tgt_out != pad
    token_nll = F.cross_entropy(out.logits.transpose(1, 2), tgt_out, ignore_index=pad, reduction="none")
    terms = {"cross_entropy": token_nll[valid].mean()}
    total = terms["cross_entropy"]
    if hard and out.log_prob is not None and reinforce_weight:
        terms["reinforce"] = hard[0].reinforce_loss(out.log_prob, -token_nll, valid, samples=samples)
        total = total + reinforce_weight * terms["reinforce"]
    terms["total"] = total
    return terms


def localisation(weights: Tensor, gold: Tensor, valid: Tensor) -> dict[str, float]:
    """Does the attention of each word land in its digit's gold box?

    ``weights [B, T, R]``, ``gold [B, T, R]`` (True on the regions of the box of the digit word
    ``t`` names), ``valid [B, T]`` (the words to score). Returns the share of words whose most
    attended region (first one on ties) lies in the box (``hit``), the mean weight inside the box
    (``mass``) and what uniform attention gives for both, the box's share of regions (``chance``).
    """
    if weights.shape != gold.shape or valid.shape != weights.shape[:2]:
        raise ValueError(f"weights {tuple(weights.shape)}, gold {tuple(gold.shape)} and valid "
                         f"{tuple(valid.shape)} do not line up")
    if not bool(valid.any()):
        raise ValueError("no word to score: valid is all False")
    gold = gold.bool()
    top = weights.argmax(-1, keepdim=True)
    hit = gold.gather(-1, top).squeeze(-1)
    mass = (weights * gold.to(weights.dtype)).sum(-1)
    chance = gold.sum(-1).to(weights.dtype) / gold.size(-1)
    return {"hit": hit[valid].float().mean().item(), "mass": mass[valid].mean().item(),
            "chance": chance[valid].mean().item()}
