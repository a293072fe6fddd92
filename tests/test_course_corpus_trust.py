"""A user's own copy of a corpus: accepted explicitly and remembered, re-extracted when replaced,
found in repacked archives, refused with one clear error when damaged; offline CLI errors are one
line. Fixtures are in the published formats; nothing touches the network."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from course.datasets import (
    ChecksumError,
    CorpusError,
    CorpusLayoutError,
    CorpusMissingError,
    FormatError,
    download,
    load_babi,
    load_imdb,
    load_snli,
    load_sst2,
    load_tatoeba,
    read_tatoeba,
)
from course.datasets import __main__ as cli
from course.datasets.sources import SOURCES

FIXTURES = Path(__file__).parent / "fixtures"


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def zip_folder(folder: Path, archive: Path, prefix: str = "", macos_debris: bool = False) -> Path:
    """Zip ``folder`` as ``prefix/<folder name>/...`` (a repacked copy when prefix is set)."""
    with zipfile.ZipFile(archive, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                name = str(Path(prefix) / folder.name / file.relative_to(folder))
                zf.write(file, name)
                if macos_debris:
                    debris = Path("__MACOSX") / Path(name).parent / f"._{file.name}"
                    zf.writestr(str(debris), b"\x00\x05\x16\x07 mac resource fork")
    return archive


def sst2_copy(tmp_path: Path, extra_row: str | None = None) -> Path:
    """A copy of the SST-2 fixture folder, optionally with one more training row (a newer copy)."""
    folder = tmp_path / "src" / "SST-2"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(FIXTURES / "sst2" / "SST-2", folder)
    if extra_row:
        with open(folder / "train.tsv", "a", encoding="utf-8") as f:
            f.write(extra_row + "\n")
    return folder


def test_every_corpus_error_shares_one_base_and_keeps_the_builtin_one():
    for error in (ChecksumError, CorpusMissingError, CorpusLayoutError, FormatError):
        assert issubclass(error, CorpusError)
    assert issubclass(CorpusMissingError, FileNotFoundError) and issubclass(ChecksumError, ValueError)
    with pytest.raises(CorpusError):
        load_sst2("train", download=False, cache_dir=Path("nowhere-at-all"))


def test_a_repacked_copy_is_refused_with_the_way_to_accept_it_which_is_remembered(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    archive = zip_folder(sst2_copy(tmp_path), cache / "SST-2.zip", prefix="glue_data", macos_debris=True)
    with pytest.raises(ChecksumError) as refused:
        load_sst2("train", download=False, cache_dir=cache)
    message = str(refused.value)
    own = sha256(archive)
    assert f'checksum="{own}"' in message  # the exact value to pass
    assert f"python -m course.datasets accept sst2 --path {archive}" in message
    accepted = load_sst2("train", download=False, cache_dir=cache, checksum=own)
    assert [e["label"] for e in accepted] == ["negative", "positive"]  # extra folder and debris skipped
    assert (cache / "SST-2.zip.trusted").read_text().strip() == own
    again = load_sst2("dev", download=False, cache_dir=cache)  # remembered: no checksum needed
    assert again[0]["tokens"][:3] == ["it", "'", "s"]
    archive.write_bytes(archive.read_bytes() + b"\x00")  # a changed file is not the accepted one
    with pytest.raises(ChecksumError, match="expected"):
        load_sst2("train", download=False, cache_dir=cache)


def test_a_replaced_archive_is_extracted_again(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    old = zip_folder(sst2_copy(tmp_path), cache / "SST-2.zip")
    assert len(load_sst2("train", download=False, cache_dir=cache, checksum=sha256(old))) == 2
    new = zip_folder(sst2_copy(tmp_path, "a newer release adds this row \t1"), tmp_path / "new.zip")
    shutil.copyfile(new, old)  # the user drops a newer release in the same place
    with pytest.raises(ChecksumError):  # not trusted yet: the old acceptance does not carry over
        load_sst2("train", download=False, cache_dir=cache)
    rows = load_sst2("train", download=False, cache_dir=cache, checksum=sha256(new))
    assert len(rows) == 3 and rows[-1]["tokens"][:2] == ["a", "newer"]  # not the stale unpacked copy
    marker = cache / "sst2-extracted" / ".extracted"
    assert marker.read_text().strip() == sha256(new).split(":")[1]


def test_cli_checksum_is_remembered_by_the_next_load(tmp_path, monkeypatch, capsys):
    archive = zip_folder(sst2_copy(tmp_path), tmp_path / "repacked.zip", prefix="SST-2-v2")
    monkeypatch.setattr(download, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(download, "urllib_fetch", lambda url, dest, timeout: shutil.copyfile(archive, dest))
    cli.main(["download", "sst2", "--checksum", sha256(archive)])
    assert "sst2: ready in" in capsys.readouterr().out
    assert len(load_sst2("train", download=False)) == 2  # the very call that used to refuse again


def test_cli_accept_trusts_a_placed_copy(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "DOWNLOAD_DIR", tmp_path)
    zip_folder(FIXTURES / "snli" / "snli_1.0", tmp_path / "snli_1.0.zip")
    cli.main(["accept", "snli"])
    assert "accepted as sha256:" in capsys.readouterr().out
    assert [p["label"] for p in load_snli("dev", download=False)] == ["neutral", "contradiction"]
    assert load_snli("test", download=False)[0]["label"] == "neutral"


def test_offline_cli_errors_are_one_line(tmp_path, monkeypatch, capsys):
    def offline(url: str, destination: Path, timeout: float) -> None:
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(download, "DOWNLOAD_DIR", tmp_path)
    monkeypatch.setattr(download, "urllib_fetch", offline)
    with pytest.raises(SystemExit) as exited:
        cli.main(["download", "imdb"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: The imdb corpus")
    assert "download failed: Temporary failure" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        cli.main(["accept", "imdb"])
    assert capsys.readouterr().err.startswith("error: no file at")


def test_path_takes_an_archive_a_folder_or_a_file(tmp_path):
    repacked = tmp_path / "aclImdb-copy.tar.gz"
    with tarfile.open(repacked, "w:gz") as tf:
        tf.add(FIXTURES / "imdb" / "aclImdb", arcname="downloads/aclImdb")  # an extra top folder
    from_archive = load_imdb("train", path=repacked, cache_dir=tmp_path / "cache")
    from_folder = load_imdb("train", path=FIXTURES / "imdb")
    assert sorted(e["rating"] for e in from_archive) == sorted(e["rating"] for e in from_folder) == [1, 9, 10]
    assert load_sst2("dev", path=FIXTURES / "sst2")[1]["label"] == "negative"
    assert load_sst2("test", path=FIXTURES / "sst2" / "SST-2" / "test.tsv")[0]["label"] is None
    with pytest.raises(CorpusMissingError, match="does not exist. Give path= the sst2 archive"):
        load_sst2("train", path=tmp_path / "missing.zip")
    with pytest.raises(ValueError, match="checksum= verifies an archive file"):
        load_sst2("train", path=FIXTURES / "sst2", checksum="sha256:" + "0" * 64)
    with pytest.raises(ChecksumError, match="expected 0000"):
        load_imdb("train", path=repacked, cache_dir=tmp_path / "cache", checksum="sha256:" + "0" * 64)


def test_babi_1k_and_10k_are_chosen_by_parameter_never_by_what_exists(tmp_path):
    root = FIXTURES / "babi"
    small = load_babi(1, "train", path=root)
    large = load_babi(1, "train", size="10k", path=root)
    assert len(small) == 3 and len(large) == 3
    assert small[0]["answer"] == "bathroom" and large[0]["answer"] == "office"
    assert load_babi(1, "test", size="10k", path=root)[0]["answer"] == "bedroom"
    assert load_babi(1, "test", tenk=False, path=root)[0]["answer"] == "kitchen"
    with pytest.raises(ValueError, match="size='1k' or '10k'"):
        load_babi(1, size="100k", path=root)
    with pytest.raises(CorpusLayoutError, match="no bAbI task 2 test file"):
        load_babi(2, "test", path=root)


def test_truncated_and_damaged_files_are_one_clear_error(tmp_path):
    whole = gzip.compress((FIXTURES / "tatoeba" / "fra.txt").read_bytes() * 50)
    cut = tmp_path / "fra.txt.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FormatError, match=r"fra\.txt\.gz:\d+: the file is truncated"):
        read_tatoeba(cut)
    archive = tmp_path / "tasks_1-20_v1-2.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(FIXTURES / "babi" / "tasks_1-20_v1-2", arcname="tasks_1-20_v1-2")
    archive.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(FormatError, match="cannot be unpacked .* damaged or truncated"):
        load_babi(1, download=False, cache_dir=tmp_path)
    assert not (tmp_path / "babi-extracted").exists() and not (tmp_path / "babi-extracted.partial").exists()


def test_download_that_fails_its_checksum_says_how_to_trust_a_new_release(tmp_path):
    archive = zip_folder(FIXTURES / "tatoeba", tmp_path / "fra-eng.zip")
    with pytest.raises(ChecksumError) as refused:
        load_tatoeba(cache_dir=tmp_path / "cache",
                     fetch=lambda url, dest, timeout: shutil.copyfile(archive, dest))
    assert f"python -m course.datasets download tatoeba --checksum {sha256(archive)}" in str(refused.value)
    assert not any((tmp_path / "cache").iterdir())
    pairs = load_tatoeba(cache_dir=tmp_path / "cache", checksum=sha256(archive),
                         fetch=lambda url, dest, timeout: shutil.copyfile(archive, dest))
    assert pairs[0]["french"] == "Va !"
    assert len(load_tatoeba(cache_dir=tmp_path / "cache", download=False)) == 3  # remembered
    assert SOURCES["tatoeba"].checksum is not None
