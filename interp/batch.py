"""Capture a whole dataset into a store, batch by batch, with progress and resume.

Each batch is a mapping::

    {"ids": [...],                       # one example id per row (required)
     "inputs": x,                        # model(x), model(*x) for a tuple, model(**x) for a dict
     "source": [[tok, ...], ...],        # optional: tokens along the keys axis
     "target": [[tok, ...], ...]}        # optional: tokens along the queries axis

Memory stays bounded: a batch's weights are written in one transaction and dropped before the
next batch runs. A batch whose examples are all in the store already is skipped without running
the model, so an interrupted job resumes where it stopped; the store's unique key makes
re-writing a partly stored batch harmless.
"""

from __future__ import annotations

import fnmatch
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .capture import Capture, Selection, call_model
from .shard import Shard, rank_store_path, shard_from_environment
from .store import Store, fingerprint
from .trim import QueryAxis, ShapeMismatchError, trim_to_tokens


@dataclass
class CaptureReport:
    """What :func:`capture_dataset` did."""

    run: str
    batches: int = 0
    skipped_batches: int = 0
    other_ranks: int = 0  # batches left to the other processes of a sharded run
    store: str = ""  # the store file written (this rank's, in a sharded run)
    examples: int = 0
    records_written: int = 0
    seconds: float = 0.0


def _axis_for(module: str, queries: QueryAxis | Mapping[str, QueryAxis]) -> QueryAxis:
    if isinstance(queries, str):
        return queries
    for pattern, mode in queries.items():
        if fnmatch.fnmatchcase(module, pattern):
            return mode
    return "auto"


def _tokens(batch: Mapping[str, Any], key: str, n: int) -> list[Any] | None:
    tokens = batch.get(key)
    if tokens is None:
        return None
    tokens = list(tokens)
    if len(tokens) != n:
        raise ShapeMismatchError(f"batch has {n} ids but {len(tokens)} {key} token lists")
    return tokens


def capture_dataset(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    store: Store | str | os.PathLike[str],
    *,
    run: str,
    modules: Selection = None,
    model_name: str | None = None,
    forward: Callable[[nn.Module, Mapping[str, Any]], Any] | None = None,
    dtype: torch.dtype | None = None,
    kind: str = "attention",
    step: int = 0,
    queries: QueryAxis | Mapping[str, QueryAxis] = "auto",
    resume: bool = True,
    progress: bool = True,
    total: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    device: torch.device | str | None = None,
) -> CaptureReport:
    """Capture attention for every batch and write it to ``store``, one transaction per batch.

    One record per (module, example): the example's weights ``[(heads,) queries, keys]`` cut to
    its ``source`` length on the keys axis and, per ``queries`` (a mode, or ``{module glob:
    mode}``), to its source (self-attention) or target length on the queries axis. ``"auto"``
    picks target when target tokens are given and the module has several queries, source when
    the weights are square and no target is given. The model is run under ``torch.no_grad()``
    in whatever train/eval mode it is in. ``forward(model, batch)`` replaces the default call.

    Sharded (``rank`` / ``world_size`` given, or a ``torch.distributed`` process group, or
    ``torchrun``'s ``RANK`` / ``WORLD_SIZE``): this process captures only its batches
    (:class:`interp.shard.Shard`) into ``store/rank-NNNNN.sqlite``, where ``store`` is a folder;
    ``python -m interp merge store/ merged.sqlite`` combines the shards. ``device``: where the
    batch's tensors are moved before the forward (the model must already be there).
    """
    cap = Capture(model, modules, dtype=dtype)
    cap._warn_idle = False  # reported below, with the batch counts

    def work(index: int, batch: Mapping[str, Any], ids: list[str]) -> list[dict[str, Any]]:
        source = _tokens(batch, "source", len(ids))
        target = _tokens(batch, "target", len(ids))
        with torch.no_grad():
            if forward is not None:
                forward(model, batch)
            else:
                if "inputs" not in batch:
                    raise TypeError(f"batch {index}: no 'inputs' (or pass forward=)")
                call_model(model, to_device(batch["inputs"], device))
        rows = _rows(cap, ids, source, target, queries, run=run, model=name, fp=fp,
                     kind=kind, step=step, batch_index=index)
        cap.clear()
        return rows

    name = model_name or type(model).__name__
    fp = fingerprint(model)
    with cap:
        report, produced = _run_batches(
            batches, store, work, run=run, kind=kind, model_name=name, resume=resume,
            progress=progress, total=total, shard=shard_from_environment(rank, world_size),
            desc=f"capture {run}",
        )
    if report.batches and not produced:  # rows already stored are not a silent failure
        warnings.warn(
            f"interp: capture_dataset ran {report.batches} batches ({report.examples} examples) "
            f"of run {run!r} but recorded nothing: no selected module ({', '.join(cap.names[:4])}) "
            f"ran during the forward. A forward through torch.compile(model) skips the hooks: pass "
            f"the compiled module as `model`, or call the module that was captured.",
            RuntimeWarning,
            stacklevel=2,
        )
    return report


def _run_batches(
    batches: Iterable[Mapping[str, Any]], store: Store | str | os.PathLike[str],
    work: Callable[[int, Mapping[str, Any], list[str]], list[dict[str, Any]]], *, run: str, kind: str,
    model_name: str, resume: bool, progress: bool, total: int | None, shard: Shard, desc: str,
) -> tuple[CaptureReport, int]:
    """The loop both dataset functions share: this rank's batches, resume, one transaction per
    batch, a progress bar. Returns the report and how many rows ``work`` produced."""
    if shard.world_size > 1:
        store = _rank_store(store, shard)
    own_store = not isinstance(store, Store)
    db = Store(store) if own_store else store
    report = CaptureReport(run=run, store=str(db.path))
    produced = 0  # rows computed, whether or not the store already had them
    start = time.perf_counter()
    if total is None and hasattr(batches, "__len__"):
        total = len(batches)  # type: ignore[arg-type]
    from tqdm.auto import tqdm

    bar = tqdm(total=total, disable=not progress, unit="batch", desc=desc)
    try:
        for index, batch in enumerate(batches):
            if not isinstance(batch, Mapping) or "ids" not in batch:
                raise TypeError(
                    f"batch {index}: expected a mapping with 'ids' (and 'inputs', optional "
                    f"'source'/'target'), got {type(batch).__name__}"
                )
            ids = [str(i) for i in batch["ids"]]
            if len(set(ids)) != len(ids):
                raise ValueError(f"batch {index}: duplicate example ids")
            if not shard.owns(ids):
                report.other_ranks += 1
                bar.update(1)
                continue
            if resume and ids and db.examples(run=run, kind=kind, model=model_name, among=ids) >= set(ids):
                report.skipped_batches += 1
                bar.update(1)
                continue
            rows = work(index, batch, ids)
            produced += len(rows)
            report.records_written += db.add_many(rows)
            report.batches += 1
            report.examples += len(ids)
            bar.update(1)
            bar.set_postfix(records=report.records_written, skipped=report.skipped_batches)
    finally:
        bar.close()
        if own_store:
            db.close()
    report.seconds = time.perf_counter() - start
    return report, produced


def attribute_dataset(
    model: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    store: Store | str | os.PathLike[str],
    *,
    run: str,
    method: str = "integrated_gradients",
    model_name: str | None = None,
    seq2seq: bool = False,
    resume: bool = True,
    progress: bool = True,
    total: int | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    device: torch.device | str | None = None,
    **attribute_kwargs: Any,
) -> CaptureReport:
    """Attribute every batch with ``method`` and write one record per example to ``store``.

    Each batch is ``{"ids": [...], "inputs": token ids [batch, src]}`` (a seq2seq model with
    ``seq2seq=True``: ``"inputs": (src_ids, tgt_ids)``), optionally with ``"attention_mask"`` or
    ``"lengths"`` (``"src_lengths"`` / ``"tgt_lengths"``), ``"target"`` (what to explain) and
    ``"source"`` / ``"target_tokens"`` tokens. ``attribute_kwargs`` go to
    :func:`interp.attribute` (``pad_id``, ``n_steps``, ``batch_size``, ...). Records are those of
    :func:`interp.save_attribution` (kind = the method, params = its settings). Resume, progress
    and sharding (and ``device``) as in :func:`capture_dataset`.
    """
    from .attribution import attribute, attribute_seq2seq
    from .attribution_methods import find_method
    from .attribution_store import attribution_rows

    kind = find_method(method).name
    name = model_name or type(model).__name__
    fp = fingerprint(model)

    def work(index: int, batch: Mapping[str, Any], ids: list[str]) -> list[dict[str, Any]]:
        if "inputs" not in batch:
            raise TypeError(f"batch {index}: no 'inputs' (token ids to attribute)")
        extra = {key: to_device(batch[key], device) for key in (
            "attention_mask", "lengths", "target", "src_lengths", "tgt_lengths") if key in batch}
        inputs = to_device(batch["inputs"], device)
        if seq2seq:
            src, tgt = inputs
            result = attribute_seq2seq(model, src, tgt, method, **extra, **attribute_kwargs)
        else:
            result = attribute(model, inputs, method, **extra, **attribute_kwargs)
        if result.scores.shape[0] != len(ids):
            raise ShapeMismatchError(f"batch {index}: {result.scores.shape[0]} attributions for {len(ids)} ids")
        return attribution_rows(result, run=run, examples=ids, model=name, fingerprint=fp,
                                source=_tokens(batch, "source", len(ids)),
                                target=_tokens(batch, "target_tokens", len(ids)))

    report, _ = _run_batches(
        batches, store, work, run=run, kind=kind, model_name=name, resume=resume, progress=progress,
        total=total, shard=shard_from_environment(rank, world_size), desc=f"{kind} {run}",
    )
    return report


def to_device(inputs: Any, device: torch.device | str | None) -> Any:
    """``inputs`` with every tensor (also inside tuples, lists and dicts) moved to ``device``."""
    if device is None:
        return inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return {k: to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(v, device) for v in inputs)
    return inputs


def _rank_store(store: Any, shard: Shard) -> Path:
    """The store file of this rank in the folder ``store``; a single file is refused."""
    if isinstance(store, Store) or Path(store).suffix in (".sqlite", ".db") or Path(store).is_file():
        raise ValueError(
            f"a sharded capture (rank {shard.rank} of {shard.world_size}) writes one store per rank: "
            f"give a folder (e.g. 'out/'), not the single store {str(getattr(store, 'path', store))!r}; "
            f"several processes must never write one file. For one process, pass rank=0, world_size=1"
        )
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    return rank_store_path(folder, shard.rank)


def _rows(
    cap: Capture, ids: list[str], source: list[Any] | None, target: list[Any] | None,
    queries: QueryAxis | Mapping[str, QueryAxis], *, run: str, model: str, fp: str,
    kind: str, step: int, batch_index: int,
) -> list[dict[str, Any]]:
    rows = []
    for module, weights in cap.as_dict().items():
        if weights.shape[0] != len(ids):
            raise ShapeMismatchError(
                f"batch {batch_index}: module {module!r} produced weights for {weights.shape[0]} "
                f"examples but the batch has {len(ids)} ids"
            )
        mode = _axis_for(module, queries)
        for i, example in enumerate(ids):
            src = source[i] if source is not None else None
            tgt = target[i] if target is not None else None
            w = trim_to_tokens(weights[i], src, tgt, mode=mode, where=f"module {module!r}, example {example!r}")
            if w.is_floating_point() and bool(torch.isnan(w).any()):
                warnings.warn(
                    f"interp: NaN attention weights in run {run!r}, module {module!r}, example "
                    f"{example!r} (batch {batch_index}); stored as is",
                    RuntimeWarning,
                    stacklevel=3,
                )
            rows.append(dict(
                array=w, run=run, model=model, fingerprint=fp, module=module, example=example,
                step=step, kind=kind, source=src, target=tgt,
            ))
    return rows


__all__ = ["CaptureReport", "ShapeMismatchError", "attribute_dataset", "capture_dataset"]
