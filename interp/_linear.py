"""Weighted (ridge) least squares as a Captum interpretable model, so LIME and KernelSHAP run
without scikit-learn.

Captum's defaults for ``Lime`` / ``KernelShap`` fit scikit-learn's Lasso / LinearRegression. We
fit in closed form with torch instead: KernelSHAP's estimate *is* a weighted least-squares
solution (``alpha=0``), and ridge with ``alpha=1`` is the reference ``lime`` package's default
surrogate. The intercept is not penalised (features are centred by their weighted means).
"""

from __future__ import annotations

from typing import Any

import torch
from captum._utils.models.linear_model import LinearModel
from torch.utils.data import DataLoader


def _fit_weighted_ridge(
    model: LinearModel, dataloader: DataLoader, construct_kwargs: dict[str, Any], **_: Any
) -> dict[str, float]:
    alpha = float(construct_kwargs.get("alpha", 0.0))
    xs, ys, ws = [], [], []
    for batch in dataloader:
        x, y = batch[0], batch[1]
        w = batch[2] if len(batch) > 2 else torch.ones(x.shape[0])
        xs.append(x.reshape(x.shape[0], -1))
        ys.append(y.reshape(y.shape[0], -1))
        ws.append(w.reshape(-1))
    x = torch.cat(xs).double()
    y = torch.cat(ys).double()
    w = torch.cat(ws).double().clamp_min(0)
    w = w / w.sum().clamp_min(1e-300)
    x_mean = (w[:, None] * x).sum(0)
    y_mean = (w[:, None] * y).sum(0)
    sw = w.sqrt()[:, None]
    xc, yc = (x - x_mean) * sw, (y - y_mean) * sw
    if alpha > 0:
        p = x.shape[1]
        gram = xc.T @ xc + alpha * torch.eye(p, dtype=x.dtype)
        coef = torch.linalg.solve(gram, xc.T @ yc)
    else:
        coef = torch.linalg.lstsq(xc, yc, driver="gelsd").solution
    bias = y_mean - x_mean @ coef
    model._construct_model_params(
        weight_values=coef.T.float().contiguous(), bias_value=bias.float().reshape(-1)
    )
    return {}


class WeightedRidge(LinearModel):
    """Weighted ridge regression (``alpha=0``: weighted least squares), fitted in closed form."""

    def __init__(self, alpha: float = 0.0) -> None:
        super().__init__(train_fn=_fit_weighted_ridge, alpha=alpha)
