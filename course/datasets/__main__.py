"""``python -m course.datasets download NAME``: fetch a corpus into data/downloads."""

from __future__ import annotations

import argparse

from course.datasets.download import ensure_extracted
from course.datasets.sources import SOURCES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.datasets", description=__doc__)
    parser.add_argument("command", choices=["download", "list"])
    parser.add_argument("names", nargs="*", help=f"corpora to download: {', '.join(SOURCES)}")
    parser.add_argument("--checksum", help="expected 'sha256:<hex>' for a corpus without a pinned one")
    args = parser.parse_args(argv)
    if args.command == "list":
        for source in SOURCES.values():
            print(f"{source.name:8s} {source.url}  ({source.license})")
        return
    unknown = sorted(set(args.names) - SOURCES.keys())
    if unknown or not args.names:
        parser.error(f"name one or more of {sorted(SOURCES)}" + (f"; unknown: {unknown}" if unknown else ""))
    for name in args.names:
        print(f"{name}: ready in {ensure_extracted(SOURCES[name], download=True, checksum=args.checksum)}")


if __name__ == "__main__":
    main()
