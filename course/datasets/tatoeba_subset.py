"""Build the committed English-French subset of the Tatoeba/Anki export, deterministically.

``python -m course.datasets.tatoeba_subset PATH_TO_fra.txt[.gz] [--out data/tatoeba]`` reads the
export (``english<TAB>french[<TAB>attribution]`` a line), keeps every pair whose English side has
at least ``LONG_FROM`` tokens and a hash-chosen ``SHORT_PERCENT`` of the shorter ones (real
sentences are mostly short; the lesson needs the long ones that a fixed-size summary struggles
with), and splits by English sentence, so that every French translation of one English sentence
lands in the same split and no held-out English sentence was seen in training. Choices depend only
on a SHA-256 of the lower-cased English text, never on file order or a random generator, so the
same export gives the same files on any machine. Output: ``{train,valid,test}.txt.gz`` in the
export's own two-column format (gzip with no name or time stamp, so the bytes are reproducible).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from course.datasets.text import simple_tokenize

LONG_FROM = 10        # English tokens (words and punctuation) from which every pair is kept
SHORT_PERCENT = 20    # share of shorter English sentences kept
TEST_PERCENT = 10     # of English sentences (all their translations go along)
VALID_PERCENT = 5
SPLITS = ("train", "valid", "test")


def english_key(english: str) -> int:
    """A stable number in [0, 10000) for an English sentence (case and outer spaces ignored)."""
    digest = hashlib.sha256(english.strip().lower().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 10000


def split_of(english: str) -> str:
    """``test`` for the first TEST_PERCENT of the hash range, then ``valid``, else ``train``."""
    position = english_key(english) % 100
    if position < TEST_PERCENT:
        return "test"
    if position < TEST_PERCENT + VALID_PERCENT:
        return "valid"
    return "train"


def keep(english: str) -> bool:
    """Every long sentence; a fixed, hash-chosen share of the short ones."""
    if len(simple_tokenize(english)) >= LONG_FROM:
        return True
    return english_key(english) // 100 < SHORT_PERCENT  # the other two digits of the key


def read_pairs(path: Path) -> Iterator[tuple[str, str]]:
    """(english, french) from an export file, plain or gzip; the attribution column is dropped."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            columns = line.rstrip("\n").split("\t")
            if len(columns) not in (2, 3) or not columns[0].strip() or not columns[1].strip():
                raise ValueError(f"{path}:{line_no}: expected 'english<TAB>french[<TAB>attribution]'")
            yield columns[0].strip(), columns[1].strip()


def select(pairs: Iterable[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """The kept pairs of each split, in the export's order, exact duplicate pairs dropped."""
    out: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
    seen: set[tuple[str, str]] = set()
    for pair in pairs:
        if pair in seen or not keep(pair[0]):
            continue
        seen.add(pair)
        out[split_of(pair[0])].append(pair)
    return out


def gzip_bytes(text: str) -> bytes:
    """Gzip with neither file name nor time stamp in the header: same text, same bytes."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as f:
        f.write(text.encode("utf-8"))
    return buffer.getvalue()


def write_subset(source: Path, out_dir: Path, overwrite: bool = False) -> dict[str, str]:
    """Write the three split files and return their ``sha256:<hex>`` checksums."""
    targets = {split: out_dir / f"{split}.txt.gz" for split in SPLITS}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist; pass --overwrite to replace them")
    chosen = select(read_pairs(source))
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = {}
    for split, path in targets.items():
        data = gzip_bytes("".join(f"{en}\t{fr}\n" for en, fr in chosen[split]))
        path.write_bytes(data)
        sums[split] = "sha256:" + hashlib.sha256(data).hexdigest()
        print(f"{path}: {len(chosen[split])} pairs, {len(data):,} bytes, {sums[split]}")
    return sums


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.datasets.tatoeba_subset", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="the export's fra.txt (or fra.txt.gz)")
    parser.add_argument("--out", type=Path, default=Path("data") / "tatoeba", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing split files")
    args = parser.parse_args(argv)
    if not args.source.is_file():
        parser.error(f"{args.source} is not a file; give the path of the export's fra.txt or fra.txt.gz")
    try:
        write_subset(args.source, args.out, args.overwrite)
    except (FileExistsError, ValueError) as err:
        parser.exit(1, f"error: {err}\n")


if __name__ == "__main__":
    main()
