"""Download a corpus once, verify its checksum, cache it under data/downloads, extract it.

Nothing downloads unless asked (``download=True`` or ``python -m course.datasets download NAME``).
A corpus that is not cached raises :class:`CorpusMissingError` with the URL, the place to put a
manually downloaded file, and the command that downloads it. Checksums are pinned as
``"sha256:<hex>"`` (or md5/sha1 where only that is published); a mismatch deletes the partial file
and raises :class:`ChecksumError` rather than unpacking something unexpected. A cached file that
fails its checksum or cannot be unpacked is renamed ``<name>.rejected``, so the next load fetches
a fresh copy instead of failing the same way forever. Unpacking is capped (a small archive cannot
fill the disk): see :func:`unpack_limit`, overridden with ``max_bytes=``.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DOWNLOAD_DIR = Path(__file__).resolve().parents[2] / "data" / "downloads"
ALGORITHMS = ("sha256", "sha1", "md5")
Fetch = Callable[[str, Path, float], None]
MAX_EXTRACT_RATIO = 100              # unpacked bytes per archive byte allowed by default
MIN_EXTRACT_LIMIT = 64 * 2**20       # small archives may always unpack to this much
MAX_EXTRACT_BYTES = 32 * 2**30       # and no archive to more than this without max_bytes=


class CorpusMissingError(FileNotFoundError):
    """The corpus is not on disk and was not (or could not be) downloaded; the message says how."""


class ChecksumError(ValueError):
    """A downloaded or cached file does not match its pinned checksum."""


class ArchiveTooLargeError(ValueError):
    """An archive would unpack to more than its size cap (a possible decompression bomb)."""


@dataclass(frozen=True)
class Source:
    """Where a corpus comes from: URL, file name in the cache, pinned checksum, licence note."""

    name: str
    url: str
    filename: str
    checksum: str | None
    license: str
    homepage: str


def parse_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ALGORITHMS or not digest:
        raise ValueError(f"checksum must look like 'sha256:<hex>' (or {', '.join(ALGORITHMS[1:])}), "
                         f"got {checksum!r}")
    return algorithm, digest.lower()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, checksum: str | None) -> None:
    """Raise :class:`ChecksumError` when ``path`` does not match ``checksum`` (None: no check)."""
    if checksum is None:
        return
    algorithm, expected = parse_checksum(checksum)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path} has {algorithm} {actual}, expected {expected}. The file is damaged or not the "
            "published one: delete it and download again (or pass the checksum of the version you "
            "trust)."
        )


def urllib_fetch(url: str, destination: Path, timeout: float) -> None:
    """Stream ``url`` to ``destination`` (some hosts refuse urllib's default user agent)."""
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (course dataset loader)"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out)


def missing_message(source: Source, path: Path, reason: str = "") -> str:
    why = f" ({reason})" if reason else ""
    return (
        f"The {source.name} corpus is not in {path.parent}{why}.\n"
        f"  Download it with:  python -m course.datasets download {source.name}\n"
        f"  or fetch {source.url}\n"
        f"  by hand and save it as {path}\n"
        f"  (about the data: {source.homepage}; licence: {source.license})"
    )


def ensure_file(source: Source, *, download: bool = False, cache_dir: Path | None = None,
                checksum: str | None = None, fetch: Fetch = urllib_fetch, timeout: float = 60.0) -> Path:
    """The cached archive of ``source``, downloaded first when ``download`` and missing.

    ``checksum`` overrides the pinned one (e.g. for a corpus whose host publishes none).
    """
    expected = checksum if checksum is not None else source.checksum
    path = (cache_dir or DOWNLOAD_DIR) / source.filename
    if path.exists():
        try:
            verify(path, expected)
            return path
        except ChecksumError as err:
            # Never leave a rejected file where every later load would fail on it again.
            aside = set_aside(path)
            if not download:
                raise ChecksumError(f"{err} It was moved to {aside}; the next load with "
                                    "download=True fetches a fresh copy.") from None
    if not download:
        raise CorpusMissingError(missing_message(source, path, "not downloaded yet"))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        fetch(source.url, partial, timeout)
    except OSError as err:  # URLError, timeouts and refused connections are all OSErrors
        partial.unlink(missing_ok=True)
        raise CorpusMissingError(missing_message(source, path, f"download failed: {err}")) from None
    try:
        verify(partial, expected)
    except ChecksumError:
        partial.unlink(missing_ok=True)
        raise
    if expected is None:
        print(f"{source.name}: no pinned checksum; sha256:{file_digest(partial)} "
              "(pass it as checksum= to verify later copies)")
    partial.replace(path)
    return path


def set_aside(path: Path) -> Path:
    """Rename a rejected cached file to ``<name>.rejected`` (kept for inspection, out of the way)."""
    aside = path.with_name(path.name + ".rejected")
    path.replace(aside)
    return aside


def unpack_limit(archive: Path, max_bytes: int | None) -> int:
    """How many bytes ``archive`` may unpack to: ``max_bytes`` when given, else
    ``MAX_EXTRACT_RATIO`` times its size (at least ``MIN_EXTRACT_LIMIT``, at most
    ``MAX_EXTRACT_BYTES``). Real corpora of text unpack to a few times their archive's size."""
    if max_bytes is not None:
        return max_bytes
    by_ratio = max(MAX_EXTRACT_RATIO * archive.stat().st_size, MIN_EXTRACT_LIMIT)
    return min(by_ratio, MAX_EXTRACT_BYTES)


def check_unpacked_size(archive: Path, limit: int) -> None:
    """Raise :class:`ArchiveTooLargeError` before unpacking if the members' sizes add up past
    ``limit``. The sizes are the archive's own; zipfile and tarfile never write more than them."""
    total = 0
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            sizes = (info.file_size for info in zf.infolist())
            for size in sizes:
                total += size
                if total > limit:
                    break
    else:
        with tarfile.open(archive) as tf:
            for member in tf:  # stops reading as soon as the limit is passed
                total += member.size
                if total > limit:
                    break
    if total > limit:
        raise ArchiveTooLargeError(
            f"{archive} unpacks to more than {limit:,} bytes ({archive.stat().st_size:,} packed); it "
            "may be a decompression bomb and was not unpacked. If you trust it, pass max_bytes= "
            "(to extract or ensure_extracted) with a larger limit."
        )


def extract(archive: Path, destination: Path, *, max_bytes: int | None = None) -> Path:
    """Unpack a .zip or .tar.gz once into ``destination`` (a marker file records completion).

    The unpacked size is capped (see :func:`unpack_limit`; ``max_bytes`` overrides the cap).
    """
    marker = destination / ".extracted"
    if marker.exists():
        return destination
    if archive.suffix != ".zip" and not archive.name.endswith((".tar.gz", ".tgz")):
        raise ValueError(f"do not know how to unpack {archive.name}; expected .zip or .tar.gz")
    check_unpacked_size(archive, unpack_limit(archive, max_bytes))
    destination.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(destination)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tf:
            tf.extractall(destination, filter="data")  # no absolute paths, links or devices
    else:
        raise ValueError(f"do not know how to unpack {archive.name}; expected .zip or .tar.gz")
    marker.touch()
    return destination


def ensure_extracted(source: Source, *, download: bool = False, cache_dir: Path | None = None,
                     checksum: str | None = None, fetch: Fetch = urllib_fetch,
                     max_bytes: int | None = None) -> Path:
    """The folder the corpus's archive unpacks into, downloading and unpacking as needed.

    An archive that turns out unreadable is set aside (``<name>.rejected``) so that the next
    load downloads it again instead of failing on it forever.
    """
    archive = ensure_file(source, download=download, cache_dir=cache_dir, checksum=checksum, fetch=fetch)
    try:
        return extract(archive, archive.parent / f"{source.name}-extracted", max_bytes=max_bytes)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
        if isinstance(err, (FileNotFoundError, PermissionError)):
            raise
        aside = set_aside(archive)
        raise CorpusMissingError(missing_message(
            source, archive, f"the cached archive could not be unpacked ({err}); it was moved to "
            f"{aside.name}, so downloading again starts afresh")) from None
