"""Downloads under attack: a rejected file never stays in the cache to fail every later load,
and an archive cannot unpack to more than its size cap."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from course.datasets.download import (
    MIN_EXTRACT_LIMIT,
    ArchiveTooLargeError,
    ChecksumError,
    FormatError,
    Source,
    ensure_extracted,
    ensure_file,
    extract,
)


def tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def serving(payloads: list[Path], calls: list[str]):
    """A fetch that serves the given files in turn (a server whose content changes)."""
    def fetch(url: str, destination: Path, timeout: float) -> None:
        calls.append(url)
        shutil.copyfile(payloads[min(len(calls), len(payloads)) - 1], destination)
    return fetch


def test_a_cached_file_failing_its_checksum_is_set_aside_when_downloading_again(tmp_path):
    good = tar_gz(tmp_path / "good.tar.gz", {"toy/a.txt": b"hello"})
    digest = "sha256:" + hashlib.sha256(good.read_bytes()).hexdigest()
    source = Source("toy", "http://example.invalid/toy.tar.gz", "toy.tar.gz", digest, "none", "none")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "toy.tar.gz").write_bytes(b"a truncated or tampered copy")
    with pytest.raises(ChecksumError, match="download=True.*toy.tar.gz.rejected"):
        ensure_file(source, cache_dir=cache)
    # without download=True the file stays (it may be a copy the user means to accept)
    assert (cache / "toy.tar.gz").read_bytes() == b"a truncated or tampered copy"
    calls: list[str] = []
    path = ensure_file(source, cache_dir=cache, download=True, fetch=serving([good], calls))
    assert path.read_bytes() == good.read_bytes() and len(calls) == 1
    assert (cache / "toy.tar.gz.rejected").read_bytes() == b"a truncated or tampered copy"


def test_a_download_that_is_not_an_archive_does_not_stay_in_the_cache(tmp_path):
    page = tmp_path / "page.html"
    page.write_bytes(b"<html>Please log in</html>")  # what some hosts serve instead of the file
    good = tar_gz(tmp_path / "good.tar.gz", {"toy/a.txt": b"hello"})
    source = Source("toy", "http://example.invalid/toy.tar.gz", "toy.tar.gz", None, "none", "none")
    cache = tmp_path / "cache"
    calls: list[str] = []
    fetch = serving([page, good], calls)
    with pytest.raises(FormatError, match="(?s)cannot be unpacked.*rejected"):
        ensure_extracted(source, cache_dir=cache, download=True, fetch=fetch)
    assert not (cache / "toy.tar.gz").exists()
    folder = ensure_extracted(source, cache_dir=cache, download=True, fetch=fetch)
    assert (folder / "toy" / "a.txt").read_bytes() == b"hello" and len(calls) == 2


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path):
    bomb = tmp_path / "bomb.zip"
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as f:
        for _ in range(MIN_EXTRACT_LIMIT // len(chunk) + 8):
            f.write(chunk)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ArchiveTooLargeError, match="decompression bomb.*max_bytes="):
        extract(bomb, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_unpack_cap_can_be_set_explicitly(tmp_path):
    archive = tar_gz(tmp_path / "zeros.tar.gz", {"a.bin": bytes(600_000), "b.bin": bytes(600_000)})
    with pytest.raises(ArchiveTooLargeError, match="more than 1,000,000 bytes"):
        extract(archive, tmp_path / "small", max_bytes=1_000_000)
    assert not (tmp_path / "small").exists()
    out = extract(archive, tmp_path / "default")  # 1.2 MB is within the default cap
    assert (out / "b.bin").stat().st_size == 600_000
