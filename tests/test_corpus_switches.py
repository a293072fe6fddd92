"""Every real-corpus switch of lessons 09-12 and 14 works as a reader would use it.

Each slow test runs a lesson with papermill on the fixture copies of a corpus, in its published
layout, with tiny sizes: the lesson must run top to bottom on the real corpus (no fallback to the
bundled task), and assert no claim (the claims were verified on the bundled task only). One run
points a lesson at a copy whose checksum is not the one it was told to trust: the lesson must
still run, on the bundled task, and print the parameter value that accepts the copy; a second run
with that value trains on the copy. The fast tests check the message the lessons print.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from course.claims import FILE_VARIABLE, MODE_VARIABLE
from course.datasets import (
    ChecksumError,
    CorpusLayoutError,
    CorpusMissingError,
    FormatError,
    fallback_message,
    is_single_file,
    load_sst2,
)

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "course" / "lessons"
FIXTURES = Path(__file__).parent / "fixtures"
FALLBACK = "could not be used, so this run falls back to"
BUNDLED_ONLY = "the claims apply to the bundled task only"

# tiny sizes: the switch is under test, not the models
TINY = {
    "09_attention_pooling": {"TRAIN_EXAMPLES": 40, "EPOCHS": 1, "EMBED_DIM": 8, "HIDDEN_SIZE": 8,
                             "ATTENTION_UNITS": 8},
    "10_hierarchical": {"TRAIN_EXAMPLES": 40, "EPOCHS": 1, "EMBED_DIM": 8, "WORD_HIDDEN": 8,
                        "SENTENCE_HIDDEN": 8, "ATTENTION_UNITS": 8},
    "11_two_sequences": {"TRAIN_EXAMPLES": 40, "EPOCHS": 1, "EMBED_DIM": 8, "HIDDEN_SIZE": 8},
    "12_multi_hop": {"RUNS": [["babi1", 1]], "EPOCHS": 1, "LINEAR_START_EPOCHS": 0, "EMBED_DIM": 8},
    "14_sequence_labelling": {"SEEDS": 1, "EPOCHS": 1, "EMBED_DIM": 8, "HIDDEN_SIZE": 8, "ATTENTION_UNITS": 8},
}


def run_lesson(stem: str, parameters: dict, tmp_path: Path, monkeypatch,
               claims_mode: str | None = None) -> tuple[str, list[dict]]:
    """Execute a lesson as a reader would (its folder as working directory, one thread) and
    return everything it printed or displayed as text, and the claim records it wrote."""
    papermill = pytest.importorskip("papermill")
    records = tmp_path / "claims.jsonl"
    records.write_text("")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv(FILE_VARIABLE, str(records))
    if claims_mode is None:
        monkeypatch.delenv(MODE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(MODE_VARIABLE, claims_mode)
    lesson = LESSONS / f"{stem}.ipynb"
    output = tmp_path / f"{stem}.out.ipynb"
    papermill.execute_notebook(str(lesson), str(output), parameters={**TINY[stem], **parameters},
                               cwd=str(LESSONS), kernel_name="python3", progress_bar=False,
                               execution_timeout=600)
    text = []
    for cell in json.loads(output.read_text())["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append("".join(out["text"]))
            elif "text/plain" in out.get("data", {}):
                text.append("".join(out["data"]["text/plain"]))
    found = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    return "\n".join(text), found


def assert_ran_on_real_data(printed: str, records: list[dict], *lines: str) -> None:
    assert FALLBACK not in printed, printed
    for line in lines:
        assert line in printed, printed
    assert BUNDLED_ONLY in printed, printed
    assert not [r for r in records if r["kind"] == "claim"], records


# lesson, parameters (CORPUS_PATH relative to the fixtures), what the run must print
SWITCHES = {
    "09 sst2": ("09_attention_pooling", {"CORPUS": "sst2", "CORPUS_PATH": "sst2"},
                ["corpus: sst2; 1 train / 1 valid / 2 test reviews"]),
    "09 imdb": ("09_attention_pooling", {"CORPUS": "imdb", "CORPUS_PATH": "imdb"},
                ["corpus: imdb; 2 train / 1 valid / 2 test reviews"]),
    "10 imdb": ("10_hierarchical", {"CORPUS": "imdb", "CORPUS_PATH": "imdb/aclImdb"},
                ["corpus: imdb; 2 train / 1 valid / 2 test documents", "labels ['negative', 'positive']"]),
    "11 snli": ("11_two_sequences", {"CORPUS": "snli", "CORPUS_PATH": "snli/snli_1.0"},
                ["corpus: snli; 1 train / 2 valid / 1 test pairs"]),
    # the 1k and 10k test stories of the fixture differ: the answer shows which folder was read
    "12 babi 1k": ("12_multi_hop", {"CORPUS": "babi", "BABI_SIZE": "1k", "CORPUS_PATH": "babi/tasks_1-20_v1-2"},
                   ["corpus: bAbI v1.2 (en, 1k)", "where is john -> kitchen"]),
    "12 babi 10k": ("12_multi_hop", {"CORPUS": "babi", "BABI_SIZE": "10k", "CORPUS_PATH": "babi"},
                    ["corpus: bAbI v1.2 (en, 10k)", "where is john -> bedroom"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("switch", list(SWITCHES))
def test_a_real_corpus_switch_runs_the_lesson_on_the_corpus(switch, tmp_path, monkeypatch):
    stem, parameters, lines = SWITCHES[switch]
    parameters = {**parameters, "CORPUS_PATH": str(FIXTURES / parameters["CORPUS_PATH"])}
    printed, records = run_lesson(stem, parameters, tmp_path, monkeypatch)
    assert_ran_on_real_data(printed, records, *lines)
    if stem == "10_hierarchical":  # IMDB's own labels, not the bundled task's label names
        assert "approve" not in printed and "reject" not in printed
    if stem == "09_attention_pooling":
        assert "gold cues in capitals" not in printed and "mass on gold cues" not in printed


@pytest.mark.slow
def test_conll_files_run_the_tagging_lesson_without_the_bundled_analysis(tmp_path, monkeypatch):
    conll = str(FIXTURES / "conll" / "iob1.txt")
    printed, records = run_lesson("14_sequence_labelling",
                                  {"CONLL_FILES": {"train": conll, "valid": conll, "test": conll},
                                   "CONLL_SCHEME": "iob1"},
                                  tmp_path, monkeypatch)
    assert_ran_on_real_data(printed, records, "corpus: CoNLL files")
    assert "the cue analysis applies to the bundled task only and is skipped" in printed
    assert "The cue analysis applies to the bundled task only" in printed
    assert "peak weight / uniform weight" not in printed  # the bundled task's gold-cue table


def sst2_newer_copy(folder: Path, rows: int = 30) -> Path:
    """One SST-2 split's file in the published format, longer than the fixture (a newer copy)."""
    lines = (FIXTURES / "sst2" / "SST-2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:] + (FIXTURES / "sst2" / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    path = folder / "train.tsv"
    path.write_text("\n".join([header] + [body[i % len(body)] for i in range(rows)]) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_a_copy_with_another_checksum_falls_back_and_says_how_to_accept_it(tmp_path, monkeypatch):
    copy = sst2_newer_copy(tmp_path)
    own = "sha256:" + hashlib.sha256(copy.read_bytes()).hexdigest()
    refused = {"CORPUS": "sst2", "CORPUS_PATH": str(copy), "CORPUS_CHECKSUM": "sha256:" + "0" * 64}
    # the fallback trains the bundled task at tiny sizes, where its claims fail: record, do not raise
    printed, records = run_lesson("09_attention_pooling", refused, tmp_path, monkeypatch, claims_mode="record")
    assert f"The sst2 corpus {FALLBACK} the bundled reviews task" in printed
    assert f'CORPUS_CHECKSUM = "{own}"' in printed
    assert "corpus: bundled;" in printed
    assert [r for r in records if r["kind"] == "claim"], "the bundled run asserts its claims"

    accepted = {**refused, "CORPUS_CHECKSUM": own}
    printed, records = run_lesson("09_attention_pooling", accepted, tmp_path, monkeypatch)
    assert_ran_on_real_data(printed, records, "corpus: sst2; 20 train / 4 valid / 6 test reviews")
    assert copy.with_name("train.tsv.trusted").read_text().strip() == own  # remembered beside the copy


def test_the_fallback_message_says_why_and_which_parameter_to_set(tmp_path):
    copy = sst2_newer_copy(tmp_path)
    with pytest.raises(ChecksumError) as refused:
        load_sst2("train", path=copy, checksum="sha256:" + "0" * 64)
    own = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert refused.value.sha256 == own
    message = fallback_message("sst2", refused.value, "the bundled reviews task")
    assert message.startswith(f"The sst2 corpus {FALLBACK} the bundled reviews task.")
    assert str(refused.value) in message
    assert f'CORPUS_CHECKSUM = "sha256:{own}"' in message

    # the reported case: a newer SST-2.zip in the download cache, refused against the pinned checksum
    cache = tmp_path / "cache"
    cache.mkdir()
    archive = Path(shutil.make_archive(str(cache / "SST-2"), "zip", FIXTURES / "sst2", "SST-2"))
    with pytest.raises(ChecksumError) as refused:
        load_sst2("train", download=False, cache_dir=cache)
    message = fallback_message("sst2", refused.value, "the bundled reviews task")
    own = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert f"python -m course.datasets accept sst2 --path {archive}" in message
    assert f'CORPUS_CHECKSUM = "sha256:{own}"' in message
    assert load_sst2("train", download=False, cache_dir=cache, checksum=f"sha256:{own}")

    missing = fallback_message("imdb", CorpusMissingError("not here"), "the bundled task")
    assert "DOWNLOAD = True downloads it or CORPUS_PATH = your copy reads it" in missing
    layout = fallback_message("snli", CorpusLayoutError("no file"), "the bundled pairs")
    assert "set CORPUS_PATH to the file or folder" in layout
    conll = fallback_message("CoNLL", FormatError("bad line"), "the bundled sentences", path_parameter="CONLL_FILES",
                             checksum_parameter=None, download_parameter=None)
    assert "Why: bad line" in conll and "CORPUS" not in conll


def test_a_split_file_is_a_single_file_and_a_folder_or_archive_is_not(tmp_path):
    assert is_single_file(FIXTURES / "sst2" / "SST-2" / "train.tsv")
    assert not is_single_file(FIXTURES / "sst2" / "SST-2")
    assert not is_single_file(None) and not is_single_file(tmp_path / "absent.tsv")
    archive = shutil.make_archive(str(tmp_path / "SST-2"), "zip", FIXTURES / "sst2")
    assert not is_single_file(archive)
