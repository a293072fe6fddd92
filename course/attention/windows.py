"""The window axis of attention: which keys each query may look at (Luong et al. 2015, §3.2).

Global attention sees every key. Local attention picks an aligned position ``p_t`` and attends
only inside ``[p_t - D, p_t + D]``:

- ``local_m`` (monotonic): ``p_t = t``, the decoding step (clipped to the last real key);
- ``local_p`` (predictive): ``p_t = S * sigmoid(v^T tanh(W h_t))`` with ``S`` the source length,
  and the weights are multiplied by a Gaussian ``exp(-(s - p_t)^2 / (2 sigma^2))``, ``sigma = D/2``,
  which gives ``p_t`` a gradient. Luong does not renormalise after the Gaussian, nor do we.

A window returns ``(inside [B, Q, K], factor [B, Q, K] or None)``; :class:`course.attention.Attention`
hands ``inside & mask`` to the normaliser, so keys outside the window get exactly zero weight.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

WINDOWS = ("global", "local_m", "local_p")


def check_half_width(half_width: int) -> None:
    if half_width < 1:
        raise ValueError(
            f"window_half_width must be at least 1 (the window [p_t - D, p_t + D] must reach a real "
            f"key), got {half_width}; set window_half_width >= 1 or window='global'"
        )


def key_lengths(mask: Tensor | None, batch: int, num_keys: int, device: torch.device) -> Tensor:
    if mask is None:
        return torch.full((batch,), num_keys, device=device)
    return mask.sum(-1)


class LocalWindow(nn.Module):
    """A window of half-width ``D`` around an aligned position: monotonic or predicted."""

    def __init__(self, half_width: int, predictive: bool = False, query_size: int | None = None,
                 units: int | None = None):
        super().__init__()
        check_half_width(half_width)
        self.half_width = half_width
        self.predictive = predictive
        if predictive:
            if query_size is None:
                raise ValueError("a predictive (local-p) window needs query_size to predict p_t from the query")
            units = query_size if units is None else units
            self.position_hidden = nn.Linear(query_size, units, bias=False)
            self.position_out = nn.Linear(units, 1, bias=False)

    @property
    def needs_positions(self) -> bool:
        """Local-m needs each query's decoding step; local-p predicts its position from the query."""
        return not self.predictive

    @property
    def sigma(self) -> float:
        return self.half_width / 2.0

    def aligned_positions(self, query: Tensor, lengths: Tensor, positions: Tensor | None) -> Tensor:
        """``p_t`` for every query, ``[B, Q]`` (real-valued for local-p)."""
        last = (lengths - 1).to(query.dtype).unsqueeze(1)
        if self.predictive:
            fraction = torch.sigmoid(self.position_out(torch.tanh(self.position_hidden(query)))).squeeze(-1)
            return lengths.to(query.dtype).unsqueeze(1) * fraction
        if positions is None:
            positions = torch.arange(query.size(1), device=query.device).expand(query.size(0), -1)
        return torch.minimum(positions.to(query.dtype), last)

    def forward(self, query: Tensor, num_keys: int, mask: Tensor | None = None,
                positions: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        lengths = key_lengths(mask, query.size(0), num_keys, query.device)
        centre = self.aligned_positions(query, lengths, positions)                 # [B, Q]
        source = torch.arange(num_keys, device=query.device, dtype=query.dtype)
        distance = source.view(1, 1, -1) - centre.unsqueeze(-1)                    # [B, Q, K]
        inside = distance.abs() <= self.half_width
        if not self.predictive:
            return inside, None
        return inside, torch.exp(-distance.pow(2) / (2.0 * self.sigma ** 2))


def make_window(name: str, half_width: int = 10, query_size: int | None = None,
                units: int | None = None) -> LocalWindow | None:
    """``None`` for global attention, else a :class:`LocalWindow`."""
    if name not in WINDOWS:
        raise ValueError(f"unknown window {name!r}; choose one of {WINDOWS}")
    check_half_width(half_width)
    if name == "global":
        return None
    return LocalWindow(half_width, predictive=name == "local_p", query_size=query_size, units=units)
