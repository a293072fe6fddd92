"""Real time series that ship with statsmodels, cut into (window, next values) pairs.

``load_series("sunspots")``: yearly sunspot numbers 1700-2008 (309 values, an ~11-year cycle).
``load_series("co2")``: Mauna Loa CO2, weekly 1958-2001, averaged to 526 months (period 12).
``load_series("seasonal_ar")``: a generated series, ``y_t = 0.4 y_{t-1} + 0.55 y_{t-24} + e_t``
(:func:`seasonal_ar`), whose forecast depends on a lag 24 steps back: its lag structure is known.
Splits are chronological (the future is never seen in training) and the scaling is fitted on
the training part only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from course.data.batches import WindowBatch

SERIES = {"sunspots": 11, "co2": 12, "seasonal_ar": 24}  # name -> seasonal period


def seasonal_ar(length: int = 1000, period: int = 24, recent: float = 0.4, seasonal: float = 0.55,
                seed: int = 13, burn_in: int = 500) -> np.ndarray:
    """A seasonal autoregression: ``y_t = recent * y_{t-1} + seasonal * y_{t-period} + e_t``.

    ``e_t`` is standard normal noise drawn from ``numpy.random.default_rng(seed)``, so the series
    is the same on every machine. The first ``burn_in`` values (started from zeros) are dropped.
    The true lags are 1 and ``period``; ``recent * y_t + seasonal * y_{t+1-period}`` is the best
    one-step forecast, and its error is the noise alone (mean absolute error about 0.8).
    """
    if length < 1 or burn_in < 0:
        raise ValueError(f"length must be at least 1 and burn_in at least 0, got {length} and {burn_in}")
    if period < 2:
        raise ValueError(f"period must be at least 2 (lag 1 is the recent term), got {period}")
    if abs(recent) + abs(seasonal) >= 1:
        raise ValueError(f"|recent| + |seasonal| must be below 1 for a stationary series, got "
                         f"{recent} and {seasonal}")
    noise = np.random.default_rng(seed).standard_normal(length + burn_in)
    values = np.zeros(length + burn_in)
    for t in range(length + burn_in):
        values[t] = noise[t]
        if t >= 1:
            values[t] += recent * values[t - 1]
        if t >= period:
            values[t] += seasonal * values[t - period]
    return values[burn_in:].astype(np.float32)


def load_series(name: str) -> np.ndarray:
    """The named series as float32 values, gaps filled by interpolation."""
    if name not in SERIES:
        raise KeyError(f"unknown series {name!r}; choose one of {sorted(SERIES)}")
    if name == "seasonal_ar":
        return seasonal_ar(period=SERIES[name])
    if name == "sunspots":
        from statsmodels.datasets import sunspots

        values = sunspots.load_pandas().data["SUNACTIVITY"]
    else:
        from statsmodels.datasets import co2

        weekly = co2.load_pandas().data["co2"]
        values = weekly.resample("MS").mean().interpolate()
    return values.to_numpy(dtype=np.float32)


@dataclass(frozen=True)
class Scaler:
    """Standardisation fitted on training values; ``inverse`` maps predictions back."""

    mean: float
    std: float

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        std = float(values.std())
        return cls(float(values.mean()), std if std > 0 else 1.0)

    def transform(self, values: np.ndarray | Tensor) -> np.ndarray | Tensor:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray | Tensor) -> np.ndarray | Tensor:
        return values * self.std + self.mean


def make_windows(values: np.ndarray, window: int, horizon: int = 1) -> tuple[Tensor, Tensor]:
    """All ``(values[t-window:t], values[t:t+horizon])`` pairs: ``[N, window]`` and ``[N, horizon]``."""
    values = np.asarray(values, dtype=np.float32)
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be at least 1, got {window} and {horizon}")
    count = len(values) - window - horizon + 1
    if count < 1:
        raise ValueError(f"a series of {len(values)} values is too short for window {window} + "
                         f"horizon {horizon}")
    inputs = np.stack([values[t:t + window] for t in range(count)])
    targets = np.stack([values[t + window:t + window + horizon] for t in range(count)])
    return torch.from_numpy(inputs), torch.from_numpy(targets)


def split_windows(values: np.ndarray, window: int, horizon: int = 1, valid: float = 0.15,
                  test: float = 0.15) -> tuple[dict[str, tuple[Tensor, Tensor]], Scaler]:
    """Chronological train/valid/test windows of the standardised series, and the scaler.

    Each held-out split's windows may look back into the previous split (that is the past), but
    its targets are never a training target.
    """
    if not (0 < valid < 1 and 0 < test < 1 and valid + test < 1):
        raise ValueError(f"valid and test must be fractions summing to less than 1, got {valid}, {test}")
    n = len(values)
    valid_start, test_start = int(n * (1 - valid - test)), int(n * (1 - test))
    scaler = Scaler.fit(values[:valid_start])
    scaled = np.asarray(scaler.transform(values), dtype=np.float32)
    pieces = {"train": scaled[:valid_start],
              "valid": scaled[max(0, valid_start - window):test_start],
              "test": scaled[max(0, test_start - window):]}
    return {name: make_windows(piece, window, horizon) for name, piece in pieces.items()}, scaler


def window_loader(inputs: Tensor, targets: Tensor, batch_size: int = 32, shuffle: bool = False,
                  generator: torch.Generator | None = None) -> DataLoader:
    """Batches of :class:`WindowBatch` for :func:`course.models.temporal.forecast_loss`."""
    if len(inputs) != len(targets):
        raise ValueError(f"{len(inputs)} windows but {len(targets)} targets")
    return DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=shuffle,
                      generator=generator, collate_fn=collate_windows)


def collate_windows(items: list[tuple[Tensor, Tensor]]) -> WindowBatch:
    return WindowBatch(torch.stack([w for w, _ in items]), torch.stack([t for _, t in items]))
