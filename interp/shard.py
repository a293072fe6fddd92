"""Spread a capture over processes: which process takes which batch, where it writes, and the
merge of the per-process stores into one.

Each process (a *rank* of ``world_size``, from ``torch.distributed`` when a process group is
initialised, else from the ``RANK`` / ``WORLD_SIZE`` variables ``torchrun`` sets) reads the same
batches and keeps those whose **first example id** hashes to its rank. The split depends only on
the ids, so a resumed or relaunched run gives every rank the same batches again, and whole batches
stay whole: the union of the shards is record for record, bit for bit, the single-process run.
Each rank writes its own store, ``rank-00000.sqlite``, ... in one folder (SQLite takes one writer
per file; a file must never take writers from several machines); :func:`merge_stores` combines
them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InterpError

__all__ = ["MergeError", "MergeReport", "Shard", "merge_stores", "rank_store_path", "shard_from_environment",
           "shard_stores"]


class MergeError(InterpError, ValueError):
    """Shards that cannot be merged: another schema, or one run from different models."""


@dataclass(frozen=True)
class Shard:
    """This process's part of the work: rank ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must lie in 0..world_size-1, got rank {self.rank} of {self.world_size}")

    def owns(self, ids: Sequence[Any]) -> bool:
        """Whether this rank processes the batch whose example ids are ``ids``."""
        if self.world_size == 1 or not ids:
            return True
        digest = hashlib.blake2b(str(ids[0]).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.world_size == self.rank


def shard_from_environment(rank: int | None = None, world_size: int | None = None) -> Shard:
    """The shard given, else the initialised process group's, else ``RANK`` / ``WORLD_SIZE``."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise ValueError("give both rank= and world_size=, or neither")
        return Shard(int(rank), int(world_size))
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return Shard(dist.get_rank(), dist.get_world_size())
    except ImportError:  # pragma: no cover - torch without distributed
        pass
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return Shard(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
    return Shard()


def rank_store_path(folder: str | os.PathLike[str], rank: int) -> Path:
    """Where rank ``rank`` writes: ``folder/rank-00000.sqlite``."""
    return Path(folder) / f"rank-{rank:05d}.sqlite"


def shard_stores(folder: str | os.PathLike[str]) -> list[Path]:
    """The per-rank stores in ``folder``, in rank order."""
    found = sorted(Path(folder).glob("rank-[0-9][0-9][0-9][0-9][0-9].sqlite"))
    if not found:
        raise MergeError(f"{folder}: no rank-NNNNN.sqlite stores found; give the folder a sharded "
                         "capture wrote into, or the store files themselves")
    return found


@dataclass
class MergeReport:
    """What :func:`merge_stores` did."""

    sources: list[str] = field(default_factory=list)
    records: int = 0  # read from the sources
    added: int = 0  # new in the destination
    duplicates: int = 0  # already there (same run, model, module, example, step, kind, params)


def merge_stores(sources: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
                 dest: str | os.PathLike[str], *, batch_size: int = 512) -> MergeReport:
    """Add every record of ``sources`` (store files, or folders of ``rank-*.sqlite``) to ``dest``.

    Records already in ``dest`` (the store's unique key) are skipped and counted, so merging a
    shard twice, or re-running a merge, adds nothing. Refused before anything is written: a
    source of another schema version, and a run whose records come from different model
    fingerprints across the sources (two models under one run name would be compared as one).
    Arrays are copied bit for bit (bfloat16 stays bfloat16) and re-verified on the way.
    """
    from .store import Store
    from .store_record import labels_of

    listed = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    paths = [p for source in listed
             for p in (shard_stores(source) if Path(source).is_dir() else [Path(source)])]
    dest_path = Path(dest)
    if any(p.resolve() == dest_path.resolve() for p in paths if p.exists()):
        raise MergeError(f"{dest}: the destination is also a source; merge into a new store")
    report = MergeReport(sources=[str(p) for p in paths])
    fingerprints: dict[tuple[str, str], set[str]] = {}
    versions: dict[str, int] = {}
    for path in paths:
        if not path.is_file():
            raise MergeError(f"{path}: no such store")
        with Store(path, readonly=True) as src:
            versions[str(path)] = src.info()["schema_version"]
            for row in src.summary():
                fingerprints.setdefault((row["run"], row["model"]), set()).add(row["fingerprint"])
    if len(set(versions.values())) > 1:
        listed = ", ".join(f"{p}: schema {v}" for p, v in versions.items())
        raise MergeError(f"the stores have different schema versions ({listed}); open each with this "
                         "interp once in write mode to upgrade it, then merge")
    mixed = {key: fps for key, fps in fingerprints.items() if len(fps) > 1}
    if mixed:
        (run, model), fps = next(iter(mixed.items()))
        raise MergeError(f"run {run!r} (model {model!r}) holds records from {len(fps)} different weight "
                         f"fingerprints across the shards ({', '.join(sorted(f[:12] for f in fps))}); "
                         "shards of one run must come from one model. Merge them under separate runs")
    if dest_path.is_file():
        with Store(dest_path, readonly=True) as existing:
            for row in existing.summary():
                key = (row["run"], row["model"])
                if key in fingerprints and row["fingerprint"] not in fingerprints[key]:
                    raise MergeError(f"{dest}: run {row['run']!r} (model {row['model']!r}) there comes from "
                                     "another weight fingerprint than the shards'; merge into a new store")
    with Store(dest_path) as out:
        for path in paths:
            with Store(path, readonly=True) as src:
                rows: list[dict[str, Any]] = []
                for rec, arr in src.arrays():
                    array = rec.tensor() if rec.dtype == "bfloat16" else arr
                    rows.append(dict(array=array, **labels_of(rec)))
                    if len(rows) >= batch_size:
                        report.added += out.add_many(rows, on_conflict="ignore")
                        report.records += len(rows)
                        rows = []
                report.added += out.add_many(rows, on_conflict="ignore")
                report.records += len(rows)
    report.duplicates = report.records - report.added
    return report
