"""The normalise axis of attention: from energies to weights over the keys.

All normalisers take energies ``[B, (H,) Q, K]`` and a mask (``[B, K]`` or ``[B, Q, K]``, True
where a key may be attended) and return weights of the same shape: non-negative, summing to one
over the allowed keys, and exactly zero on the others. A query with no allowed key is an error
for every normaliser; NaN or ``+inf`` energies on allowed keys propagate as NaN through softmax
and raise in the others (which would otherwise crash or return a clean-looking one-hot).

- ``softmax`` (with a temperature): dense, every allowed key gets some weight;
- ``sparsemax`` and ``entmax15`` (Martins & Astudillo 2016; Peters et al. 2019, via the
  ``entmax`` package): exact zeros on weak keys, still differentiable;
- ``hard_gumbel`` / ``hard_reinforce`` (Xu et al. 2015): one key per query. At inference the
  argmax; in training a sample, with straight-through Gumbel-softmax gradients or REINFORCE
  (the sample's log-probability is kept for the loss, see :mod:`course.seq2seq.losses`).
"""

from __future__ import annotations

import torch
from entmax import entmax15, sparsemax
from torch import Tensor, nn

from course.masks import expand_key_mask, require_allowed_key

NORMALIZERS = ("softmax", "sparsemax", "entmax15", "hard_gumbel", "hard_reinforce")


class SoftmaxNormalizer(nn.Module):
    """Softmax over keys with masked keys at exactly zero; ``temperature`` < 1 sharpens."""

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = temperature

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        energies = energies / self.temperature
        if mask is not None:
            mask = expand_key_mask(mask, energies)
            require_allowed_key(mask)
            energies = energies.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energies, dim=-1)
        if mask is not None:
            weights = weights.masked_fill(~mask, 0.0)
        return weights


def check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def masked_scaled(energies: Tensor, mask: Tensor | None, temperature: float) -> tuple[Tensor, Tensor | None]:
    """Divide by the temperature and set disallowed keys to -inf; return the broadcast mask too."""
    energies = energies / temperature
    if mask is None:
        return energies, None
    mask = expand_key_mask(mask, energies)
    return energies.masked_fill(~mask, float("-inf")), mask


def check_energies(scaled: Tensor) -> None:
    """Raise for energies that would give a clean-looking but meaningless distribution.

    ``scaled`` has masked keys at ``-inf`` already. NaN or ``+inf`` on an allowed key would be
    turned into a valid-looking one-hot (argmax) or crash the sparse mappings; a row whose
    allowed keys are all ``-inf`` (or that has none) cannot be normalised at all.
    """
    if bool(torch.isnan(scaled).any()) or bool(torch.isposinf(scaled).any()):
        raise ValueError("attention energies hold NaN or +inf on allowed keys; the weights would be "
                         "meaningless. Check the inputs and the score for overflow or NaN.")
    require_allowed_key(scaled > float("-inf"), " (or only keys whose energy is -inf)")


def zero_outside(weights: Tensor, mask: Tensor | None) -> Tensor:
    return weights if mask is None else weights.masked_fill(~mask, 0.0)


class SparseNormalizer(nn.Module):
    """A sparse mapping of the energies onto the simplex: weak keys get exactly 0."""

    def __init__(self, temperature: float = 1.0):
        super().__init__()
        check_temperature(temperature)
        self.temperature = temperature

    @staticmethod
    def mapping(scores: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        scaled, mask = masked_scaled(energies, mask, self.temperature)
        check_energies(scaled)
        return zero_outside(self.mapping(scaled), mask)


class SparsemaxNormalizer(SparseNormalizer):
    """Sparsemax: the Euclidean projection of the energies onto the simplex; weak keys get exactly 0."""

    @staticmethod
    def mapping(scores: Tensor) -> Tensor:
        return sparsemax(scores, dim=-1)


class Entmax15Normalizer(SparseNormalizer):
    """1.5-entmax: between softmax (dense) and sparsemax (sparsest); exact zeros, smoother weights."""

    @staticmethod
    def mapping(scores: Tensor) -> Tensor:
        return entmax15(scores, dim=-1)


def one_hot_at(index: Tensor, like: Tensor) -> Tensor:
    return torch.zeros_like(like).scatter_(-1, index, 1.0)


class HardNormalizer(nn.Module):
    """Hard attention: every query attends to exactly one key.

    At inference (``eval()``) the key with the highest energy. In training a key is sampled and
    gradients come from one of two estimators:

    - ``"gumbel"``: straight-through Gumbel-softmax. The forward value is the one-hot sample; the
      backward pass uses the gradient of ``softmax((e + g) / temperature)``.
    - ``"reinforce"``: the one-hot sample carries no gradient to the score; the sample's
      log-probability is kept in ``last_log_prob`` and :meth:`reinforce_loss` turns a reward into
      the score-function term, with a reward baseline to cut its variance: a moving average of
      past rewards, or with several samples per example the mean reward of the other samples.
    """

    def __init__(self, estimator: str = "gumbel", temperature: float = 1.0, baseline_decay: float = 0.9):
        super().__init__()
        if estimator not in ("gumbel", "reinforce"):
            raise ValueError(f"unknown hard-attention estimator {estimator!r}; choose 'gumbel' or 'reinforce'")
        check_temperature(temperature)
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must lie in [0, 1), got {baseline_decay}")
        self.estimator = estimator
        self.temperature = temperature
        self.baseline_decay = baseline_decay
        self.register_buffer("reward_baseline", torch.zeros(()))
        self.register_buffer("baseline_updates", torch.zeros((), dtype=torch.long))
        self.last_log_prob: Tensor | None = None

    def forward(self, energies: Tensor, mask: Tensor | None = None) -> Tensor:
        self.last_log_prob = None
        if not self.training:
            scaled, mask = masked_scaled(energies, mask, 1.0)
            check_energies(scaled)
            return one_hot_at(scaled.argmax(-1, keepdim=True), scaled)
        if self.estimator == "gumbel":
            scaled, mask = masked_scaled(energies, mask, 1.0)
            check_energies(scaled)
            uniform = torch.rand_like(scaled).clamp_(1e-10, 1.0 - 1e-7)
            perturbed = scaled - torch.log(-torch.log(uniform))
            soft = torch.softmax(perturbed / self.temperature, dim=-1)
            hard = one_hot_at(perturbed.argmax(-1, keepdim=True), soft)
            return zero_outside(hard - soft.detach() + soft, mask)
        scaled, mask = masked_scaled(energies, mask, self.temperature)
        check_energies(scaled)
        log_probs = torch.log_softmax(scaled, dim=-1)
        flat = log_probs.detach().exp().reshape(-1, log_probs.size(-1))
        index = torch.multinomial(flat, 1).view(*log_probs.shape[:-1], 1)
        self.last_log_prob = log_probs.gather(-1, index).squeeze(-1)
        return one_hot_at(index, log_probs).detach()

    def reinforce_loss(self, log_prob: Tensor, reward: Tensor, valid: Tensor, samples: int = 1) -> Tensor:
        """``-(reward - baseline) * log p(sample)``, averaged over the ``valid`` positions.

        With ``samples=1`` the baseline is one number, a moving average of past rewards (updated
        only when gradients are on, i.e. in training). With ``samples=K > 1`` the batch holds K
        consecutive copies of each example (``repeat_interleave``), each with its own samples,
        and the baseline of a sample is the mean reward of the other K-1 samples of the same
        example at the same step (leave-one-out; Kool et al. 2019): it does not depend on the
        sample it is subtracted from, so the estimate stays unbiased. The reward is a constant.
        """
        reward = reward.detach()
        if samples > 1:
            return -(leave_one_out_advantage(reward, valid, samples) * log_prob)[valid].mean()
        if samples != 1:
            raise ValueError(f"samples must be a positive integer, got {samples}")
        advantage = reward - self.reward_baseline
        term = -(advantage * log_prob)[valid].mean()
        if torch.is_grad_enabled():
            with torch.no_grad():
                mean = reward[valid].mean()
                if int(self.baseline_updates) == 0:
                    self.reward_baseline.copy_(mean)
                else:
                    self.reward_baseline.mul_(self.baseline_decay).add_((1.0 - self.baseline_decay) * mean)
                self.baseline_updates += 1
        return term


def leave_one_out_advantage(reward: Tensor, valid: Tensor, samples: int) -> Tensor:
    """``reward`` minus the mean reward of the other ``samples - 1`` samples of the same example.

    ``reward`` and ``valid`` are ``[B * samples, T]`` with each example's samples in consecutive
    rows; every group must have the same ``valid`` rows (they are copies of one example).
    """
    if samples < 2:
        raise ValueError(f"a leave-one-out baseline needs at least 2 samples, got {samples}")
    if reward.size(0) % samples:
        raise ValueError(f"the batch has {reward.size(0)} rows, not a multiple of samples={samples}")
    grouped = reward.reshape(-1, samples, *reward.shape[1:])
    grouped_valid = valid.reshape(-1, samples, *valid.shape[1:])
    if not bool((grouped_valid == grouped_valid[:, :1]).all()):
        raise ValueError("the samples of one example must share their valid positions: "
                         "repeat each example with repeat_interleave")
    others = (grouped.sum(1, keepdim=True) - grouped) / (samples - 1)
    return (grouped - others).reshape(reward.shape)


def make_normalizer(name: str, temperature: float = 1.0) -> nn.Module:
    """Build a normaliser by name: one of :data:`NORMALIZERS`."""
    if name == "softmax":
        return SoftmaxNormalizer(temperature)
    if name == "sparsemax":
        return SparsemaxNormalizer(temperature)
    if name == "entmax15":
        return Entmax15Normalizer(temperature)
    if name == "hard_gumbel":
        return HardNormalizer("gumbel", temperature)
    if name == "hard_reinforce":
        return HardNormalizer("reinforce", temperature)
    raise ValueError(f"unknown normalizer {name!r}; choose one of {NORMALIZERS}")
