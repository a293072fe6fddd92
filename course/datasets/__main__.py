"""``python -m course.datasets download|accept|list``: fetch a corpus, or trust a copy you have.

``download NAME [--checksum sha256:<hex>]`` downloads and unpacks a corpus into data/downloads;
a checksum given here is remembered, so later loads accept the same copy. ``accept NAME [--path
FILE] [--checksum sha256:<hex>]`` trusts the archive already on disk (a repacked or newer copy you
placed there yourself) by recording its sha256 beside it; with --checksum, only if the file has
that checksum. A checksum is "sha256:<64 hex digits>" or the 64 digits alone (sha256sum FILE
prints them). Errors are one line on stderr, with exit status 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from course.datasets import download
from course.datasets.errors import CorpusError
from course.datasets.sources import SOURCES


def accept(name: str, path: Path | None, checksum: str | None = None) -> str:
    """Record the sha256 of ``path`` (default: the cached archive of ``name``) as trusted; with
    ``checksum``, only when the file has it (else :class:`ChecksumError`)."""
    checksum = download.normalize_checksum(checksum)
    target = path or download.DOWNLOAD_DIR / SOURCES[name].filename
    if not target.is_file():
        raise CorpusError(f"no file at {target} to accept; place the {name} archive there first "
                          f"(or give --path)")
    if checksum is not None:
        download.verify(target, checksum, name=name, remember=False)
    return f"{name}: {target} accepted as {download.trust_file(target)}"


def main(argv: list[str] | None = None) -> None:
    """The command line: ``download``, ``accept`` or ``list`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m course.datasets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["download", "accept", "list"])
    parser.add_argument("names", nargs="*", help=f"corpora: {', '.join(SOURCES)}")
    parser.add_argument("--checksum", help="'sha256:<64 hex digits>' (or the digits alone) of the copy "
                        "you trust (remembered)")
    parser.add_argument("--path", type=Path, help="accept: the archive to trust (default: the cached one)")
    args = parser.parse_args(argv)
    if args.command == "list":
        for source in SOURCES.values():
            print(f"{source.name:8s} {source.url}  ({source.license})")
        return
    unknown = sorted(set(args.names) - SOURCES.keys())
    if unknown or not args.names:
        parser.error(f"name one or more of {sorted(SOURCES)}" + (f"; unknown: {unknown}" if unknown else ""))
    if args.command == "accept" and (len(args.names) != 1 and args.path is not None):
        parser.error("--path names one archive: accept one corpus at a time")
    if len(args.names) != 1 and args.checksum is not None:
        parser.error("--checksum is one archive's: give one corpus at a time")
    try:  # a malformed checksum fails before anything is downloaded
        checksum = download.normalize_checksum(args.checksum)
    except CorpusError as err:
        parser.exit(1, f"error: {err.one_line()}\n")
    for name in args.names:
        try:
            if args.command == "accept":
                print(accept(name, args.path, checksum))
            else:
                folder = download.ensure_extracted(SOURCES[name], download=True, checksum=checksum,
                                                   fetch=download.urllib_fetch)
                print(f"{name}: ready in {folder}")
        except CorpusError as err:  # every user-input problem, a malformed --checksum included
            parser.exit(1, f"error: {err.one_line()}\n")


if __name__ == "__main__":
    main()
