"""Readers for the real corpora, each in the corpus's own file format.

Every reader takes a path (so a user's own copy, or a test fixture, works without downloading)
and returns examples in the same shape as the bundled task it stands in for. A malformed line is
an error naming the file and the line. The ``load_*`` functions find the files in the download
cache (see :mod:`course.datasets.download`) and fall back to the reader.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from course.datasets.download import Fetch, ensure_extracted, urllib_fetch
from course.datasets.sources import SOURCES
from course.datasets.text import format_error, require_file, simple_tokenize

# --------------------------------------------------------------------------- Tatoeba / Anki


def read_tatoeba(path: Path | str, limit: int | None = None) -> list[dict]:
    """Anki/Tatoeba pairs, ``english<TAB>french[<TAB>attribution]`` a line, as ``{"src", "tgt"}``
    token lists (English source, French target) with the raw text kept."""
    path = require_file(Path(path), "Tatoeba pair file")
    pairs = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            columns = line.rstrip("\n").split("\t")
            if len(columns) not in (2, 3) or not columns[0].strip() or not columns[1].strip():
                raise format_error(path, line_no, "expected 'english<TAB>french' with an optional "
                                   "third attribution column", line)
            english, french = columns[0].strip(), columns[1].strip()
            pairs.append({"src": simple_tokenize(english), "tgt": simple_tokenize(french),
                          "english": english, "french": french})
            if limit is not None and len(pairs) >= limit:
                break
    return pairs


def load_tatoeba(limit: int | None = None, *, download: bool = True, cache_dir: Path | None = None,
                 checksum: str | None = None, fetch: Fetch = urllib_fetch) -> list[dict]:
    root = ensure_extracted(SOURCES["tatoeba"], download=download, cache_dir=cache_dir,
                            checksum=checksum, fetch=fetch)
    candidates = sorted(root.rglob("fra.txt"))
    if not candidates:
        raise FileNotFoundError(f"no fra.txt inside {root}; the archive is not the expected one")
    return read_tatoeba(candidates[0], limit)


# --------------------------------------------------------------------------- IMDB

IMDB_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def read_imdb(root: Path | str, split: str = "train") -> list[dict]:
    """``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` under ``root`` (the folder holding
    aclImdb, or aclImdb itself) as ``{"tokens", "label", "rating", "text"}``."""
    if split not in ("train", "test"):
        raise ValueError(f"IMDB splits are 'train' and 'test', got {split!r}")
    root = Path(root)
    base = root if root.name == "aclImdb" else root / "aclImdb"
    examples = []
    for label in ("neg", "pos"):
        folder = base / split / label
        if not folder.is_dir():
            raise FileNotFoundError(f"IMDB folder {folder} not found; expected aclImdb/{split}/{{pos,neg}}/")
        for file in sorted(folder.glob("*.txt"), key=lambda p: p.name):
            match = IMDB_NAME.match(file.name)
            if match is None:
                raise format_error(file, 1, "IMDB review files are named <id>_<rating>.txt")
            text = file.read_text(encoding="utf-8").replace("<br />", " ")
            if not text.strip():
                raise format_error(file, 1, "empty review")
            examples.append({"tokens": simple_tokenize(text), "label": "positive" if label == "pos" else "negative",
                             "rating": int(match.group(2)), "text": text})
    return examples


def load_imdb(split: str = "train", *, download: bool = True, cache_dir: Path | None = None,
              checksum: str | None = None, fetch: Fetch = urllib_fetch) -> list[dict]:
    root = ensure_extracted(SOURCES["imdb"], download=download, cache_dir=cache_dir,
                            checksum=checksum, fetch=fetch)
    return read_imdb(root, split)


# --------------------------------------------------------------------------- SST-2 (GLUE)


def read_sst2(path: Path | str) -> list[dict]:
    """GLUE SST-2 TSV with a header ``sentence<TAB>label`` (0 negative, 1 positive) as
    ``{"tokens", "label", "text"}``; the unlabelled test file (``index<TAB>sentence``) gives
    ``label`` None."""
    path = require_file(Path(path), "SST-2 TSV file")
    examples = []
    with open(path, encoding="utf-8", newline="") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header not in (["sentence", "label"], ["index", "sentence"]):
            raise format_error(path, 1, "expected the header 'sentence<TAB>label' (or "
                               "'index<TAB>sentence' for the test file)", "\t".join(header))
        labelled = header == ["sentence", "label"]
        for line_no, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), 2):
            if not row:
                continue
            if len(row) != 2:
                raise format_error(path, line_no, f"expected 2 tab-separated columns, got {len(row)}",
                                   "\t".join(row))
            sentence, label = (row[0], row[1]) if labelled else (row[1], None)
            if labelled and label not in ("0", "1"):
                raise format_error(path, line_no, f"label must be 0 or 1, got {label!r}")
            examples.append({"tokens": simple_tokenize(sentence), "text": sentence,
                             "label": None if label is None else ("negative", "positive")[int(label)]})
    return examples


def load_sst2(split: str = "train", *, download: bool = True, cache_dir: Path | None = None,
              checksum: str | None = None, fetch: Fetch = urllib_fetch) -> list[dict]:
    if split not in ("train", "dev", "test"):
        raise ValueError(f"SST-2 splits are 'train', 'dev' and 'test', got {split!r}")
    root = ensure_extracted(SOURCES["sst2"], download=download, cache_dir=cache_dir,
                            checksum=checksum, fetch=fetch)
    return read_sst2(root / "SST-2" / f"{split}.tsv")


# --------------------------------------------------------------------------- SNLI

SNLI_LABELS = ("entailment", "neutral", "contradiction")


def read_snli(path: Path | str) -> list[dict]:
    """SNLI JSONL (``sentence1``, ``sentence2``, ``gold_label``) as ``{"premise", "hypothesis",
    "label"}``; pairs whose gold label is ``-`` (no annotator consensus) are skipped."""
    path = require_file(Path(path), "SNLI JSONL file")
    examples = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise format_error(path, line_no, f"not valid JSON ({err.msg})", line) from None
            if not isinstance(record, dict) or not {"sentence1", "sentence2", "gold_label"} <= record.keys():
                raise format_error(path, line_no, "expected an object with sentence1, sentence2 and gold_label")
            label = record["gold_label"]
            if label == "-":
                continue
            if label not in SNLI_LABELS:
                raise format_error(path, line_no, f"gold_label must be one of {SNLI_LABELS} or '-', got {label!r}")
            examples.append({"premise": simple_tokenize(record["sentence1"]),
                             "hypothesis": simple_tokenize(record["sentence2"]), "label": label})
    return examples


def load_snli(split: str = "train", *, download: bool = True, cache_dir: Path | None = None,
              checksum: str | None = None, fetch: Fetch = urllib_fetch) -> list[dict]:
    if split not in ("train", "dev", "test"):
        raise ValueError(f"SNLI splits are 'train', 'dev' and 'test', got {split!r}")
    root = ensure_extracted(SOURCES["snli"], download=download, cache_dir=cache_dir,
                            checksum=checksum, fetch=fetch)
    return read_snli(root / "snli_1.0" / f"snli_1.0_{split}.jsonl")


# --------------------------------------------------------------------------- bAbI

BABI_LINE = re.compile(r"^(\d+) (.+)$")


def babi_words(text: str) -> list[str]:
    return [w for w in simple_tokenize(text) if w not in (".", "?")]


def read_babi(path: Path | str, task: int | None = None) -> list[dict]:
    """bAbI v1.2 lines (``N text``; questions ``N question<TAB>answer<TAB>supporting ids``; N back
    to 1 starts a new story) as the bundled bAbI examples: one per question, with the statements
    so far as the story and the supporting line ids turned into story indices."""
    path = require_file(Path(path), "bAbI task file")
    examples: list[dict] = []
    story: list[list[str]] = []
    index_of_line: dict[int, int] = {}
    previous = 0
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            match = BABI_LINE.match(line.rstrip("\n"))
            if match is None:
                raise format_error(path, line_no, "expected '<line id> <text>'", line)
            number, text = int(match.group(1)), match.group(2)
            if number == 1:
                story, index_of_line = [], {}
            elif number != previous + 1:
                raise format_error(path, line_no, f"line id {number} does not follow {previous}", line)
            previous = number
            if "\t" not in text:
                index_of_line[number] = len(story)
                story.append(babi_words(text))
                continue
            columns = text.split("\t")
            if len(columns) != 3 or not columns[1].strip():
                raise format_error(path, line_no, "a question line is 'question<TAB>answer<TAB>supporting ids'", line)
            try:
                supporting = [index_of_line[int(i)] for i in columns[2].split()]
            except (ValueError, KeyError):
                raise format_error(path, line_no, "supporting ids must be earlier statement line ids",
                                   line) from None
            examples.append({"task": task, "story": [list(s) for s in story],
                             "question": babi_words(columns[0]), "answer": columns[1].strip().lower(),
                             "supporting": supporting})
    return examples


def load_babi(task: int, split: str = "train", *, tenk: bool = False, download: bool = True,
              cache_dir: Path | None = None, checksum: str | None = None,
              fetch: Fetch = urllib_fetch) -> list[dict]:
    """Task 1-20 of bAbI v1.2 (English; ``tenk`` for the 10k-example training sets)."""
    if not 1 <= task <= 20:
        raise ValueError(f"bAbI tasks are numbered 1 to 20, got {task}")
    if split not in ("train", "test"):
        raise ValueError(f"bAbI splits are 'train' and 'test', got {split!r}")
    root = ensure_extracted(SOURCES["babi"], download=download, cache_dir=cache_dir,
                            checksum=checksum, fetch=fetch)
    folder = root / "tasks_1-20_v1-2" / ("en-10k" if tenk else "en")
    files = sorted(folder.glob(f"qa{task}_*_{split}.txt"))
    if not files:
        raise FileNotFoundError(f"no qa{task}_*_{split}.txt in {folder}; the archive is not the expected one")
    return read_babi(files[0], task)


# --------------------------------------------------------------------------- CoNLL NER


def read_conll(path: Path | str, scheme: str = "bio") -> list[dict]:
    """CoNLL NER (``token ... tag`` a line, blank line between sentences, ``-DOCSTART-`` lines
    skipped) as ``{"tokens", "tags"}``. ``scheme="iob1"`` converts CoNLL-2003's original IOB1
    tags (I- may start an entity) to BIO; ``"bio"`` keeps the tags as they are."""
    if scheme not in ("bio", "iob1"):
        raise ValueError(f"scheme must be 'bio' or 'iob1', got {scheme!r}")
    path = require_file(Path(path), "CoNLL file")
    sentences: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []

    def close() -> None:
        if tokens:
            sentences.append({"tokens": list(tokens), "tags": iob1_to_bio(tags) if scheme == "iob1" else list(tags)})
        tokens.clear()
        tags.clear()

    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            columns = line.split()
            if not columns:
                close()
                continue
            if columns[0] == "-DOCSTART-":
                close()
                continue
            if len(columns) < 2:
                raise format_error(path, line_no, "expected 'token ... tag' (at least two columns)", line)
            tag = columns[-1]
            if tag != "O" and not re.fullmatch(r"[BI]-\S+", tag):
                raise format_error(path, line_no, f"tag must be O, B-TYPE or I-TYPE, got {tag!r}", line)
            tokens.append(columns[0])
            tags.append(tag)
    close()
    return sentences


def iob1_to_bio(tags: list[str]) -> list[str]:
    """IOB1 (B- only between two adjacent entities of one type) to BIO (B- starts every entity)."""
    out = []
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O" or tags[i - 1][2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
    return out
