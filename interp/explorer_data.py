"""What the explorer shows, from memory or from a store, behind one small interface.

An :class:`ExplorerData` answers: which examples, which runs for an example, which attention
modules and attribution methods for an (example, run), the tokens, and the arrays. Two
implementations:

* :class:`MemoryData` over example dicts a lesson builds in a few lines
  (``{"id", "source", "target", "attention", "attributions", "run"}``, see :func:`examples_from_batch`
  to cut a captured batch into them);
* :class:`StoreData` over an :class:`interp.Store`: metadata is queried once, arrays are read on
  demand (checksum-verified by the store) and a few are kept in memory.

Arrays are numpy: attention ``[(heads,) queries, keys]``, attribution ``[queries, keys]``
(a classifier's ``[keys]`` becomes one row).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .render import _numpy
from .trim import trim_to_tokens

__all__ = ["Example", "ExplorerData", "MemoryData", "StoreData", "examples_from_batch", "as_data"]


@dataclass
class Example:
    """One example of one run: tokens, attention per module, attribution per method."""

    id: str
    source: list[str] | None
    target: list[str] | None
    attention: dict[str, np.ndarray]
    attributions: dict[str, np.ndarray] = field(default_factory=dict)
    run: str = ""


class ExplorerData:
    """The questions the explorer asks of its data (override all of them)."""

    def examples(self) -> list[str]:
        raise NotImplementedError

    def runs(self, example: str) -> list[str]:
        raise NotImplementedError

    def modules(self, example: str, run: str) -> list[str]:
        raise NotImplementedError

    def methods(self, example: str, run: str) -> list[str]:
        raise NotImplementedError

    def tokens(self, example: str, run: str) -> tuple[list[str] | None, list[str] | None]:
        raise NotImplementedError

    def attention(self, example: str, run: str, module: str) -> np.ndarray:
        raise NotImplementedError

    def attribution(self, example: str, run: str, method: str) -> np.ndarray:
        raise NotImplementedError


def _attention_array(x: Any, where: str) -> np.ndarray:
    arr = _numpy(x, f"attention of {where}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"attention of {where} has shape {tuple(arr.shape)}; one example's attention must be "
            f"[queries, keys] or [heads, queries, keys] (index the batch first)"
        )
    return arr


def _attribution_array(x: Any, where: str) -> np.ndarray:
    x = getattr(x, "scores", x)  # an interp.attribute.Attribution of one example also works
    arr = _numpy(x, f"attribution of {where}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(
            f"attribution of {where} has shape {tuple(arr.shape)}; one example's attribution must "
            f"be [src] (classifier) or [tgt, src] (seq2seq)"
        )
    return arr


def _tokens(tokens: Any, where: str) -> list[str] | None:
    if tokens is None:
        return None
    if isinstance(tokens, str):
        raise TypeError(f"{where}: tokens must be a list of strings, not one string (split it first)")
    return [str(t) for t in tokens]


def _example(raw: Mapping[str, Any], default_id: str) -> Example:
    unknown = set(raw) - {"id", "source", "target", "attention", "attributions", "run"}
    if unknown:
        raise TypeError(
            f"example {default_id}: unknown keys {sorted(unknown)}; an example has id, source, "
            f"target, attention, attributions and run"
        )
    ex_id = str(raw.get("id", default_id))
    where = f"example {ex_id!r}"
    if "attention" not in raw and not raw.get("attributions"):
        raise ValueError(f"{where} has neither 'attention' nor 'attributions'; nothing to show")
    attn = raw.get("attention")
    if attn is None:
        attention = {}
    elif isinstance(attn, Mapping):
        attention = {str(k): _attention_array(v, f"{where}, module {k!r}") for k, v in attn.items()}
    else:
        attention = {"attention": _attention_array(attn, where)}
    attributions = {
        str(k): _attribution_array(v, f"{where}, method {k!r}")
        for k, v in dict(raw.get("attributions") or {}).items()
    }
    return Example(
        id=ex_id, source=_tokens(raw.get("source"), where), target=_tokens(raw.get("target"), where),
        attention=attention, attributions=attributions, run=str(raw.get("run", "")),
    )


class MemoryData(ExplorerData):
    """Examples held in memory: a list of example dicts, or ``{id: example dict}``."""

    def __init__(self, examples: Sequence[Mapping[str, Any]] | Mapping[Any, Mapping[str, Any]]):
        if isinstance(examples, Mapping):
            items = [_example({"id": k, **v}, str(k)) for k, v in examples.items()]
        else:
            items = [_example(v, str(i)) for i, v in enumerate(examples)]
        if not items:
            raise ValueError("no examples to explore; pass at least one example dict")
        self._by_key: dict[tuple[str, str], Example] = {}
        for ex in items:
            key = (ex.id, ex.run)
            if key in self._by_key:
                raise ValueError(f"example {ex.id!r} of run {ex.run!r} given twice; ids must be unique per run")
            self._by_key[key] = ex
        self._order = list(dict.fromkeys(ex.id for ex in items))

    def _get(self, example: str, run: str) -> Example:
        try:
            return self._by_key[(example, run)]
        except KeyError:
            raise KeyError(f"no example {example!r} in run {run!r}") from None

    def examples(self) -> list[str]:
        return list(self._order)

    def runs(self, example: str) -> list[str]:
        return [run for (ex, run) in self._by_key if ex == example]

    def modules(self, example: str, run: str) -> list[str]:
        return list(self._get(example, run).attention)

    def methods(self, example: str, run: str) -> list[str]:
        return list(self._get(example, run).attributions)

    def tokens(self, example: str, run: str) -> tuple[list[str] | None, list[str] | None]:
        ex = self._get(example, run)
        return ex.source, ex.target

    def attention(self, example: str, run: str, module: str) -> np.ndarray:
        return self._get(example, run).attention[module]

    def attribution(self, example: str, run: str, method: str) -> np.ndarray:
        return self._get(example, run).attributions[method]


def _batch_array(x: Any, what: str) -> np.ndarray:
    x = getattr(x, "scores", x)
    return _numpy(x, what)


def examples_from_batch(
    attention: Mapping[str, Any] | Any,
    source: Sequence[Sequence[Any]] | None = None,
    target: Sequence[Sequence[Any]] | None = None,
    *,
    attributions: Mapping[str, Any] | None = None,
    ids: Sequence[Any] | None = None,
    run: str = "",
) -> list[dict[str, Any]]:
    """Cut a batch into example dicts, each trimmed to its own token lengths.

    ``attention``: ``{module: [batch, (heads,) queries, keys]}`` (``cap.as_dict()``), a
    :class:`interp.Capture`, or one such array. ``attributions``: ``{method: [batch, src] or
    [batch, tgt, src]}`` (tensors, arrays or :class:`interp.attribute.Attribution`). Keys are cut
    to ``len(source[i])`` and queries to ``len(target[i])`` when tokens are given (a classifier's
    single query is kept).
    """
    if hasattr(attention, "as_dict"):
        attention = attention.as_dict()
    if not isinstance(attention, Mapping):
        attention = {"attention": attention}
    arrays = {str(k): _batch_array(v, f"attention {k!r}") for k, v in attention.items()}
    scores = {str(k): _batch_array(v, f"attribution {k!r}") for k, v in dict(attributions or {}).items()}
    sizes = {a.shape[0] for a in (*arrays.values(), *scores.values())}
    if len(sizes) != 1:
        raise ValueError(f"arrays disagree on the batch size: {sorted(sizes)}")
    (n,) = sizes
    for name, tokens in (("source", source), ("target", target), ("ids", ids)):
        if tokens is not None and len(tokens) != n:
            raise ValueError(f"{name} has {len(tokens)} entries but the batch has {n} examples")

    def trim(arr: np.ndarray, i: int, has_queries: bool) -> np.ndarray:
        return trim_to_tokens(arr, None if source is None else source[i], None if target is None else target[i],
                              has_queries=has_queries, where=f"example {i}")

    out = []
    for i in range(n):
        ex: dict[str, Any] = {"id": str(ids[i]) if ids is not None else str(i), "run": run}
        if source is not None:
            ex["source"] = list(source[i])
        if target is not None:
            ex["target"] = list(target[i])
        ex["attention"] = {k: trim(a[i], i, a.ndim >= 3) for k, a in arrays.items()}
        ex["attributions"] = {k: trim(a[i], i, a.ndim == 3) for k, a in scores.items()}
        out.append(ex)
    return out


class StoreData(ExplorerData):
    """Records of an :class:`interp.Store`, filtered like :meth:`Store.query`.

    Attention records (``kind="attention"``) give the modules; every other kind is an
    attribution method. A run is shown as ``run`` or ``run/model`` when the store holds several
    models. When several records share a key (e.g. different ``step`` or ``params``), the newest
    wins: filter by ``step=`` or ``params=`` to choose.
    """

    def __init__(self, store: Any, *, cache_size: int = 64, **filters: Any):
        self.store = store
        records = store.query(**filters)
        if not records:
            raise ValueError(f"no records in {store.path} match {filters or 'any filter'}; "
                             f"check the run and module names with `python -m interp info {store.path}`")
        models_per_run: dict[str, set[str]] = {}
        for rec in records:
            models_per_run.setdefault(rec.run, set()).add(rec.model)
        self._attention: dict[tuple[str, str, str], Any] = {}
        self._attribution: dict[tuple[str, str, str], Any] = {}
        self._runs: dict[str, list[str]] = {}
        for rec in records:  # ordered by id: a later record with the same key replaces earlier ones
            run = f"{rec.run}/{rec.model}" if len(models_per_run[rec.run]) > 1 else rec.run
            table = self._attention if rec.kind == "attention" else self._attribution
            name = rec.module if rec.kind == "attention" else rec.kind
            table[(rec.example, run, name)] = rec
            runs = self._runs.setdefault(rec.example, [])
            if run not in runs:
                runs.append(run)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def _load(self, rec: Any) -> np.ndarray:
        if rec.id in self._cache:
            self._cache.move_to_end(rec.id)
            return self._cache[rec.id]
        arr = np.asarray(rec.array())
        self._cache[rec.id] = arr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr

    def _names(self, table: Mapping[tuple[str, str, str], Any], example: str, run: str) -> list[str]:
        return [name for (ex, r, name) in table if ex == example and r == run]

    def examples(self) -> list[str]:
        return list(self._runs)

    def runs(self, example: str) -> list[str]:
        return list(self._runs.get(example, []))

    def modules(self, example: str, run: str) -> list[str]:
        return self._names(self._attention, example, run)

    def methods(self, example: str, run: str) -> list[str]:
        return self._names(self._attribution, example, run)

    def _any(self, example: str, run: str) -> Any:
        for table in (self._attention, self._attribution):
            for (ex, r, _), rec in table.items():
                if ex == example and r == run:
                    return rec
        raise KeyError(f"no record for example {example!r} in run {run!r}")

    def tokens(self, example: str, run: str) -> tuple[list[str] | None, list[str] | None]:
        rec = self._any(example, run)
        return _tokens(rec.source, "store"), _tokens(rec.target, "store")

    def attention(self, example: str, run: str, module: str) -> np.ndarray:
        rec = self._attention[(example, run, module)]
        return _attention_array(self._load(rec), rec.where)

    def attribution(self, example: str, run: str, method: str) -> np.ndarray:
        rec = self._attribution[(example, run, method)]
        return _attribution_array(self._load(rec), rec.where)


def as_data(data: Any, **kwargs: Any) -> ExplorerData:
    """Whatever a lesson has, as :class:`ExplorerData`.

    An ``ExplorerData``; a :class:`interp.Store` (``kwargs`` are its query filters); a
    :class:`interp.Capture` or ``{module: batch array}`` (``kwargs`` go to
    :func:`examples_from_batch`: ``source``, ``target``, ``attributions``, ``ids``, ``run``);
    one example dict, a list of them, or ``{id: example dict}``.
    """
    if isinstance(data, ExplorerData):
        _no_kwargs(kwargs, "an ExplorerData")
        return data
    if hasattr(data, "query") and hasattr(data, "path"):
        return StoreData(data, **kwargs)
    if hasattr(data, "as_dict") or (
        isinstance(data, Mapping) and data and not any(isinstance(v, Mapping) for v in data.values())
        and "attention" not in data and "attributions" not in data
    ):
        return MemoryData(examples_from_batch(data, **kwargs))
    _no_kwargs(kwargs, "example dicts")
    if isinstance(data, Mapping) and ("attention" in data or "attributions" in data):
        return MemoryData([data])
    if isinstance(data, Mapping) or (isinstance(data, Iterable) and not isinstance(data, (str, bytes))):
        return MemoryData(data if isinstance(data, Mapping) else list(data))
    raise TypeError(
        f"cannot explore a {type(data).__name__}; pass example dicts, a Capture (with source= and "
        f"target=), {{module: batch array}}, or a Store"
    )


def _no_kwargs(kwargs: Mapping[str, Any], what: str) -> None:
    if kwargs:
        raise TypeError(f"{sorted(kwargs)} only apply to a Store, a Capture or batch arrays, not to {what}")
