"""Command line: ``python -m interp`` (or ``interp``) to capture a dataset and inspect stores.

    python -m interp capture --model pkg.mod:make_model --data pkg.mod:batches \\
        --store out.sqlite --modules 'encoder.*attn' --run baseline
    python -m interp modules --model pkg.mod:make_model [--data pkg.mod:batches]  # extractors, probe
    python -m interp info out.sqlite                         # counts per run/model/module/kind
    python -m interp ls out.sqlite --run baseline --limit 20
    python -m interp check out.sqlite                        # integrity + every array's checksum
    python -m interp export out.sqlite out.parquet [--run R] [--skip-bad]
    python -m interp import out.parquet other.sqlite
    python -m interp salvage damaged.sqlite rescued.sqlite

``--model`` and ``--data`` are import paths ``package.module:attribute``; an attribute that is a
function (not a module or dataset) is called with no arguments to build the object.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
import time
import unicodedata
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import InterpError

_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64"}


class CliError(InterpError):
    """A bad input to a command: printed as one ``error: ...`` line, exit status 2."""


def safe_text(value: Any) -> str:
    """``str(value)`` with control and format characters (terminal escapes, bidi overrides,
    newlines, tabs) written as ``\\xNN`` / ``\\uNNNN``, so stored text cannot drive the terminal."""
    out = []
    for ch in str(value):
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _one_line(exc: BaseException) -> str:
    """An exception as one line of safe text, saying what failed."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, InterpError):
        text = str(exc)  # interp's own errors already say what was wrong and what to do
    elif isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(safe_text(line.strip().replace("\t", " ")) for line in text.splitlines() if line.strip())
    return text if len(text) <= 2000 else text[:2000] + " ..."


def load_object(spec: str, *, what: str) -> Any:
    """Import ``package.module:attr.sub`` and call it if it is a plain function/factory."""
    if ":" not in spec:
        raise SystemExit(f"error: --{what} must look like package.module:attribute, got {spec!r}")
    mod_name, attr = spec.split(":", 1)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`, let the current directory's packages import
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise SystemExit(f"error: cannot import {mod_name!r} for --{what}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise SystemExit(f"error: {mod_name} has no attribute {attr!r} (--{what}); it has: {', '.join(names[:30])}")
        obj = getattr(obj, part)
    import torch.nn as nn

    if callable(obj) and not isinstance(obj, (nn.Module, type)):
        obj = obj()
    elif isinstance(obj, type):
        obj = obj()
    return obj


def _device(choice: str) -> Any:
    """``auto``: this process's GPU (``cuda:LOCAL_RANK``, one process per device under torchrun)
    when CUDA is present, else the CPU."""
    import torch

    if choice != "auto":
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@contextlib.contextmanager
def _rank_log(store: str) -> Iterator[None]:
    """In a sharded run: log this rank's start, end or failure to ``store/rank-NNNNN.log``, and
    turn a failure into one error line naming the rank and its log (the other ranks' shards keep
    every batch they committed)."""
    from .shard import shard_from_environment

    shard = shard_from_environment()
    if shard.world_size == 1:
        yield
        return
    folder = Path(store)
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"rank-{shard.rank:05d}.log"
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} rank {shard.rank} of {shard.world_size}: started\n")
    try:
        yield
    except Exception as exc:
        import traceback

        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} failed:\n{traceback.format_exc()}")
        raise CliError(f"rank {shard.rank} of {shard.world_size} failed: {_one_line(exc)} (log: {log}); "
                       f"the other ranks' stores keep every batch they committed, and relaunching the "
                       f"same command resumes every shard") from exc
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} finished\n")


def _cmd_capture(args: argparse.Namespace) -> int:
    import torch

    from .batch import capture_dataset

    model = _model_from(args, train=args.train)
    data = load_object(args.data, what="data")
    modules: Any = None
    if args.modules:
        modules = args.modules if len(args.modules) > 1 else args.modules[0]
    dtype = getattr(torch, args.dtype) if args.dtype else None
    device = _device(args.device)
    with _rank_log(args.store):
        report = capture_dataset(
            model.to(device), data, args.store, run=args.run, modules=modules, model_name=args.model_name,
            dtype=dtype, kind=args.kind, step=args.step, resume=not args.no_resume,
            progress=not args.no_progress, device=device,
        )
    _print_report(report, "captured")
    return 0


def _model_from(args: argparse.Namespace, *, train: bool = False) -> Any:
    """The ``--model`` object, with ``--weights`` loaded, in eval mode unless ``train``."""
    import torch.nn as nn

    model = load_object(args.model, what="model")
    if not isinstance(model, nn.Module):
        raise SystemExit(f"error: --model {args.model} gave a {type(model).__name__}, not an nn.Module")
    if args.weights:
        model.load_state_dict(_load_weights(args.weights, model))
    return model if train else model.eval()


def _print_report(report: Any, done: str) -> None:
    others = f", {report.other_ranks} left to other ranks" if report.other_ranks else ""
    print(
        f"run {report.run!r}: {report.batches} batches {done} ({report.examples} examples, "
        f"{report.records_written} records written), {report.skipped_batches} batches already "
        f"stored{others}, {report.seconds:.1f}s -> {safe_text(report.store)}"
    )


def _cmd_attribute(args: argparse.Namespace) -> int:
    from .batch import attribute_dataset

    model = _model_from(args)
    data = load_object(args.data, what="data")
    settings: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--set takes name=value (e.g. --set n_steps=50), got {item!r}")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value  # a plain string
    for key in ("pad_id", "baseline_id", "batch_size"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    device = _device(args.device)
    with _rank_log(args.store):
        report = attribute_dataset(
            model.to(device), data, args.store, run=args.run, method=args.method, model_name=args.model_name,
            seq2seq=args.seq2seq, resume=not args.no_resume, progress=not args.no_progress, device=device,
            **settings,
        )
    _print_report(report, f"attributed with {args.method}")
    return 0


def _load_weights(path: str, model: Any) -> Any:
    """A state_dict read with ``torch.load(weights_only=True)``, with one clear error when the
    file is not one (interp never unpickles arbitrary objects) or does not fit the model."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols are not for users
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:
        raise CliError(
            f"--weights {path}: not a weights-only state_dict file: torch.load(weights_only=True) "
            f"refused it ({type(exc).__name__}; it holds objects other than tensors, or is not a "
            f"torch file), and interp never unpickles anything else. Save the weights with "
            f"torch.save(model.state_dict(), path)"
        ) from exc
    if not isinstance(state, dict):
        raise CliError(f"--weights {path}: holds a {type(state).__name__}, not a state_dict")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        raise CliError(
            f"--weights {path} does not fit the model ({' '.join(first[:3])}); check --model"
        ) from exc
    return state


def _cmd_modules(args: argparse.Namespace) -> int:
    import torch.nn as nn

    from .capture import ModuleSelectionError, is_building_block, select_modules
    from .extractors import describe

    model = load_object(args.model, what="model")
    if not isinstance(model, nn.Module):
        raise SystemExit(f"error: --model {args.model} gave a {type(model).__name__}, not an nn.Module")
    try:
        auto = {n for n, _ in select_modules(model, None)} if args.mark_auto else set()
    except ModuleSelectionError:
        auto = set()
    probe = _probe(model, args) if args.data else {}
    for name, module in model.named_modules():
        mark = "*" if name in auto else " "
        how = "not attention (building block)" if is_building_block(module) else describe(module)
        status = f"\t{probe[name]}" if name in probe else ""
        print(f"{mark} {name or '(root)'}\t{type(module).__name__}\t{how}{status}")
    if args.mark_auto:
        print("(* = selected when no --modules is given)")
    if args.data:
        print("(last column: a probe forward on the first batch of --data, validated as attention)")
    return 0


def _probe(model: Any, args: argparse.Namespace) -> dict[str, str]:
    """Run the first batch of ``--data`` under a lenient capture: per module, ok or why not."""
    import warnings
    from collections.abc import Mapping

    import torch

    from .capture import Capture, call_model

    data = load_object(args.data, what="data")
    try:
        batch = next(iter(data))
    except StopIteration:
        raise SystemExit(f"error: --data {args.data} yielded no batch to probe with") from None
    inputs = batch["inputs"] if isinstance(batch, Mapping) and "inputs" in batch else batch
    modules: Any = None
    if args.modules:
        modules = args.modules if len(args.modules) > 1 else args.modules[0]
    model.eval()
    cap = Capture(model, modules, strict=False)
    cap._warn_idle = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with cap, torch.no_grad():
            call_model(model, inputs)
    result = {}
    for name in cap.names:
        if name in cap.problems:
            result[name] = "FAILS: " + cap.problems[name].split(". To fix")[0].split("\n")[0]
        elif name in cap:
            calls = cap.calls(name)
            result[name] = f"ok: {len(calls)} call(s), {list(calls[0].shape)} valid attention"
        else:
            result[name] = "not called by the probe forward"
    return result


def _open(path: str, readonly: bool = True) -> Any:
    from .store import Store, StoreError

    try:
        return Store(path, readonly=readonly)
    except StoreError as exc:
        raise SystemExit(f"error: {exc}") from exc


def _cmd_info(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        info = store.info()
        print(f"{safe_text(info['path'])}: {info['format']} schema {info['schema_version']}, "
              f"{info['records']} records, {info['bytes'] / 1e6:.2f} MB")
        rows = store.summary()
        if rows:
            print("| run | model | fingerprint | module | kind | records | examples |")
            print("|---|---|---|---|---|---|---|")
            for r in rows:
                cells = [safe_text(r[k]).replace("|", "\\|") for k in ("run", "model", "fingerprint", "module", "kind")]
                cells[2] = cells[2][:12]
                print(f"| {' | '.join(cells)} | {r['records']} | {r['examples']} |")
    return 0


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("run", "model", "module", "example", "kind") if getattr(args, k, None)}


def _cmd_ls(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        for rec in store.iter(limit=args.limit, errors="warn", **_filters(args)):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created))
            fields = [safe_text(v) for v in (rec.run, rec.module, rec.example)]
            print(f"{rec.id}\t{fields[0]}\t{fields[1]}\t{fields[2]}\tstep={rec.step}\t"
                  f"{safe_text(rec.kind)}\t{safe_text(rec.dtype)}{list(rec.shape)}\t{when}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        problems = store.check(arrays=not args.quick)
        n = store.count()
    if problems:
        for p in problems[:100]:
            print(safe_text(p))
        print(f"{len(problems)} problem(s) in {args.store} ({n} records); salvage readable records with "
              f"`python -m interp salvage {args.store} rescued.sqlite`")
        return 1
    print(f"{args.store}: ok ({n} records)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        n = store.export_parquet(args.out, errors="warn" if args.skip_bad else "raise",
                                 overwrite=args.force, partition_by=("run", "module") if args.partition else None,
                                 **_filters(args))
    print(f"exported {n} records to {safe_text(args.out)}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    if args.max_bytes < 0:
        raise CliError(f"--max-bytes must be 0 (no limit) or a positive number of bytes, got {args.max_bytes}")
    with _open(args.store, readonly=False) as store:
        n = store.import_parquet(args.parquet, max_bytes=args.max_bytes or None)
    print(f"imported {n} new records into {safe_text(args.store)}")
    return 0


def _cmd_salvage(args: argparse.Namespace) -> int:
    from .store import salvage

    report = salvage(args.store, args.out, overwrite=args.force)
    for line in report.dropped[:100]:
        print(f"left behind: {safe_text(line)}", file=sys.stderr)
    unverified = (f"; {report.unverified} copied from a schema-1 store without a metadata checksum"
                  if report.unverified else "")
    print(f"copied {report.copied} readable records to {safe_text(args.out)}; {report.lost} damaged "
          f"records left behind{unverified}")
    return 0 if report.lost == 0 else 1


def _cmd_merge(args: argparse.Namespace) -> int:
    from .shard import merge_stores

    *sources, dest = args.paths
    if not sources:
        raise CliError("merge needs the shards (a folder of rank-*.sqlite, or store files) and the destination")
    report = merge_stores(sources, dest)
    print(f"merged {len(report.sources)} stores into {safe_text(dest)}: {report.added} records added, "
          f"{report.duplicates} already there (skipped)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m interp`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m interp", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("capture", help="capture attention for a dataset into a store")
    c.add_argument("--model", required=True, help="package.module:factory_or_model")
    c.add_argument("--data", required=True, help="package.module:batches (iterable of batch dicts, or a function returning one)")
    c.add_argument("--store", required=True, help="store file (created if missing); under torchrun a folder, "
                   "one store per rank (rank-00000.sqlite, ...)")
    c.add_argument("--modules", nargs="*", help="name globs such as 'encoder.*attn' (default: attention-like modules)")
    c.add_argument("--run", "--run-name", dest="run", default=None,
                   help="run name (default: model name and time); under torchrun write --run-name, "
                        "since torchrun reads --run as its own --run-path")
    c.add_argument("--model-name", default=None, help="name stored with each record (default: class name)")
    c.add_argument("--weights", default=None, help="state_dict file to load first (torch.load weights_only)")
    c.add_argument("--dtype", choices=sorted(_DTYPES), default=None, help="cast weights, e.g. float16")
    c.add_argument("--kind", default="attention")
    c.add_argument("--step", type=int, default=0, help="step number stored with each record (e.g. training step)")
    c.add_argument("--train", action="store_true", help="keep the model in train mode (default: eval)")
    c.add_argument("--no-resume", action="store_true", help="run every batch even if already stored")
    c.add_argument("--no-progress", action="store_true")
    c.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when CUDA is present, else cpu), or a device")
    c.set_defaults(func=_cmd_capture)

    a = sub.add_parser("attribute", help="attribute a dataset's predictions to its tokens into a store")
    a.add_argument("--model", required=True, help="package.module:factory_or_model")
    a.add_argument("--data", required=True, help="package.module:batches ({'ids', 'inputs': token ids, ...})")
    a.add_argument("--store", required=True, help="store file; under torchrun a folder, one store per rank")
    a.add_argument("--method", default="integrated_gradients", help="a registered attribution method")
    a.add_argument("--run", "--run-name", dest="run", default=None, help="run name (default: model name and time)")
    a.add_argument("--model-name", default=None)
    a.add_argument("--weights", default=None, help="state_dict file to load first (torch.load weights_only)")
    a.add_argument("--pad-id", type=int, default=None)
    a.add_argument("--baseline-id", type=int, default=None)
    a.add_argument("--batch-size", type=int, default=None, help="rows or perturbations per forward pass")
    a.add_argument("--set", action="append", metavar="NAME=VALUE", help="a method setting, e.g. n_steps=50 (repeatable)")
    a.add_argument("--seq2seq", action="store_true", help="inputs are (src_ids, tgt_ids) of a seq2seq model")
    a.add_argument("--no-resume", action="store_true")
    a.add_argument("--no-progress", action="store_true")
    a.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when CUDA is present, else cpu), or a device")
    a.set_defaults(func=_cmd_attribute)

    m = sub.add_parser("modules", help="list a model's module names, types and extractors")
    m.add_argument("--model", required=True)
    m.add_argument("--no-auto", dest="mark_auto", action="store_false", help="do not mark the automatic selection")
    m.add_argument("--data", default=None, help="package.module:batches: probe-forward the first batch and validate each module's weights")
    m.add_argument("--modules", nargs="*", help="modules to probe (default: the automatic selection)")
    m.set_defaults(func=_cmd_modules)

    i = sub.add_parser("info", help="summary of a store")
    i.add_argument("store")
    i.set_defaults(func=_cmd_info)

    ls = sub.add_parser("ls", help="list records")
    ls.add_argument("store")
    ls.add_argument("--limit", type=int, default=50)
    for f in ("run", "model", "module", "example", "kind"):
        ls.add_argument(f"--{f}")
    ls.set_defaults(func=_cmd_ls)

    ch = sub.add_parser("check", help="integrity check (exit 1 on problems)")
    ch.add_argument("store")
    ch.add_argument("--quick", action="store_true", help="skip validating every array")
    ch.set_defaults(func=_cmd_check)

    e = sub.add_parser("export", help="export records to Parquet")
    e.add_argument("store")
    e.add_argument("out")
    e.add_argument("--skip-bad", action="store_true", help="warn about and skip damaged records")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists (never the store itself)")
    e.add_argument("--partition", action="store_true",
                   help="write OUT as a folder: a Parquet dataset partitioned by run and module")
    for f in ("run", "model", "module", "example", "kind"):
        e.add_argument(f"--{f}")
    e.set_defaults(func=_cmd_export)

    im = sub.add_parser("import", help="import a Parquet export into a store")
    im.add_argument("parquet")
    im.add_argument("store")
    from .store import DEFAULT_MAX_IMPORT_BYTES

    im.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_IMPORT_BYTES,
                    help=f"refuse files holding more array bytes than this (default {DEFAULT_MAX_IMPORT_BYTES:,}; 0: no limit)")
    im.set_defaults(func=_cmd_import)

    mg = sub.add_parser("merge", help="merge the per-rank stores of a sharded capture into one store")
    mg.add_argument("paths", nargs="+", metavar="SHARDS... DEST",
                    help="a folder of rank-NNNNN.sqlite (or store files), then the destination store")
    mg.set_defaults(func=_cmd_merge)

    s = sub.add_parser("salvage", help="copy every readable record of a damaged store into a new one")
    s.add_argument("store")
    s.add_argument("out")
    s.add_argument("--force", action="store_true", help="replace OUT if it exists (never the damaged store itself)")
    s.set_defaults(func=_cmd_salvage)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m interp`` and the ``interp`` script.

    Every failure prints one ``error: ...`` line (control characters escaped) and exits
    non-zero: 2 for bad input (1 where ``SystemExit`` carries the message), 130 when interrupted.
    ``INTERP_TRACEBACK=1`` shows the traceback of an unexpected error instead.
    """
    args = build_parser().parse_args(argv)
    if getattr(args, "run", "x") is None and args.command in ("capture", "attribute"):
        args.run = f"{args.model.split(':')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("error: interrupted; a store keeps every batch committed before the interruption",
              file=sys.stderr)
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, str):  # an "error: ..." message: kept to one line, made safe
            raise SystemExit(" ".join(safe_text(line) for line in exc.code.splitlines())) from None
        raise
    except Exception as exc:
        if os.environ.get("INTERP_TRACEBACK"):
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
