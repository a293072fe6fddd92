"""Readers for the real corpora, each in the corpus's own file format.

Every reader takes a path (so a user's own copy, or a test fixture, works without downloading)
and returns examples in the same shape as the bundled task it stands in for. A malformed line, or
bytes that are not UTF-8, is a :class:`FormatError` naming the file and the line. The ``load_*``
functions find the files in the download cache (see :mod:`course.datasets.download`) and fall
back to the reader.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from course.datasets.download import (
    Fetch,
    find_file,
    is_archive,
    path_choices,
    resolve_corpus,
    urllib_fetch,
    verify,
)
from course.datasets.errors import CorpusArgumentError, CorpusLayoutError
from course.datasets.sources import SOURCES, TATOEBA_SUBSET
from course.datasets.text import (
    format_error,
    numbered_lines,
    read_utf8,
    require_file,
    simple_tokenize,
    utf8_error,
)

SUBSET_DIR = Path(__file__).resolve().parents[2] / "data" / "tatoeba"


def is_single_file(path: Path | str | None) -> bool:
    """Whether ``path`` (a loader's ``path=``) is one data file rather than an archive or a folder:
    the loader then reads that file whichever split is asked for, so a lesson given one split's
    file carves its held-out examples out of it."""
    return path is not None and Path(path).is_file() and not is_archive(Path(path))


# --------------------------------------------------------------------------- Tatoeba / Anki


def read_tatoeba(path: Path | str, limit: int | None = None) -> list[dict]:
    """Anki/Tatoeba pairs, ``english<TAB>french[<TAB>attribution]`` a line, as ``{"src", "tgt"}``
    token lists (English source, French target) with the raw text kept."""
    path = require_file(Path(path), "Tatoeba pair file")
    pairs = []
    for line_no, line in numbered_lines(path):
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


def load_tatoeba(limit: int | None = None, *, path: Path | str | None = None, download: bool = True,
                 cache_dir: Path | None = None, checksum: str | None = None,
                 fetch: Fetch = urllib_fetch) -> list[dict]:
    """The full Anki/Tatoeba English-French export (downloaded, or ``path``: the archive, its
    folder or ``fra.txt`` itself); the committed subset is :func:`load_tatoeba_subset`."""
    root = resolve_corpus(SOURCES["tatoeba"], path, download=download, cache_dir=cache_dir,
                          checksum=checksum, fetch=fetch)
    return read_tatoeba(root if root.is_file() else find_file(root, ["fra.txt"], "Tatoeba pair file"), limit)


def load_tatoeba_subset(split: str = "train", *, path: Path | str | None = None,
                        checksum: str | None = None) -> list[dict]:
    """The committed English-French subset (``data/tatoeba/{split}.txt.gz``), read by
    :func:`read_tatoeba` like a downloaded copy and checked against its pinned checksum.

    ``path`` reads another copy of a split file (a subset rebuilt from a newer export, say):
    it is checked against ``checksum`` when given, else read as it is.
    """
    if split not in TATOEBA_SUBSET:
        raise ValueError(f"the Tatoeba subset has splits {sorted(TATOEBA_SUBSET)}, got {split!r}")
    if path is None:
        file = require_file(SUBSET_DIR / f"{split}.txt.gz", "committed Tatoeba subset file")
        verify(file, checksum, pinned=TATOEBA_SUBSET[split], remember=False)
    else:
        file = require_file(Path(path), "Tatoeba pair file")
        if checksum is not None:
            verify(file, checksum, remember=False)
    return read_tatoeba(file)


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
            raise CorpusLayoutError(f"IMDB folder {folder} not found; expected aclImdb/{split}/{{pos,neg}}/")
        for file in sorted(folder.glob("*.txt"), key=lambda p: p.name):
            match = IMDB_NAME.match(file.name)
            if match is None:
                raise format_error(file, 1, "IMDB review files are named <id>_<rating>.txt")
            text = read_utf8(file).replace("<br />", " ")
            if not text.strip():
                raise format_error(file, 1, "empty review")
            examples.append({"tokens": simple_tokenize(text), "label": "positive" if label == "pos" else "negative",
                             "rating": int(match.group(2)), "text": text})
    return examples


def load_imdb(split: str = "train", *, path: Path | str | None = None, download: bool = True,
              cache_dir: Path | None = None, checksum: str | None = None,
              fetch: Fetch = urllib_fetch) -> list[dict]:
    """IMDB reviews (downloaded, or ``path``: the archive or the folder holding ``aclImdb``)."""
    root = resolve_corpus(SOURCES["imdb"], path, download=download, cache_dir=cache_dir,
                          checksum=checksum, fetch=fetch)
    if root.is_file():
        raise CorpusArgumentError(f"path= {root} is one file, but IMDB keeps one review a file: give path= "
                                  f"{path_choices(SOURCES['imdb'])}.", parameters=("path",))
    return read_imdb(imdb_folder(root), split)


def imdb_folder(root: Path) -> Path:
    """The ``aclImdb`` folder under ``root`` (at any depth, for repacked archives)."""
    if root.name == "aclImdb":
        return root
    hits = sorted(p for p in root.rglob("aclImdb") if p.is_dir() and "__MACOSX" not in p.parts)
    if len(hits) == 1:
        return hits[0]
    if not hits and (root / "train" / "pos").is_dir():
        return root
    raise CorpusLayoutError(f"{'no' if not hits else len(hits)} aclImdb folder{'s' if hits else ''} under "
                            f"{root}; expected aclImdb/{{train,test}}/{{pos,neg}}/. Pass path= the aclImdb folder.")


# --------------------------------------------------------------------------- SST-2 (GLUE)


def read_sst2(path: Path | str) -> list[dict]:
    """GLUE SST-2 TSV with a header ``sentence<TAB>label`` (0 negative, 1 positive) as
    ``{"tokens", "label", "text"}``; the unlabelled test file (``index<TAB>sentence``) gives
    ``label`` None."""
    path = require_file(Path(path), "SST-2 TSV file")
    examples = []
    try:
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
    except UnicodeDecodeError as err:
        raise utf8_error(path, err) from None
    return examples


def load_sst2(split: str = "train", *, path: Path | str | None = None, download: bool = True,
              cache_dir: Path | None = None, checksum: str | None = None,
              fetch: Fetch = urllib_fetch) -> list[dict]:
    """GLUE SST-2 (downloaded, or ``path``: the archive, its folder or one split's TSV)."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"SST-2 splits are 'train', 'dev' and 'test', got {split!r}")
    root = resolve_corpus(SOURCES["sst2"], path, download=download, cache_dir=cache_dir,
                          checksum=checksum, fetch=fetch)
    if root.is_file():
        return read_sst2(root)
    return read_sst2(find_file(root, [f"SST-2/{split}.tsv", f"{split}.tsv"], f"SST-2 {split} file"))


# --------------------------------------------------------------------------- SNLI

SNLI_LABELS = ("entailment", "neutral", "contradiction")


def read_snli(path: Path | str) -> list[dict]:
    """SNLI JSONL (``sentence1``, ``sentence2``, ``gold_label``) as ``{"premise", "hypothesis",
    "label"}``; pairs whose gold label is ``-`` (no annotator consensus) are skipped."""
    path = require_file(Path(path), "SNLI JSONL file")
    examples = []
    for line_no, line in numbered_lines(path):
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


def load_snli(split: str = "train", *, path: Path | str | None = None, download: bool = True,
              cache_dir: Path | None = None, checksum: str | None = None,
              fetch: Fetch = urllib_fetch) -> list[dict]:
    """SNLI 1.0 (downloaded, or ``path``: the archive, its folder or one split's JSONL)."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"SNLI splits are 'train', 'dev' and 'test', got {split!r}")
    root = resolve_corpus(SOURCES["snli"], path, download=download, cache_dir=cache_dir,
                          checksum=checksum, fetch=fetch)
    if root.is_file():
        return read_snli(root)
    return read_snli(find_file(root, [f"snli_1.0_{split}.jsonl", f"*_{split}.jsonl"], f"SNLI {split} file"))


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
    for line_no, line in numbered_lines(path):
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


BABI_SIZES = ("1k", "10k")


def load_babi(task: int, split: str = "train", *, size: str = "1k", tenk: bool | None = None,
              path: Path | str | None = None, download: bool = True, cache_dir: Path | None = None,
              checksum: str | None = None, fetch: Fetch = urllib_fetch) -> list[dict]:
    """Task 1-20 of bAbI v1.2, English, with the 1k (``size="1k"``) or 10k training sets.

    ``path`` may be the archive, the folder it unpacks to, or one task file. ``tenk=True`` is the
    older spelling of ``size="10k"``.
    """
    if not 1 <= task <= 20:
        raise ValueError(f"bAbI tasks are numbered 1 to 20, got {task}")
    if split not in ("train", "test"):
        raise ValueError(f"bAbI splits are 'train' and 'test', got {split!r}")
    if tenk is not None:
        size = "10k" if tenk else "1k"
    if size not in BABI_SIZES:
        raise ValueError(f"bAbI comes with 1k or 10k training examples a task: size='1k' or '10k', got {size!r}")
    root = resolve_corpus(SOURCES["babi"], path, download=download, cache_dir=cache_dir,
                          checksum=checksum, fetch=fetch)
    if root.is_file():
        return read_babi(root, task)
    folder = "en-10k" if size == "10k" else "en"
    return read_babi(find_file(root, [f"{folder}/qa{task}_*_{split}.txt"], f"bAbI task {task} {split} file ({size})"),
                     task)


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

    for line_no, line in numbered_lines(path):
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
