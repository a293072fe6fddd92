"""Where the bundled tasks live on disk, how they are generated, and how lessons load them."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

from course.tasks import (
    babi,
    dates,
    documents,
    ner,
    ner_distant,
    nli,
    reorder,
    reviews,
    spans,
    summaries,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
SPLITS = ("train", "valid", "test")


def source_key(example: dict) -> Hashable:
    """What makes two seq2seq examples the same input: their source tokens."""
    return tuple(example["src"])


@dataclass(frozen=True)
class TaskSpec:
    """A task: its generator, the examples per split, and one seed per split (no overlap).

    ``fields`` are the keys every record must have; ``key`` says what makes two inputs the same
    (held-out splits never repeat a training input); ``kind`` tells seq2seq tasks from the others.
    """

    generate: Callable[[int, int], list[dict]]
    sizes: dict[str, int]
    seeds: dict[str, int]
    description: str
    fields: tuple[str, ...] = ("src", "tgt", "alignment")
    key: Callable[[dict], Hashable] = source_key
    kind: str = "seq2seq"


TASKS: dict[str, TaskSpec] = {
    "dates": TaskSpec(dates.generate, {"train": 8000, "valid": 500, "test": 1000},
                      {"train": 11, "valid": 12, "test": 13},
                      "multilingual dates (8 babel locales) to ISO 8601"),
    "reorder": TaskSpec(reorder.generate, {"train": 12000, "valid": 600, "test": 1200},
                        {"train": 21, "valid": 22, "test": 23},
                        "English-like SVO to a verb-final language, 5 to 50 tokens"),
    "reviews": TaskSpec(reviews.generate, {"train": 2000, "valid": 300, "test": 500},
                        {"train": 31, "valid": 32, "test": 33},
                        "long reviews (100-400 tokens) labelled by 1-3 planted cue phrases",
                        fields=("tokens", "label", "rationale"),
                        key=lambda e: tuple(e["tokens"]), kind="classification"),
    "documents": TaskSpec(documents.generate, {"train": 3000, "valid": 300, "test": 600},
                          {"train": 41, "valid": 42, "test": 43},
                          "committee minutes (8-16 sentences) labelled by the highest voting body",
                          fields=("sentences", "label", "key_sentence", "key_word", "votes", "authority"),
                          key=lambda e: tuple(map(tuple, e["sentences"])), kind="classification"),
    "nli": TaskSpec(nli.generate, {"train": 6000, "valid": 1000, "test": 2000},
                    {"train": 51, "valid": 52, "test": 53},
                    "premise/hypothesis pairs from templates with hypernyms and antonyms",
                    fields=("premise", "hypothesis", "label", "alignment", "edit"),
                    key=lambda e: (tuple(e["premise"]), tuple(e["hypothesis"])), kind="classification"),
    **{f"babi{task}": TaskSpec(generate, {"train": 2000, "valid": 300, "test": 1000},
                               {"train": 60 + task, "valid": 70 + task, "test": 80 + task},
                               f"bAbI-style stories, task {task}: {facts} supporting fact(s)",
                               fields=("story", "question", "answer", "supporting"),
                               key=lambda e: (tuple(map(tuple, e["story"])), tuple(e["question"])),
                               kind="question_answering")
       for task, generate, facts in ((1, babi.generate_1, "one"), (2, babi.generate_2, "two"),
                                     (3, babi.generate_3, "three"))},
    "ner": TaskSpec(ner.generate, {"train": 4000, "valid": 500, "test": 1000},
                    {"train": 91, "valid": 92, "test": 93},
                    "news-like sentences with faker names, places and companies, BIO tags",
                    fields=("tokens", "tags"), key=lambda e: tuple(e["tokens"]), kind="tagging"),
    "ner_distant": TaskSpec(ner_distant.generate, {"train": 2000, "valid": 300, "test": 600},
                            {"train": 94, "valid": 95, "test": 96},
                            "news items whose surname is PER or ORG by a cue word 15-40 tokens earlier",
                            fields=("tokens", "tags", "cue", "cue_sentence", "distractors"),
                            key=lambda e: tuple(e["tokens"]), kind="tagging"),
    "spans": TaskSpec(spans.generate, {"train": 4000, "valid": 500, "test": 1000},
                      {"train": 171, "valid": 172, "test": 173},
                      "two or three named bracketed spans; count the x inside the queried one",
                      fields=("tokens", "query", "label", "span", "spans", "x_positions"),
                      key=lambda e: (tuple(e["tokens"]), e["query"]), kind="classification"),
    "summaries": TaskSpec(summaries.generate, {"train": 3000, "valid": 300, "test": 500},
                          {"train": 191, "valid": 192, "test": 193},
                          "four-sentence news items summarised in one sentence; invented names, numbers",
                          fields=("src", "tgt", "alignment", "key_start"), kind="summarisation"),
}


def check_task(name: str, split: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; bundled tasks are {sorted(TASKS)}")
    if split not in SPLITS:
        raise KeyError(f"unknown split {split!r}; choose one of {SPLITS}")
    return TASKS[name]


def task_path(name: str, split: str, data_dir: Path | None = None) -> Path:
    check_task(name, split)
    return (data_dir or DATA_DIR) / name / f"{split}.jsonl.gz"


def generate_task(name: str, split: str) -> list[dict]:
    """Generate a split from code: the same examples on every machine."""
    spec = check_task(name, split)
    examples = spec.generate(spec.sizes[split], spec.seeds[split])
    if split != "train":  # held-out splits never repeat a training input
        seen = {spec.key(e) for e in spec.generate(spec.sizes["train"], spec.seeds["train"])}
        examples = [e for e in examples if spec.key(e) not in seen]
    return examples


def to_jsonl_gz(examples: list[dict]) -> bytes:
    """Deterministic bytes: sorted keys and a zero gzip timestamp, so regeneration is checkable."""
    text = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in examples)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(text.encode("utf-8"))
    return buffer.getvalue()


def write_task(name: str, data_dir: Path | None = None) -> list[Path]:
    paths = []
    for split in SPLITS:
        path = task_path(name, split, data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_jsonl_gz(generate_task(name, split)))
        paths.append(path)
    return paths


def load_task(name: str, split: str, data_dir: Path | None = None) -> list[dict]:
    """Read a bundled split; if the file is missing, say how to regenerate it."""
    path = task_path(name, split, data_dir)
    fields = TASKS[name].fields
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. Regenerate the bundled data with `python -m course.tasks build`."
        )
    examples = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            try:
                example = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
            if not isinstance(example, dict) or not set(fields) <= example.keys():
                raise ValueError(f"{path}:{line_no}: expected an object with {', '.join(fields)}")
            examples.append(example)
    return examples
