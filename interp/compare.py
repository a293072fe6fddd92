"""Agreement between importance scores (attention, attributions) and with ground truth.

Every function takes score arrays ``[batch, src]`` (one distribution per example) or
``[batch, tgt, src]`` (one per example and output step) plus the real tokens (``lengths``,
``mask`` or nothing), and only ever looks at real tokens: padding is cut off before any metric.

Conventions (the rules a reader needs to trust the numbers):

* **Kendall tau** is tau-b (``scipy.stats.kendalltau``), which corrects for ties; **Spearman** is
  ``scipy.stats.spearmanr`` (average ranks for ties). When either score vector is constant over
  the real tokens, or there are fewer than 2 of them, the rank correlation is undefined and we
  return NaN (no scipy warning); :func:`summarize` skips NaN and counts it in ``n_nan``.
* **Top-k overlap** = |top-k(a) ∩ top-k(b)| / k with k = min(k, length); ``k`` may be an int or
  a fraction of the length (rounded up). Ties are broken by position (earlier first), so it is
  deterministic. Rankings use the scores as given: pass ``abs_scores=True`` to rank attributions
  by magnitude (a strongly negative token is also important).
* **Jensen-Shannon distance** (base 2, in [0, 1]) between the two score vectors turned into
  distributions: absolute values normalised to sum 1 over real tokens. Attention is already a
  distribution; attributions are signed, hence the absolute value. All-zero scores: NaN.
* **AER** (Och & Ney 2003): ``1 - (|A∩S| + |A∩P|) / (|A| + |S|)`` with sure links S ⊆ possible P.
* **Rationales**: precision / recall of the top-k tokens (k = number of gold rationale tokens
  unless given) and AUPRC as average precision, sum over thresholds of (R_n - R_{n-1}) P_n with
  tied scores sharing one threshold (scikit-learn's definition). No gold token: NaN.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .arrays import to_numpy

__all__ = [
    "alignment_error_rate",
    "attention_to_alignment",
    "average_precision",
    "compare",
    "compare_scores",
    "jensen_shannon",
    "kendall_tau",
    "rationale_metrics",
    "spearman",
    "summarize",
    "topk_overlap",
]

METRICS = ("kendall_tau", "spearman", "topk_overlap", "js_distance")


# --------------------------------------------------------------------------- array handling


def _np(x: Any, name: str) -> np.ndarray:
    return to_numpy(x, name)


def _valid_mask(shape: tuple[int, ...], lengths: Any = None, mask: Any = None) -> np.ndarray:
    """Bool mask of real positions with the shape of the scores (``lengths`` count src tokens)."""
    if mask is not None:
        m = _np(mask, "mask").astype(bool)
        if m.shape != shape:
            if m.ndim == 2 and len(shape) == 3 and m.shape == (shape[0], shape[2]):
                m = np.broadcast_to(m[:, None, :], shape)
            else:
                raise ValueError(f"mask has shape {m.shape} but the scores have shape {shape}")
        return m
    if lengths is not None:
        lens = _np(lengths, "lengths").astype(int).reshape(-1)
        if lens.size != shape[0]:
            raise ValueError(f"lengths has {lens.size} entries for {shape[0]} examples")
        if (lens < 0).any() or (lens > shape[-1]).any():
            raise ValueError(f"lengths must lie in 0..{shape[-1]}, got {lens.tolist()}")
        m = np.arange(shape[-1])[None, :] < lens[:, None]
        return np.broadcast_to(m[:, None, :], shape) if len(shape) == 3 else m
    return np.ones(shape, dtype=bool)


def _rows(scores: Any, lengths: Any = None, mask: Any = None, name: str = "scores"):
    """Yield (example, step, 1-D real scores) for ``[b, s]`` (step None) or ``[b, t, s]``."""
    arr = _np(scores, name).astype(float)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be [batch, src] or [batch, tgt, src], got shape {arr.shape}")
    m = _valid_mask(arr.shape, lengths, mask)
    if arr.ndim == 2:
        for b in range(arr.shape[0]):
            yield b, None, arr[b][m[b]]
    else:
        for b in range(arr.shape[0]):
            for t in range(arr.shape[1]):
                if m[b, t].any():
                    yield b, t, arr[b, t][m[b, t]]


def _pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"the two score vectors have different lengths ({a.shape[-1]} and {b.shape[-1]}); "
            "they must score the same tokens"
        )


# --------------------------------------------------------------------------- 1-D metrics


def _is_constant(x: np.ndarray) -> bool:
    return x.size < 2 or bool(np.all(x == x[0]))


def _rank_correlation(a: Any, b: Any, statistic: Any) -> float:
    """A scipy rank statistic of two 1-D score vectors; NaN when either is constant or length < 2."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    _pair(a, b)
    if _is_constant(a) or _is_constant(b):
        return math.nan
    return float(statistic(a, b).statistic)


def kendall_tau(a: Any, b: Any) -> float:
    """Kendall tau-b between two 1-D score vectors; NaN when either is constant or length < 2."""
    return _rank_correlation(a, b, stats.kendalltau)


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation; NaN when either vector is constant or length < 2."""
    return _rank_correlation(a, b, stats.spearmanr)


def _k_of(k: int | float, n: int) -> int:
    if isinstance(k, float) and 0 < k < 1:
        return max(1, math.ceil(k * n))
    if int(k) < 1:
        raise ValueError(f"k must be a positive int or a fraction in (0, 1), got {k}")
    return min(int(k), n)


def _top(x: np.ndarray, k: int) -> np.ndarray:
    # stable sort on -x: ties keep position order, so earlier tokens win
    return np.argsort(-x, kind="stable")[:k]


def topk_overlap(a: Any, b: Any, k: int | float = 5) -> float:
    """|top-k(a) ∩ top-k(b)| / k, k = min(k, length) (fraction k: of the length, rounded up)."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    _pair(a, b)
    if a.size == 0:
        return math.nan
    kk = _k_of(k, a.size)
    return len(set(_top(a, kk).tolist()) & set(_top(b, kk).tolist())) / kk


def _as_distribution(x: np.ndarray) -> np.ndarray | None:
    p = np.abs(x)
    total = p.sum()
    if not np.isfinite(total) or total <= 0:
        return None
    return p / total


def jensen_shannon(a: Any, b: Any) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of |a| and |b| normalised to sum 1."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    _pair(a, b)
    p, q = _as_distribution(a), _as_distribution(b)
    if p is None or q is None:
        return math.nan
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(math.sqrt(max(0.0, 0.5 * (kl_p + kl_q))))


def average_precision(scores: Any, relevant: Any) -> float:
    """Average precision (area under the precision-recall curve, step-wise) of ``scores``
    ranking the True entries of ``relevant`` first; tied scores form one threshold."""
    s = np.asarray(scores, float).ravel()
    y = np.asarray(relevant, bool).ravel()
    _pair(s, y.astype(float))
    n_pos = int(y.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # last index of each group of equal scores = one threshold
    ends = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]
    tp = np.cumsum(y)[ends]
    precision = tp / (ends + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


# --------------------------------------------------------------------------- batched tables


def compare(
    scores_by_method: Mapping[str, Any],
    *,
    lengths: Any = None,
    mask: Any = None,
    k: int | float = 5,
    abs_scores: bool = False,
    metrics: Sequence[str] = METRICS,
) -> pd.DataFrame:
    """Agreement of every pair of methods, one row per example (and step) and pair.

    ``scores_by_method``: ``{"attention": att, "integrated_gradients": ig.scores, ...}``, all of
    the same shape ``[batch, src]`` or ``[batch, tgt, src]``. Columns: ``example``, ``step``
    (seq2seq only), ``method_a``, ``method_b``, ``length`` and the chosen ``metrics``.
    ``abs_scores`` ranks by magnitude (for signed attributions).
    """
    if len(scores_by_method) < 2:
        raise ValueError("compare() needs at least two methods' scores, e.g. {'attention': ..., 'ig': ...}")
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {list(METRICS)}")
    arrays = {name: _np(s, f"scores[{name!r}]").astype(float) for name, s in scores_by_method.items()}
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"all methods' scores must have the same shape, got {shapes}")
    rows_by = {
        name: list(_rows(np.abs(a) if abs_scores else a, lengths, mask, name)) for name, a in arrays.items()
    }
    seq2seq = next(iter(arrays.values())).ndim == 3
    records = []
    for ma, mb in itertools.combinations(arrays, 2):
        for (b, t, x), (_, _, y) in zip(rows_by[ma], rows_by[mb], strict=True):
            rec: dict[str, Any] = {"example": b}
            if seq2seq:
                rec["step"] = t
            rec.update(method_a=ma, method_b=mb, length=x.size)
            if "kendall_tau" in metrics:
                rec["kendall_tau"] = kendall_tau(x, y)
            if "spearman" in metrics:
                rec["spearman"] = spearman(x, y)
            if "topk_overlap" in metrics:
                rec["topk_overlap"] = topk_overlap(x, y, k)
            if "js_distance" in metrics:
                rec["js_distance"] = jensen_shannon(x, y)
            records.append(rec)
    return pd.DataFrame.from_records(records)


compare_scores = compare  # the name ``interp`` exports (``interp.compare`` is this module)


def summarize(
    df: pd.DataFrame,
    *,
    by: Sequence[str] | str | None = None,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean, std, bootstrap CI of each metric per group (default: per pair of methods).

    NaN values are left out and counted in ``n_nan``. The CI is scipy's percentile bootstrap of
    the mean (seeded, so reruns agree); with fewer than 2 values it is NaN. Long format: one row
    per group and metric with ``n``, ``n_nan``, ``mean``, ``std``, ``ci_low``, ``ci_high``.
    """
    if by is None:
        by = [c for c in ("method_a", "method_b", "method") if c in df.columns]
    by = [by] if isinstance(by, str) else list(by)
    if metrics is None:
        skip = set(by) | {"example", "step", "length", "k", "fraction"}
        metrics = [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]
    missing = [c for c in list(by) + list(metrics) if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the table (it has {list(df.columns)})")
    out = []
    groups = df.groupby(by, sort=False, dropna=False) if by else [((), df)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            vals = g[metric].to_numpy(float)
            ok = vals[~np.isnan(vals)]
            rec = dict(zip(by, key, strict=True))
            rec.update(metric=metric, n=ok.size, n_nan=int(vals.size - ok.size))
            rec["mean"] = float(ok.mean()) if ok.size else math.nan
            rec["std"] = float(ok.std(ddof=1)) if ok.size > 1 else math.nan
            lo = hi = math.nan
            if ok.size > 1 and not np.all(ok == ok[0]):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = _bootstrap(ok, confidence, n_resamples, seed)
                lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
            elif ok.size > 1:
                lo = hi = float(ok[0])
            rec.update(ci_low=lo, ci_high=hi)
            out.append(rec)
    return pd.DataFrame.from_records(out)


def _bootstrap(values: np.ndarray, confidence: float, n_resamples: int, seed: int) -> Any:
    kwargs = dict(confidence_level=confidence, n_resamples=n_resamples, method="percentile")
    try:  # scipy >= 1.15 names the generator ``rng``; older versions ``random_state``
        return stats.bootstrap((values,), np.mean, rng=np.random.default_rng(seed), **kwargs)
    except TypeError:
        return stats.bootstrap((values,), np.mean, random_state=np.random.default_rng(seed), **kwargs)


# --------------------------------------------------------------------------- ground truth


def attention_to_alignment(attention: Any, mask: Any = None, *, mode: str = "argmax", threshold: float = 0.5) -> np.ndarray:
    """Hard alignment from soft weights ``[(batch,) tgt, src]``: ``"argmax"`` links each target
    step to its most-attended real source token; ``"threshold"`` keeps weights >= threshold."""
    a = _np(attention, "attention").astype(float)
    m = np.ones(a.shape, bool) if mask is None else np.broadcast_to(_np(mask, "mask").astype(bool), a.shape)
    a = np.where(m, a, -np.inf)
    if mode == "argmax":
        out = np.zeros(a.shape, bool)
        idx = a.argmax(-1)
        np.put_along_axis(out, idx[..., None], True, axis=-1)
        return out & m & np.isfinite(a).any(-1, keepdims=True)
    if mode == "threshold":
        return (a >= threshold) & m
    raise ValueError(f"mode must be 'argmax' or 'threshold', not {mode!r}")


def _aer_one(a: np.ndarray, s: np.ndarray, p: np.ndarray) -> float:
    denom = a.sum() + s.sum()
    if denom == 0:
        return math.nan
    return float(1.0 - ((a & s).sum() + (a & p).sum()) / denom)


def alignment_error_rate(
    predicted: Any,
    sure: Any,
    possible: Any = None,
    *,
    src_lengths: Any = None,
    tgt_lengths: Any = None,
) -> pd.DataFrame:
    """AER per example (Och & Ney): inputs are bool links ``[batch, tgt, src]`` (or one
    ``[tgt, src]``). ``possible`` defaults to ``sure`` and is made a superset of it. Links in
    padding are ignored. Soft attention? Convert with :func:`attention_to_alignment` first."""
    a = _np(predicted, "predicted").astype(bool)
    s = _np(sure, "sure").astype(bool)
    p = s.copy() if possible is None else _np(possible, "possible").astype(bool)
    if a.ndim == 2:
        a, s, p = a[None], s[None], p[None]
    if not (a.shape == s.shape == p.shape) or a.ndim != 3:
        raise ValueError(
            f"predicted, sure and possible must all be [batch, tgt, src] of one shape, got "
            f"{a.shape}, {s.shape}, {p.shape}"
        )
    p = p | s
    b, t, n = a.shape
    valid = np.ones(a.shape, bool)
    if src_lengths is not None:
        valid &= _valid_mask((b, n), src_lengths)[:, None, :]
    if tgt_lengths is not None:
        valid &= _valid_mask((b, t), tgt_lengths)[:, :, None]
    a, s, p = a & valid, s & valid, p & valid
    recs = [
        {"example": i, "aer": _aer_one(a[i], s[i], p[i]), "precision": _safe(int((a[i] & p[i]).sum()), int(a[i].sum())),
         "recall": _safe(int((a[i] & s[i]).sum()), int(s[i].sum()))}
        for i in range(b)
    ]
    return pd.DataFrame.from_records(recs)


def _safe(num: int, den: int) -> float:
    return num / den if den else math.nan


def rationale_metrics(
    scores: Any,
    rationale: Any,
    *,
    lengths: Any = None,
    mask: Any = None,
    k: int | float | None = None,
    abs_scores: bool = False,
) -> pd.DataFrame:
    """Token-level agreement with gold rationales, one row per example (and step).

    ``rationale``: bool ``[batch, src]`` (or ``[batch, tgt, src]``), True on gold tokens.
    Columns: ``precision``/``recall`` of the top-k scored tokens (``k`` defaults to the number
    of gold tokens of the example, which makes them equal), ``auprc`` (average precision).
    """
    arr = _np(scores, "scores").astype(float)
    gold = _np(rationale, "rationale")
    if gold.shape != arr.shape:
        raise ValueError(f"rationale has shape {gold.shape} but the scores have shape {arr.shape}")
    if abs_scores:
        arr = np.abs(arr)
    recs = []
    for (b, t, x), (_, _, g) in zip(_rows(arr, lengths, mask), _rows(gold.astype(float), lengths, mask), strict=True):
        g = g.astype(bool)
        n_gold = int(g.sum())
        rec: dict[str, Any] = {"example": b}
        if arr.ndim == 3:
            rec["step"] = t
        kk = n_gold if k is None else _k_of(k, x.size)
        if x.size == 0 or kk == 0:
            prec = rec_ = math.nan
        else:
            kk = min(kk, x.size)
            hits = int(g[_top(x, kk)].sum())
            prec, rec_ = hits / kk, _safe(hits, n_gold)
        rec.update(k=kk, precision=prec, recall=rec_, auprc=average_precision(x, g) if x.size else math.nan)
        recs.append(rec)
    return pd.DataFrame.from_records(recs)
