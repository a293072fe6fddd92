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
import importlib
import sys
import time
from collections.abc import Sequence
from typing import Any

_DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32", "float64": "float64"}


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


def _cmd_capture(args: argparse.Namespace) -> int:
    import torch
    import torch.nn as nn

    from .batch import capture_dataset

    model = load_object(args.model, what="model")
    if not isinstance(model, nn.Module):
        raise SystemExit(f"error: --model {args.model} gave a {type(model).__name__}, not an nn.Module")
    if args.weights:
        state = torch.load(args.weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    if not args.train:
        model.eval()
    data = load_object(args.data, what="data")
    modules: Any = None
    if args.modules:
        modules = args.modules if len(args.modules) > 1 else args.modules[0]
    dtype = getattr(torch, args.dtype) if args.dtype else None
    report = capture_dataset(
        model, data, args.store, run=args.run, modules=modules, model_name=args.model_name,
        dtype=dtype, kind=args.kind, step=args.step, resume=not args.no_resume,
        progress=not args.no_progress,
    )
    print(
        f"run {report.run!r}: {report.batches} batches captured ({report.examples} examples, "
        f"{report.records_written} records written), {report.skipped_batches} batches already "
        f"stored, {report.seconds:.1f}s -> {args.store}"
    )
    return 0


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
        print(f"{info['path']}: {info['format']} schema {info['schema_version']}, "
              f"{info['records']} records, {info['bytes'] / 1e6:.2f} MB")
        rows = store.summary()
        if rows:
            print("| run | model | fingerprint | module | kind | records | examples |")
            print("|---|---|---|---|---|---|---|")
            for r in rows:
                print(f"| {r['run']} | {r['model']} | {r['fingerprint'][:12]} | {r['module']} | "
                      f"{r['kind']} | {r['records']} | {r['examples']} |")
    return 0


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("run", "model", "module", "example", "kind") if getattr(args, k, None)}


def _cmd_ls(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        for rec in store.iter(limit=args.limit, **_filters(args)):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.created))
            print(f"{rec.id}\t{rec.run}\t{rec.module}\t{rec.example}\tstep={rec.step}\t{rec.kind}\t"
                  f"{rec.dtype}{list(rec.shape)}\t{when}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        problems = store.check(arrays=not args.quick)
        n = store.count()
    if problems:
        for p in problems[:100]:
            print(p)
        print(f"{len(problems)} problem(s) in {args.store} ({n} records); salvage readable records with "
              f"`python -m interp salvage {args.store} rescued.sqlite`")
        return 1
    print(f"{args.store}: ok ({n} records)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    with _open(args.store) as store:
        n = store.export_parquet(args.out, errors="warn" if args.skip_bad else "raise", **_filters(args))
    print(f"exported {n} records to {args.out}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    with _open(args.store, readonly=False) as store:
        n = store.import_parquet(args.parquet)
    print(f"imported {n} new records into {args.store}")
    return 0


def _cmd_salvage(args: argparse.Namespace) -> int:
    from .store import salvage

    copied, lost = salvage(args.store, args.out)
    print(f"copied {copied} readable records to {args.out}; {lost} damaged records left behind")
    return 0 if lost == 0 else 1


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m interp`` argument parser."""
    p = argparse.ArgumentParser(prog="python -m interp", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("capture", help="capture attention for a dataset into a store")
    c.add_argument("--model", required=True, help="package.module:factory_or_model")
    c.add_argument("--data", required=True, help="package.module:batches (iterable of batch dicts, or a function returning one)")
    c.add_argument("--store", required=True, help="store file (created if missing)")
    c.add_argument("--modules", nargs="*", help="name globs such as 'encoder.*attn' (default: attention-like modules)")
    c.add_argument("--run", default=None, help="run name (default: model name and time)")
    c.add_argument("--model-name", default=None, help="name stored with each record (default: class name)")
    c.add_argument("--weights", default=None, help="state_dict file to load first (torch.load weights_only)")
    c.add_argument("--dtype", choices=sorted(_DTYPES), default=None, help="cast weights, e.g. float16")
    c.add_argument("--kind", default="attention")
    c.add_argument("--step", type=int, default=0, help="step number stored with each record (e.g. training step)")
    c.add_argument("--train", action="store_true", help="keep the model in train mode (default: eval)")
    c.add_argument("--no-resume", action="store_true", help="run every batch even if already stored")
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_cmd_capture)

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
    for f in ("run", "model", "module", "example", "kind"):
        e.add_argument(f"--{f}")
    e.set_defaults(func=_cmd_export)

    im = sub.add_parser("import", help="import a Parquet export into a store")
    im.add_argument("parquet")
    im.add_argument("store")
    im.set_defaults(func=_cmd_import)

    s = sub.add_parser("salvage", help="copy every readable record of a damaged store into a new one")
    s.add_argument("store")
    s.add_argument("out")
    s.set_defaults(func=_cmd_salvage)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m interp`` and the ``interp`` script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "run", "x") is None and args.command == "capture":
        args.run = f"{args.model.split(':')[-1]}-{time.strftime('%Y%m%d-%H%M%S')}"
    from .batch import ShapeMismatchError
    from .capture import ExtractionError, ModuleSelectionError
    from .store import StoreError

    try:
        return int(args.func(args) or 0)
    except (StoreError, ModuleSelectionError, ExtractionError, ShapeMismatchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
