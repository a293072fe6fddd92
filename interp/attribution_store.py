"""Write attributions into an interp store, beside the captured attention.

One record per example, shaped like the attention records ``capture_dataset`` writes (cut to
the real tokens): ``[1, src]`` for a classifier (one query, like pooling attention) and
``[tgt, src]`` for a seq2seq model (like cross-attention). ``kind`` is the method name;
``params`` holds the method's settings plus this example's convergence delta, so
``store.query(kind="integrated_gradients", params={"n_steps": 50})`` finds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import nn

from .attribution import Attribution

__all__ = ["attribution_rows", "save_attribution"]

_BATCH_SUMMARY = ("max_abs_delta", "mean_abs_delta")


def save_attribution(
    store: Any,
    attribution: Attribution,
    *,
    run: str,
    examples: Sequence[Any] | None = None,
    model: nn.Module | str = "",
    module: str | None = None,
    source: Sequence[Sequence[Any]] | None = None,
    target: Sequence[Sequence[Any]] | None = None,
    on_conflict: Literal["ignore", "replace", "raise"] = "ignore",
) -> int:
    """Store each example's scores; returns how many records were written.

    ``store``: an open :class:`interp.Store` (or a path, opened and closed here). ``examples``:
    ids (default 0..batch-1). ``model``: a name, or the model itself (its class name and weight
    fingerprint are recorded). ``module``: the record's module field (default: the embedding
    attributed to, or ``"input"`` for perturbation methods). ``source`` / ``target``: tokens.
    """
    from .store import Store, fingerprint

    fp = ""
    if isinstance(model, nn.Module):
        model, fp = type(model).__name__, fingerprint(model)
    rows = attribution_rows(attribution, run=run, examples=examples, model=str(model), fingerprint=fp,
                            module=module, source=source, target=target)
    if isinstance(store, Store):
        return store.add_many(rows, on_conflict=on_conflict)
    with Store(store) as db:
        return db.add_many(rows, on_conflict=on_conflict)


def attribution_rows(
    attribution: Attribution,
    *,
    run: str,
    examples: Sequence[Any] | None = None,
    model: str = "",
    fingerprint: str = "",
    module: str | None = None,
    source: Sequence[Sequence[Any]] | None = None,
    target: Sequence[Sequence[Any]] | None = None,
) -> list[dict[str, Any]]:
    """The store records (``Store.add_many`` rows) of a batch of attributions, one per example,
    cut to the real tokens (see the module docstring)."""
    scores, mask = attribution.scores.detach().cpu(), attribution.mask.cpu()
    n = scores.shape[0]
    examples = list(range(n)) if examples is None else list(examples)
    if len(examples) != n:
        raise ValueError(f"{len(examples)} example ids for a batch of {n} attributions")
    for name, toks in (("source", source), ("target", target)):
        if toks is not None and len(toks) != n:
            raise ValueError(f"{name} tokens given for {len(toks)} examples, but the batch has {n}")
    module = module or str(attribution.params.get("embedding", "input"))
    base = {k: v for k, v in attribution.params.items() if k not in _BATCH_SUMMARY}
    rows = []
    for i, example in enumerate(examples):
        if attribution.is_seq2seq:
            steps = mask[i].any(1)
            src_real = mask[i][steps].any(0) if steps.any() else mask[i].any(0)
            array = scores[i][steps][:, src_real]
        else:
            array = scores[i][mask[i]][None, :]
        params = dict(base)
        if attribution.deltas is not None:
            d = attribution.deltas[i].detach().cpu().reshape(-1)
            if attribution.is_seq2seq:
                d = d[attribution.target[i] >= 0]
            params["delta"] = float(d.abs().max()) if d.numel() else 0.0
        rows.append(dict(
            array=array.numpy(), run=run, model=model, fingerprint=fingerprint, module=module,
            example=example, step=0, kind=attribution.method, params=params,
            source=None if source is None else list(source[i]),
            target=None if target is None else list(target[i]),
        ))
    return rows
