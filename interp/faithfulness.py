"""Does an importance ranking (attention or attribution) say what the model actually used?

Erasure (DeYoung et al. 2020, ERASER): remove the top-k% tokens and see the predicted class's
probability fall (*comprehensiveness*), or keep only them and see it stay (*sufficiency*); AOPC
averages over the bins {1, 5, 10, 20, 50}%. Removal replaces token ids by ``baseline_id`` in place,
so nothing is re-tokenised and positions keep their meaning; padding is never touched.

Counterfactual attention (Jain & Wallace 2019; Wiegreffe & Pinter 2019) needs the model to let
us set its attention. The protocol is one callable::

    forward_with_attention(input_ids, attention=None) -> (logits [batch, classes], attention [batch, src])

Called with ``attention=None`` it runs normally and returns the weights it used; called with a
tensor it uses those weights instead of its own (rows sum to 1 over real tokens, padding 0).

Conventions: k = ceil(fraction x length), at least 1; ties in the scores are broken by position
(earlier first); total variation distance (TVD) = half the L1 distance of the output
distributions; adversarial JS divergence is in nats (at most ln 2 = 0.693, as Jain & Wallace
plot it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ._renamed import renamed
from .attribution import Attribution, attribute
from .inputs import (
    as_target,
    logits_of,
    padding_mask,
    split_kwargs,
    validate_target,
    with_attention_mask,
)

__all__ = [
    "AdversarialResult",
    "FRACTIONS",
    "adversarial_attention",
    "aopc",
    "erasure",
    "leave_one_out",
    "permutation_test",
    "uniform_attention",
    "uniform_baseline",
]

FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
ForwardWithAttention = Callable[..., tuple[Tensor, Tensor]]


# --------------------------------------------------------------------------- helpers


def _ids(input_ids: Any) -> Tensor:
    ids = torch.as_tensor(input_ids)
    if ids.dtype.is_floating_point or ids.dim() != 2:
        raise ValueError(f"input_ids must be integer token ids [batch, seq], got {ids.dtype} {tuple(ids.shape)}")
    return ids.long()


def _scores(scores: Any, shape: torch.Size, name: str) -> Tensor:
    if isinstance(scores, Attribution):
        scores = scores.scores
    s = torch.as_tensor(np.asarray(scores) if not isinstance(scores, Tensor) else scores).detach().float()
    if s.shape != shape:
        raise ValueError(
            f"scores {name!r} have shape {tuple(s.shape)} but the token ids have shape {tuple(shape)}; "
            "give one score per token (seq2seq scores [batch, tgt, src]: pick a step or aggregate first)"
        )
    return s.cpu()


def _classifier(
    model: Any, forward_fn: Callable[..., Tensor] | None, forward_kwargs: Mapping[str, Any] | None, n: int,
    attention_mask: Tensor | None = None,
) -> Callable[[Tensor, Tensor], Tensor]:
    """``f(ids, rows)`` -> probabilities, ``rows`` saying which example each id row copies."""
    fn = forward_fn if forward_fn is not None else model
    names, tensors, static = split_kwargs(with_attention_mask(fn, forward_kwargs, attention_mask), n)

    def probs(ids: Tensor, rows: Tensor) -> Tensor:
        out = logits_of(fn(ids, **static, **{k: t[rows] for k, t in zip(names, tensors, strict=True)}))
        if isinstance(out, (tuple, list)):
            raise TypeError("the model returned a tuple; pass forward_fn= returning logits [batch, classes]")
        if out.dim() != 2 or out.shape[0] != ids.shape[0]:
            raise ValueError(f"the model must return logits [batch, classes], got {tuple(out.shape)}")
        return out.float().softmax(-1)

    return probs


def _batched(fn: Callable[[Tensor, Tensor], Tensor], ids: Tensor, rows: Tensor, batch_size: int) -> Tensor:
    with torch.no_grad():
        return torch.cat([fn(ids[i : i + batch_size], rows[i : i + batch_size]) for i in range(0, ids.shape[0], batch_size)])


def _target(target: Any, p_full: Tensor) -> Tensor:
    """The class explained per example: ``target`` checked (attribution's rules), else the
    prediction on the full input."""
    t = as_target(target, p_full.shape[0], p_full.device)
    if t is None:
        return p_full.argmax(-1)
    validate_target(t, p_full.shape[-1], "target")
    return t


def _k(fraction: float, n: int) -> int:
    if not 0 < fraction <= 1:
        raise ValueError(f"fractions must lie in (0, 1], got {fraction}")
    return 0 if n == 0 else max(1, math.ceil(fraction * n - 1e-9))


def _tvd(p: Tensor, q: Tensor) -> Tensor:
    return 0.5 * (p - q).abs().sum(-1)


def _ranking(scores: Tensor, mask: Tensor) -> Tensor:
    """Positions by decreasing score, real tokens first, ties by position (stable sort)."""
    keyed = torch.where(mask, scores, torch.full_like(scores, -math.inf))
    return torch.sort(keyed, dim=-1, descending=True, stable=True).indices


# --------------------------------------------------------------------------- erasure


def erasure(
    model: Any,
    input_ids: Any,
    scores: Any,
    *,
    baseline_id: int | None = None,
    fractions: Sequence[float] = FRACTIONS,
    target: Any = None,
    attention_mask: Tensor | None = None,
    lengths: Any = None,
    pad_id: int | None = None,
    abs_scores: bool = False,
    forward_fn: Callable[..., Tensor] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    batch_size: int = 256,
    mask_id: int | None = None,
) -> pd.DataFrame:
    """ERASER comprehensiveness and sufficiency per example, fraction (and method).

    Removed tokens are replaced by ``baseline_id`` (your mask, unk or pad id; old name
    ``mask_id``).
    ``scores``: ``[batch, src]`` importances, an :class:`Attribution`, or a dict of them by
    method name. ``target``: the class whose probability is tracked (default: the prediction on
    the full input). Columns: ``method``, ``example``, ``fraction``, ``k``, ``length``,
    ``p_full``, ``comprehensiveness`` = p(x) - p(x without top-k), ``sufficiency`` = p(x) -
    p(top-k only). Use :func:`aopc` to average over fractions.
    """
    baseline_id = _baseline(baseline_id, mask_id, "erasure")
    ids = _ids(input_ids)
    mask = padding_mask(ids, attention_mask=attention_mask, lengths=lengths, pad_id=pad_id)
    by_method = dict(scores) if isinstance(scores, Mapping) else {"scores": scores}
    if not by_method:
        raise ValueError("no scores given")
    n, s = ids.shape
    probs = _classifier(model, forward_fn, forward_kwargs, n, attention_mask)
    all_rows = torch.arange(n)
    p_full = _batched(probs, ids, all_rows, batch_size)
    tgt = _target(target, p_full)
    lens = mask.sum(1).tolist()
    variants, rows, meta = [], [], []
    for name, sc in by_method.items():
        sc = _scores(sc, ids.shape, name)
        order = _ranking(sc.abs() if abs_scores else sc, mask.cpu())
        for b in range(n):
            for f in fractions:
                k = _k(float(f), lens[b])
                top = order[b, :k]
                removed = ids[b].clone()
                removed[top] = baseline_id
                kept = torch.where(mask[b], torch.full_like(ids[b], baseline_id), ids[b])
                kept[top] = ids[b, top]
                variants += [removed, kept]
                rows += [b, b]
                meta.append((name, b, float(f), k, lens[b]))
    row_idx = torch.tensor(rows, dtype=torch.long)
    p = _batched(probs, torch.stack(variants), row_idx, batch_size)
    p_t = p[torch.arange(p.shape[0]), tgt[row_idx]].cpu()
    full_t = p_full[torch.arange(n), tgt].cpu()
    recs = []
    for i, (name, b, f, k, length) in enumerate(meta):
        pf = float(full_t[b])
        recs.append({
            "method": name, "example": b, "fraction": f, "k": k, "length": length, "p_full": pf,
            "comprehensiveness": pf - float(p_t[2 * i]), "sufficiency": pf - float(p_t[2 * i + 1]),
        })
    return pd.DataFrame.from_records(recs)


def aopc(df: pd.DataFrame) -> pd.DataFrame:
    """Area over the perturbation curve: comprehensiveness and sufficiency averaged over the
    fractions of :func:`erasure`, one row per method and example (the mean over the bins, as
    ERASER's code computes it; the paper's formula also counts a 0% bin, which adds 0)."""
    need = {"method", "example", "comprehensiveness", "sufficiency"}
    if not need <= set(df.columns):
        raise ValueError(f"aopc() needs the table from erasure(); missing columns {sorted(need - set(df.columns))}")
    out = df.groupby(["method", "example"], sort=False)[["comprehensiveness", "sufficiency"]].mean()
    return out.reset_index().rename(
        columns={"comprehensiveness": "comprehensiveness_aopc", "sufficiency": "sufficiency_aopc"}
    )


def leave_one_out(
    model: Any,
    input_ids: Any,
    *,
    baseline_id: int | None = None,
    measure: str = "prob",
    target: Any = None,
    attention_mask: Tensor | None = None,
    lengths: Any = None,
    pad_id: int | None = None,
    forward_fn: Callable[..., Tensor] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    batch_size: int = 256,
    mask_id: int | None = None,
) -> Tensor:
    """Importance of each token = the output change when it alone is replaced by ``baseline_id``.

    ``measure="prob"``: p(target | x) - p(target | x with token i replaced) (signed);
    ``"tvd"``: total variation distance between the two output distributions (Jain & Wallace's
    leave-one-out). Returns ``[batch, src]``, 0 on padding. The same computation as
    ``interp.attribute(model, ids, "leave_one_out", output="probs")`` (it runs that), returning
    the scores only.
    """
    baseline_id = _baseline(baseline_id, mask_id, "leave_one_out")
    if measure not in ("prob", "tvd"):
        raise ValueError(f"measure must be 'prob' or 'tvd', not {measure!r}")
    ids = _ids(input_ids)
    result = attribute(
        model, ids, "leave_one_out", target=target, attention_mask=attention_mask, lengths=lengths,
        pad_id=pad_id, baseline_id=baseline_id, batch_size=batch_size, output="probs",
        forward_fn=forward_fn, forward_kwargs=forward_kwargs,
        measure="difference" if measure == "prob" else "tvd",
    )
    return result.scores.float().cpu()


def _baseline(baseline_id: int | None, mask_id: int | None, where: str) -> int:
    value = renamed(baseline_id, mask_id, new="baseline_id", old="mask_id", where=where)
    if value is None:
        raise TypeError(f"{where}() needs baseline_id=, the token id that replaces a removed token "
                        "(your mask, unk or pad id)")
    return int(value)


# --------------------------------------------------------------------------- counterfactual attention


def uniform_attention(mask: Tensor) -> Tensor:
    """Uniform weights over real tokens (padding 0): Wiegreffe & Pinter's baseline attention.

    To build their *frozen uniform* model, train with
    ``forward_with_attention(ids, uniform_attention(ids != pad_id))``.
    """
    m = mask.float()
    return m / m.sum(-1, keepdim=True).clamp_min(1.0)


def _attention_call(fwa: ForwardWithAttention, ids: Tensor, attention: Tensor | None) -> tuple[Tensor, Tensor]:
    out = fwa(ids, attention)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(
            "forward_with_attention(input_ids, attention) must return (logits, attention); see "
            "interp.faithfulness for the protocol"
        )
    logits, att = out
    if att.shape != ids.shape:
        raise ValueError(
            f"the attention returned has shape {tuple(att.shape)}; the counterfactual attention "
            f"experiments need pooling attention [batch, src] = {tuple(ids.shape)}"
        )
    return logits, att


def _setup(fwa: ForwardWithAttention, input_ids: Any, attention_mask: Any, lengths: Any, pad_id: int | None):
    ids = _ids(input_ids)
    mask = padding_mask(ids, attention_mask=attention_mask, lengths=lengths, pad_id=pad_id)
    with torch.no_grad():
        logits, att = _attention_call(fwa, ids, None)
    return ids, mask, logits.float().softmax(-1), att.detach().float()


def permutation_test(
    forward_with_attention: ForwardWithAttention,
    input_ids: Any,
    *,
    n_permutations: int = 100,
    attention_mask: Tensor | None = None,
    lengths: Any = None,
    pad_id: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Jain & Wallace's random permutation: shuffle each example's attention over its real
    tokens ``n_permutations`` times and measure the output change (TVD) each time.

    One row per example: ``length``, ``max_attention``, ``median_tvd``, ``mean_tvd``,
    ``flip_rate`` (share of permutations that change the predicted class).
    """
    ids, mask, p0, att = _setup(forward_with_attention, input_ids, attention_mask, lengths, pad_id)
    n, s = ids.shape
    gen = torch.Generator().manual_seed(seed)
    pos = torch.arange(s, dtype=torch.float32).expand(n, s)
    # destination: real positions in order, then padding; source: real positions shuffled
    dst = torch.sort(torch.where(mask.cpu(), pos, pos + s), dim=1, stable=True).indices
    rows = torch.arange(n).repeat(n_permutations)
    keys = torch.rand(n_permutations, n, s, generator=gen)
    src = torch.sort(torch.where(mask.cpu(), keys, 2 + pos), dim=2, stable=True).indices
    permuted = torch.zeros(n_permutations, n, s)
    permuted.scatter_(2, dst.expand(n_permutations, n, s), att.cpu().expand(n_permutations, n, s).gather(2, src))
    flat_ids, flat_att = ids[rows], permuted.reshape(-1, s).to(att.device)
    ps = []
    with torch.no_grad():
        for i in range(0, flat_ids.shape[0], batch_size):
            logits, _ = _attention_call(forward_with_attention, flat_ids[i : i + batch_size], flat_att[i : i + batch_size])
            ps.append(logits.float().softmax(-1))
    p = torch.cat(ps).reshape(n_permutations, n, -1)
    tvds = _tvd(p, p0[None]).T.cpu()
    flips = (p.argmax(-1) != p0.argmax(-1)[None]).float().T.cpu()
    return pd.DataFrame({
        "example": range(n),
        "length": mask.sum(1).tolist(),
        "max_attention": att.max(1).values.tolist(),
        "median_tvd": tvds.median(1).values.tolist(),
        "mean_tvd": tvds.mean(1).tolist(),
        "flip_rate": flips.mean(1).tolist(),
    })


def _jsd(p: Tensor, q: Tensor) -> Tensor:
    """Jensen-Shannon divergence in nats along the last axis (0 log 0 = 0)."""
    m = 0.5 * (p + q)

    def kl(a: Tensor, b: Tensor) -> Tensor:
        return torch.where(a > 0, a * (torch.log(a.clamp_min(1e-30)) - torch.log(b.clamp_min(1e-30))), torch.zeros_like(a)).sum(-1)

    return 0.5 * (kl(p, m) + kl(q, m))


class AdversarialResult(NamedTuple):
    """``table``: one row per example; ``attention``: the adversarial weights ``[batch, src]``."""

    table: pd.DataFrame
    attention: Tensor


def adversarial_attention(
    forward_with_attention: ForwardWithAttention,
    input_ids: Any,
    *,
    epsilon: float = 0.01,
    steps: int = 300,
    lr: float = 0.1,
    penalty: float = 1.0,
    restarts: int = 4,
    attention_mask: Tensor | None = None,
    lengths: Any = None,
    pad_id: int | None = None,
    seed: int = 0,
) -> AdversarialResult:
    """Jain & Wallace's adversarial attention: weights as far as possible (JS divergence) from
    the model's own while the output moves by at most ``epsilon`` (TVD).

    Adam optimises attention logits for all examples and ``restarts`` starting points at once,
    maximising ``JSD(a, a0) - penalty * relu(TVD - eps) / eps``; for each example the best
    iterate that satisfies the constraint is kept (the original attention, JSD 0, if none does).
    Table:
    ``length``, ``max_attention``, ``js_divergence`` (nats), ``tvd``, ``feasible``.
    """
    if epsilon <= 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    ids, mask, p0, att0 = _setup(forward_with_attention, input_ids, attention_mask, lengths, pad_id)
    n, s = ids.shape
    gen = torch.Generator().manual_seed(seed)
    # JSD is convex in the attention, so gradient ascent ends at the nearest local maximum:
    # start from several points (batched): near the model's own weights, near the real token
    # with the least attention (the best vertex when the output does not care), and at random
    inits = [torch.log(att0.clamp_min(1e-6)) + torch.randn(ids.shape, generator=gen)]
    if restarts > 1:
        low = torch.where(mask, att0, torch.full_like(att0, math.inf)).argmin(1)
        inits.append(4.0 * torch.nn.functional.one_hot(low, s).float() + 0.1 * torch.randn(ids.shape, generator=gen))
    inits += [3.0 * torch.randn(ids.shape, generator=gen) for _ in range(restarts - len(inits))]
    r_ids, r_mask, r_att0, r_p0 = ids.repeat(restarts, 1), mask.repeat(restarts, 1), att0.repeat(restarts, 1), p0.repeat(restarts, 1)
    z = torch.cat(inits).to(att0.device).masked_fill(~r_mask, 0.0).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    best_jsd = torch.zeros(n * restarts, device=att0.device)
    best_tvd = torch.zeros(n * restarts, device=att0.device)
    best_att = r_att0.clone()
    neg_inf = torch.finfo(att0.dtype).min
    for _ in range(steps):
        a = z.masked_fill(~r_mask, neg_inf).softmax(-1) * r_mask
        logits, _ = _attention_call(forward_with_attention, r_ids, a)
        p = logits.float().softmax(-1)
        jsd, tvd = _jsd(a, r_att0), _tvd(p, r_p0)
        with torch.no_grad():
            better = (tvd <= epsilon) & (jsd > best_jsd)
            best_jsd = torch.where(better, jsd, best_jsd)
            best_tvd = torch.where(better, tvd, best_tvd)
            best_att = torch.where(better[:, None], a, best_att)
        loss = (-jsd + penalty * torch.relu(tvd - epsilon) / epsilon).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    pick = best_jsd.reshape(restarts, n).argmax(0) * n + torch.arange(n, device=att0.device)
    best_jsd, best_tvd, best_att = best_jsd[pick], best_tvd[pick], best_att[pick]
    table = pd.DataFrame({
        "example": range(ids.shape[0]),
        "length": mask.sum(1).tolist(),
        "max_attention": att0.max(1).values.tolist(),
        "js_divergence": best_jsd.tolist(),
        "tvd": best_tvd.tolist(),
        "feasible": (best_jsd > 0).tolist(),
    })
    return AdversarialResult(table, best_att.detach())


def uniform_baseline(
    forward_with_attention: ForwardWithAttention,
    input_ids: Any,
    *,
    labels: Any = None,
    attention_mask: Tensor | None = None,
    lengths: Any = None,
    pad_id: int | None = None,
) -> pd.DataFrame:
    """Wiegreffe & Pinter's uniform baseline at inference: the output with the learned attention
    against the output with uniform weights over real tokens.

    One row per example: ``tvd`` between the two output distributions, both predictions,
    ``agree``, and with ``labels`` whether each is ``correct``. If uniform attention does as well,
    the learned attention was not needed for the prediction.
    """
    ids, mask, p0, _ = _setup(forward_with_attention, input_ids, attention_mask, lengths, pad_id)
    with torch.no_grad():
        logits, _ = _attention_call(forward_with_attention, ids, uniform_attention(mask).to(p0.dtype))
    pu = logits.float().softmax(-1)
    df = pd.DataFrame({
        "example": range(ids.shape[0]),
        "length": mask.sum(1).tolist(),
        "tvd": _tvd(p0, pu).tolist(),
        "pred_learned": p0.argmax(-1).tolist(),
        "pred_uniform": pu.argmax(-1).tolist(),
    })
    df["agree"] = df.pred_learned == df.pred_uniform
    if labels is not None:
        y = torch.as_tensor(labels).reshape(-1).tolist()
        if len(y) != ids.shape[0]:
            raise ValueError(f"labels has {len(y)} entries for a batch of {ids.shape[0]}")
        df["correct_learned"] = df.pred_learned == y
        df["correct_uniform"] = df.pred_uniform == y
    return df
