"""Corpus readers on fixture files in the real formats, downloads with a fake fetch, series windows.

Nothing here touches the network: ``fetch`` is replaced by a function that copies a local file.
"""

import gzip
import hashlib
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from course.datasets import (
    ChecksumError,
    CorpusArgumentError,
    CorpusError,
    CorpusMissingError,
    FormatError,
    load_babi,
    load_imdb,
    make_windows,
    read_babi,
    read_conll,
    read_imdb,
    read_snli,
    read_sst2,
    read_tatoeba,
    split_windows,
)
from course.datasets.download import Source, ensure_file, extract, parse_checksum
from course.datasets.sources import SOURCES

FIXTURES = Path(__file__).parent / "fixtures"


def test_tatoeba_pairs_with_and_without_attribution():
    pairs = read_tatoeba(FIXTURES / "tatoeba" / "fra.txt")
    assert [p["french"] for p in pairs] == ["Va !", "Qui ?", "Je ne sais pas."]
    assert pairs[2]["src"] == ["i", "don't", "know", "."]
    assert pairs[2]["tgt"] == ["je", "ne", "sais", "pas", "."]
    assert len(read_tatoeba(FIXTURES / "tatoeba" / "fra.txt", limit=2)) == 2
    with pytest.raises(FormatError, match=r"bad\.txt:2: expected 'english<TAB>french'"):
        read_tatoeba(FIXTURES / "tatoeba" / "bad.txt")


def test_imdb_folders_labels_and_ratings(tmp_path):
    train = read_imdb(FIXTURES / "imdb", "train")
    assert sorted((e["label"], e["rating"]) for e in train) == [("negative", 1), ("positive", 9), ("positive", 10)]
    review = next(e for e in train if e["rating"] == 9)
    assert "<br" not in review["text"] and review["tokens"][:3] == ["a", "wonderful", "little"]
    assert len(read_imdb(FIXTURES / "imdb" / "aclImdb", "test")) == 2
    broken = tmp_path / "aclImdb"
    shutil.copytree(FIXTURES / "imdb" / "aclImdb", broken)
    (broken / "train" / "pos" / "review.txt").write_text("no rating in the name")
    with pytest.raises(FormatError, match=r"review\.txt:1: IMDB review files are named"):
        read_imdb(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="aclImdb/train"):
        read_imdb(tmp_path / "nowhere", "train")


def test_sst2_labelled_and_test_files():
    train = read_sst2(FIXTURES / "sst2" / "SST-2" / "train.tsv")
    assert [e["label"] for e in train] == ["negative", "positive"]
    assert train[1]["tokens"] == ["the", "greatest", "musicians"]
    assert read_sst2(FIXTURES / "sst2" / "SST-2" / "test.tsv")[0]["label"] is None
    with pytest.raises(FormatError, match=r"bad\.tsv:3: label must be 0 or 1"):
        read_sst2(FIXTURES / "sst2" / "bad.tsv")


def test_snli_skips_no_consensus_pairs():
    pairs = read_snli(FIXTURES / "snli" / "snli_1.0" / "snli_1.0_dev.jsonl")
    assert [p["label"] for p in pairs] == ["neutral", "contradiction"]  # the '-' pair is skipped
    assert pairs[1]["premise"] == ["a", "dog", "runs", "on", "the", "beach", "."]
    with pytest.raises(FormatError, match=r"bad\.jsonl:2: not valid JSON"):
        read_snli(FIXTURES / "snli" / "bad.jsonl")


def test_babi_stories_restart_and_supporting_facts_index_statements():
    examples = read_babi(FIXTURES / "babi" / "tasks_1-20_v1-2" / "en" / "qa1_single-supporting-fact_train.txt", 1)
    assert len(examples) == 3
    first, second, third = examples
    assert first["story"] == [["mary", "moved", "to", "the", "bathroom"], ["john", "went", "to", "the", "hallway"]]
    assert first["question"] == ["where", "is", "mary"] and first["answer"] == "bathroom"
    assert first["supporting"] == [0]
    assert second["supporting"] == [2] and len(second["story"]) == 4  # line 4 is the 3rd statement
    assert third["story"] == [["sandra", "travelled", "to", "the", "office"]]  # a new story
    two = read_babi(FIXTURES / "babi" / "tasks_1-20_v1-2" / "en" / "qa2_two-supporting-facts_train.txt", 2)
    assert two[0]["supporting"] == [2, 0]
    with pytest.raises(FormatError, match=r"bad_support\.txt:2: supporting ids"):
        read_babi(FIXTURES / "babi" / "bad_support.txt")
    with pytest.raises(FormatError, match=r"bad_numbering\.txt:2: line id 3 does not follow 1"):
        read_babi(FIXTURES / "babi" / "bad_numbering.txt")


def test_conll_sentences_docstart_and_iob1():
    sentences = read_conll(FIXTURES / "conll" / "sample.txt")
    assert [s["tokens"] for s in sentences] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]]
    assert sentences[0]["tags"] == ["B-ORG", "O", "B-MISC", "O", "O"]
    converted = read_conll(FIXTURES / "conll" / "iob1.txt", scheme="iob1")
    assert [s["tags"] for s in converted] == [["B-ORG", "O"], ["B-PER", "I-PER"]]
    with pytest.raises(FormatError, match=r"bad\.txt:2: expected 'token \.\.\. tag'"):
        read_conll(FIXTURES / "conll" / "bad.txt")


def make_archive(tmp_path: Path, folder: Path, arcname: str) -> Path:
    archive = tmp_path / "upstream.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=arcname)
    return archive


def copying_fetch(archive: Path, calls: list[str]):
    def fetch(url: str, destination: Path, timeout: float) -> None:
        calls.append(url)
        shutil.copyfile(archive, destination)
    return fetch


def test_download_verifies_checksum_caches_and_extracts(tmp_path):
    archive = make_archive(tmp_path, FIXTURES / "babi" / "tasks_1-20_v1-2", "tasks_1-20_v1-2")
    digest = "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    calls: list[str] = []
    cache = tmp_path / "cache"
    examples = load_babi(1, "train", cache_dir=cache, checksum=digest, fetch=copying_fetch(archive, calls))
    assert len(examples) == 3 and calls == [SOURCES["babi"].url]
    again = load_babi(2, "train", cache_dir=cache, checksum=digest, fetch=copying_fetch(archive, calls))
    assert again[0]["answer"] == "hallway" and len(calls) == 1  # cached: no second download


def test_checksum_mismatch_removes_the_download(tmp_path):
    archive = make_archive(tmp_path, FIXTURES / "imdb" / "aclImdb", "aclImdb")
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="expected 0000"):
        load_imdb("train", cache_dir=cache, checksum="sha256:" + "0" * 64, fetch=copying_fetch(archive, []))
    assert not any(cache.iterdir())  # neither the file nor a partial copy is left behind


def test_offline_missing_corpus_says_how_to_get_it(tmp_path):
    with pytest.raises(CorpusMissingError) as missing:
        load_imdb("train", download=False, cache_dir=tmp_path)
    message = str(missing.value)
    assert SOURCES["imdb"].url in message
    assert str(tmp_path / "aclImdb_v1.tar.gz") in message
    assert "python -m course.datasets download imdb" in message

    def offline(url: str, destination: Path, timeout: float) -> None:
        raise OSError("Temporary failure in name resolution")

    with pytest.raises(CorpusMissingError, match="download failed: Temporary failure"):
        load_imdb("train", cache_dir=tmp_path, fetch=offline)
    assert not any(tmp_path.iterdir())


def test_checksum_format_and_pins():
    digest = hashlib.sha256(b"corpus").hexdigest()
    assert parse_checksum(f"sha256:{digest}") == ("sha256", digest)
    assert parse_checksum(f" SHA256:{digest.upper()}\n") == ("sha256", digest)
    assert parse_checksum(f"md5:{'A' * 32}") == ("md5", "a" * 32)
    with pytest.raises(ValueError, match="sha256:<64 hex digits>"):
        parse_checksum("crc32:1234")


def test_a_bare_64_digit_checksum_is_sha256_in_any_case_and_spacing():
    digest = hashlib.sha256(b"corpus").hexdigest()
    for bare in (digest, digest.upper(), f"  {digest}\n", f"\t{digest.upper()} "):
        assert parse_checksum(bare) == ("sha256", digest)


@pytest.mark.parametrize("bad, problem", [
    ("abc", "3 hex digits without an algorithm"),
    ("0" * 63, "63 hex digits without an algorithm"),
    ("sha256:" + "0" * 63, "a sha256 digest has 64 hex digits, this one 63"),
    ("sha256:" + "g" * 64, "not hexadecimal"),
    ("crc32:1234", "unknown algorithm 'crc32'"),
    ("", "it is empty"),
    ("0" * 64 + "  SST-2.zip", "sha256sum output"),
    ("not a checksum", "names no algorithm"),
])
def test_a_malformed_checksum_is_a_corpus_error_showing_the_form_and_how_to_compute_it(bad, problem):
    with pytest.raises(CorpusArgumentError) as malformed:
        parse_checksum(bad)
    assert isinstance(malformed.value, CorpusError) and isinstance(malformed.value, ValueError)
    message = str(malformed.value)
    assert problem in message
    assert '"sha256:<64 hex digits>"' in message and "sha256sum FILE" in message
    for source in SOURCES.values():
        if source.checksum is not None:
            algorithm, digest = parse_checksum(source.checksum)
            assert len(digest) == hashlib.new(algorithm).digest_size * 2


def test_cached_file_is_verified_too(tmp_path):
    source = Source("toy", "http://example.invalid/toy.zip", "toy.zip", "md5:" + "0" * 32, "none", "none")
    (tmp_path / "toy.zip").write_bytes(b"not the published file")
    with pytest.raises(ChecksumError, match="toy.zip has md5"):
        ensure_file(source, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="expected .zip or .tar.gz"):
        extract(tmp_path / "toy.rar", tmp_path / "out")


def test_windows_and_chronological_splits():
    inputs, targets = make_windows(np.arange(10, dtype=np.float32), window=3, horizon=2)
    assert inputs.shape == (6, 3) and targets.shape == (6, 2)
    assert inputs[0].tolist() == [0, 1, 2] and targets[0].tolist() == [3, 4]
    assert inputs[-1].tolist() == [5, 6, 7] and targets[-1].tolist() == [8, 9]
    with pytest.raises(ValueError, match="too short"):
        make_windows(np.arange(3), window=3)
    series = np.arange(100, dtype=np.float32)
    splits, scaler = split_windows(series, window=5)
    train_targets = set(scaler.inverse(splits["train"][1]).round().flatten().tolist())
    test_targets = set(scaler.inverse(splits["test"][1]).round().flatten().tolist())
    assert not train_targets & test_targets and min(test_targets) == 85
    torch.testing.assert_close(torch.as_tensor(scaler.transform(series[:70]).mean()), torch.tensor(0.0))


@pytest.mark.parametrize("name, length", [("sunspots", 309), ("co2", 526)])
def test_statsmodels_series_load_without_network(name, length):
    from course.datasets import load_series

    values = load_series(name)
    assert values.shape == (length,) and np.isfinite(values).all()
    with pytest.raises(KeyError, match="unknown series"):
        load_series("airline")


# --------------------------------------------------------------------------- text that is not UTF-8

LATIN1 = b"caf\xe9"  # "cafe" with an acute e, in Latin-1: not UTF-8


def many_good_lines_then_one_latin1(tmp_path: Path, name: str, header: bytes, good: bytes,
                                    bad: bytes, repeat: int = 1500) -> tuple[Path, int, int]:
    """A file whose only non-UTF-8 byte sits past the first read buffer (8 KiB), so that its line
    and offset must be found in the file rather than taken from the decoder's buffer."""
    before = header + good * repeat
    path = tmp_path / name
    path.write_bytes(before + bad + good)
    line = before.count(b"\n") + 1
    offset = len(before) + bad.index(b"\xe9")
    assert offset > 8192
    return path, line, offset


@pytest.mark.parametrize("reader, name, header, good, bad", [
    (read_tatoeba, "fra.txt", b"", b"Go.\tVa !\n", b"Cafe.\t" + LATIN1 + b"\n"),
    (read_sst2, "train.tsv", b"sentence\tlabel\n", b"a fine film\t1\n", LATIN1 + b" society\t1\n"),
    (read_snli, "snli_1.0_dev.jsonl", b"",
     b'{"sentence1": "A man sleeps.", "sentence2": "Someone rests.", "gold_label": "entailment"}\n',
     b'{"sentence1": "A ' + LATIN1 + b'.", "sentence2": "Someone rests.", "gold_label": "neutral"}\n'),
    (read_babi, "qa1_single-supporting-fact_train.txt", b"",
     b"1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1\n",
     b"1 Mary moved to the " + LATIN1 + b".\n"),
    (read_conll, "eng.train", b"-DOCSTART- -X- O O\n\n", b"EU NNP B-NP B-ORG\n", LATIN1 + b" NN I-NP O\n"),
])
def test_text_that_is_not_utf8_is_a_format_error_at_its_line_and_byte(tmp_path, reader, name, header, good, bad):
    path, line, offset = many_good_lines_then_one_latin1(tmp_path, name, header, good, bad)
    with pytest.raises(FormatError) as decoded:
        reader(path)
    message = str(decoded.value)
    assert message.startswith(f"{path}:{line}: not UTF-8 text: byte 0xe9 at offset {offset} ")
    assert "must be UTF-8" in message


def test_a_gzipped_file_that_is_not_utf8_names_the_offset_in_the_unpacked_text(tmp_path):
    plain, line, offset = many_good_lines_then_one_latin1(tmp_path, "fra.txt", b"", b"Go.\tVa !\n",
                                                          b"Cafe.\t" + LATIN1 + b"\n")
    packed = tmp_path / "fra.txt.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(FormatError, match=rf"fra\.txt\.gz:{line}: not UTF-8 text: byte 0xe9 at offset "
                                          rf"{offset} of the unpacked text .*must be UTF-8"):
        read_tatoeba(packed)


def test_an_imdb_review_that_is_not_utf8_is_a_format_error_naming_the_review(tmp_path):
    shutil.copytree(FIXTURES / "imdb" / "aclImdb", tmp_path / "aclImdb")
    review = tmp_path / "aclImdb" / "train" / "pos" / "7_8.txt"
    review.write_bytes(b"A good film.<br /><br />\nThe " + LATIN1 + b" scene is the best.")
    with pytest.raises(FormatError, match=r"7_8\.txt:2: not UTF-8 text: byte 0xe9 at offset 32 .*must be UTF-8"):
        read_imdb(tmp_path, "train")

