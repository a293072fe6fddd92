"""Forecasting with an LSTM and temporal attention over the input window.

The LSTM reads a window of past values; its last state is the query of an additive attention
over the window's steps, and the forecast is read from ``[h_last; context]``. The keys are each
step's ``[state; input]``. With ``values="states"`` (the default) the context averages the LSTM
states; with ``values="inputs"`` it averages the raw past inputs, so the weights
``[batch, 1, window]`` say directly which past values the forecast draws on. ``attention=False`` reads the forecast from ``h_last`` alone:
the no-attention baseline. (:func:`seasonal_naive` is the other baseline a forecaster must beat.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from course.attention import bahdanau_attention
from course.data.batches import WindowBatch
from course.models.outputs import ForecastOutput


class AttentionForecaster(nn.Module):
    """``window [B, L]`` (one series) or ``[B, L, features]`` to ``prediction [B, horizon]``."""

    def __init__(self, input_size: int = 1, hidden_size: int = 32, horizon: int = 1,
                 attention: bool = True, attention_units: int = 32, num_layers: int = 1,
                 values: str = "states"):
        super().__init__()
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1, got {horizon}")
        if values not in ("inputs", "states"):
            raise ValueError(f"values must be 'inputs' or 'states', got {values!r}")
        self.input_size, self.values = input_size, values
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.attention = None
        context_size = 0
        if attention:
            self.attention = bahdanau_attention(hidden_size, hidden_size + input_size, attention_units)
            context_size = input_size if values == "inputs" else hidden_size
        self.output = nn.Linear(hidden_size + context_size, horizon)

    def forward(self, window: Tensor) -> ForecastOutput:
        if window.dim() == 2:
            window = window.unsqueeze(-1)
        if window.dim() != 3 or window.size(-1) != self.input_size:
            raise ValueError(f"window must be [batch, steps] or [batch, steps, {self.input_size}], "
                             f"got {tuple(window.shape)}")
        states, (h, _) = self.lstm(window)
        last = h[-1]
        if self.attention is None:
            return ForecastOutput(self.output(last), None)
        keys = torch.cat([states, window], dim=-1)
        values = window if self.values == "inputs" else states
        attended = self.attention(last.unsqueeze(1), keys, values)
        features = torch.cat([last, attended.context.squeeze(1)], dim=-1)
        return ForecastOutput(self.output(features), attended.weights)


def seasonal_naive(window: Tensor, period: int, horizon: int = 1) -> Tensor:
    """Forecast each step as the value one ``period`` earlier: ``y_{t+h} = y_{t+h-period}``."""
    if window.dim() == 3:
        window = window[..., 0]
    if not 1 <= horizon <= period <= window.size(1):
        raise ValueError(f"need 1 <= horizon ({horizon}) <= period ({period}) <= window ({window.size(1)})")
    start = window.size(1) - period
    return window[:, start:start + horizon]


def forecast_loss(model: nn.Module, batch: WindowBatch) -> Tensor:
    """Mean squared error of ``model(window).prediction`` against the targets, for ``fit``."""
    return nn.functional.mse_loss(model(batch.window).prediction, batch.target)
