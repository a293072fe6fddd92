"""A user's own copy of a corpus: accepted explicitly and remembered, re-extracted when replaced,
found in repacked archives, refused with one clear error when damaged; offline CLI errors are one
line. Fixtures are in the published formats; nothing touches the network."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from course.datasets import (
    ChecksumError,
    CorpusArgumentError,
    CorpusError,
    CorpusLayoutError,
    CorpusMissingError,
    FormatError,
    download,
    fallback_message,
    load_babi,
    load_imdb,
    load_snli,
    load_sst2,
    load_tatoeba,
    load_tatoeba_subset,
    read_tatoeba,
)
from course.datasets import __main__ as cli
from course.datasets.sources import SOURCES

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


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
    for error in (ChecksumError, CorpusMissingError, CorpusLayoutError, FormatError, CorpusArgumentError):
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
    with pytest.raises(ValueError, match="A checksum applies to one file"):
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


# --------------------------------------------------------------------------- checksums as users give them


def test_a_bare_sha256_digest_is_accepted_wherever_a_checksum_is(tmp_path, monkeypatch, capsys):
    folder = sst2_copy(tmp_path)
    train = folder / "train.tsv"
    bare = "  " + sha256(train).split(":")[1].upper() + "\n"  # as pasted from sha256sum, say
    assert len(load_sst2("train", path=train, checksum=bare)) == 2
    assert (folder / "train.tsv.trusted").read_text().strip() == sha256(train)  # recorded normalized

    cache = tmp_path / "cache"
    cache.mkdir()
    archive = zip_folder(folder, cache / "SST-2.zip")
    assert len(load_sst2("dev", download=False, cache_dir=cache, checksum=sha256(archive)[7:])) == 2
    assert load_sst2("train", download=False, cache_dir=cache)  # remembered
    subset = tmp_path / "valid.txt.gz"
    shutil.copyfile(REPO / "data" / "tatoeba" / "valid.txt.gz", subset)
    assert load_tatoeba_subset("valid", path=subset, checksum=sha256(subset)[7:].upper())

    monkeypatch.setattr(download, "DOWNLOAD_DIR", tmp_path / "downloads")
    monkeypatch.setattr(download, "urllib_fetch", lambda url, dest, timeout: shutil.copyfile(archive, dest))
    cli.main(["download", "sst2", "--checksum", sha256(archive)[7:]])
    assert "sst2: ready in" in capsys.readouterr().out
    cli.main(["accept", "sst2", "--checksum", " " + sha256(archive)[7:].upper()])
    assert f"accepted as {sha256(archive)}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # accept --checksum takes only a file that has it
        cli.main(["accept", "sst2", "--checksum", "0" * 64])
    assert refused.value.code == 1 and "expected 0000" in capsys.readouterr().err


MALFORMED = "sha256:" + "0" * 63


def test_a_malformed_checksum_is_a_corpus_error_before_anything_is_read_or_downloaded(tmp_path):
    train = sst2_copy(tmp_path) / "train.tsv"
    calls: list[str] = []
    attempts = [
        lambda: load_sst2("train", path=train, checksum=MALFORMED),
        lambda: load_sst2("train", path=train.parent, checksum=MALFORMED),
        lambda: load_imdb("train", cache_dir=tmp_path / "cache", checksum="crc32:1234",
                          fetch=lambda url, dest, timeout: calls.append(url)),
        lambda: load_babi(1, path=tmp_path / "missing", checksum="not a checksum"),
        lambda: load_tatoeba_subset("valid", checksum="abc"),
    ]
    for attempt in attempts:
        with pytest.raises(CorpusArgumentError) as malformed:
            attempt()
        message = str(malformed.value)
        assert "is malformed" in message and '"sha256:<64 hex digits>"' in message and "sha256sum FILE" in message
    assert calls == [] and not (tmp_path / "cache").exists()
    shown = fallback_message("sst2", malformed.value, "the bundled reviews task")
    assert "correct CORPUS_CHECKSUM as the message says (or set it to None)" in shown


def test_a_malformed_trusted_record_says_how_to_mend_it(tmp_path):
    train = sst2_copy(tmp_path) / "train.tsv"
    download.trusted_record(train).write_text("sha256:deadbeef\n")
    with pytest.raises(CorpusArgumentError, match=r"train\.tsv\.trusted should hold the checksum .* Delete it"):
        download.verify(train)


def test_a_checksum_with_a_folder_says_it_applies_to_one_file(tmp_path):
    for load, folder, one_file in [
        (load_sst2, FIXTURES / "sst2", "one split's TSV file"),
        (load_imdb, FIXTURES / "imdb", None),
        (lambda split, **kw: load_babi(1, split, **kw), FIXTURES / "babi", "one task's file"),
    ]:
        with pytest.raises(CorpusArgumentError) as refused:
            load("train", path=folder, checksum="sha256:" + "0" * 64)
        message = str(refused.value)
        assert message.startswith("A checksum applies to one file, the ")
        assert f"but path= {folder} is a folder" in message
        assert "Pass that file as path=" in message and "checksum=None" in message
        assert (one_file in message) if one_file else "or one" not in message
    shown = fallback_message("imdb", refused.value, "the bundled task")
    assert ("set CORPUS_PATH to the file or folder the message asks for, or set CORPUS_CHECKSUM = None"
            in shown)


def test_the_missing_corpus_message_says_what_path_takes_for_each_corpus(tmp_path):
    expected = {
        load_sst2: "or one split's TSV file (train.tsv, dev.tsv or test.tsv)",
        load_snli: "or one split's JSONL file (snli_1.0_train.jsonl,",
        lambda **kw: load_babi(1, **kw): "or one task's file (such as en/qa1_single-supporting-fact_train.txt",
        load_imdb: "the imdb archive (aclImdb_v1.tar.gz) or the folder it unpacks to (a single file is not enough)",
        load_tatoeba: "or fra.txt itself (plain or gzipped)",
    }
    for load, phrase in expected.items():
        with pytest.raises(CorpusMissingError) as missing:
            load(download=False, cache_dir=tmp_path)
        assert phrase in str(missing.value) and "one of its files" not in str(missing.value)
    # each single file the messages name is one the loader reads
    assert load_sst2("dev", path=FIXTURES / "sst2" / "SST-2" / "dev.tsv")
    assert load_snli("test", path=FIXTURES / "snli" / "snli_1.0" / "snli_1.0_dev.jsonl")
    assert load_babi(2, "test", path=FIXTURES / "babi" / "tasks_1-20_v1-2" / "en"
                     / "qa1_single-supporting-fact_train.txt")
    assert load_tatoeba(path=FIXTURES / "tatoeba" / "fra.txt")
    with pytest.raises(CorpusArgumentError, match="is one file, but IMDB keeps one review a file") as one:
        load_imdb("train", path=FIXTURES / "imdb" / "aclImdb" / "train" / "pos" / "0_9.txt")
    assert "set CORPUS_PATH to the file or folder" in fallback_message("imdb", one.value, "the bundled task")


def test_cli_malformed_checksum_is_one_line_with_exit_status_1(tmp_path, monkeypatch, capsys):
    calls: list[str] = []
    monkeypatch.setattr(download, "DOWNLOAD_DIR", tmp_path)
    monkeypatch.setattr(download, "urllib_fetch", lambda url, dest, timeout: calls.append(url))
    for argv in (["download", "sst2", "--checksum", "abc"], ["accept", "sst2", "--checksum", MALFORMED]):
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: The checksum ") and "Traceback" not in err
        assert '"sha256:<64 hex digits>"' in err and "sha256sum FILE" in err
    assert calls == []
    with pytest.raises(SystemExit) as exited:  # one checksum cannot fit two archives
        cli.main(["download", "sst2", "snli", "--checksum", "0" * 64])
    assert exited.value.code == 2 and "one corpus at a time" in capsys.readouterr().err


def test_cli_malformed_checksum_from_a_shell_prints_no_traceback(tmp_path):
    # accept never downloads, so no version of this command can reach the network
    command = ["accept", "imdb", "--path", str(tmp_path / "aclImdb_v1.tar.gz"), "--checksum", "sha256:xyz"]
    done = subprocess.run([sys.executable, "-m", "course.datasets", *command],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: The checksum 'sha256:xyz' is malformed: the sha256 digest is not hexadecimal")

