"""Download a corpus once, verify its checksum, cache it under data/downloads, extract it.

Nothing downloads unless asked (``download=True`` or ``python -m course.datasets download NAME``).
A corpus that is not cached raises :class:`CorpusMissingError` with the URL, the place to put a
manually downloaded file, and the command that downloads it. Checksums are pinned as
``"sha256:<hex>"`` (or md5/sha1 where only that is published); a user's checksum may also be the
64 hex digits alone, and a malformed one raises :class:`CorpusArgumentError`. A mismatch deletes
the partial file and raises :class:`ChecksumError` rather than unpacking something unexpected. A
cached file that fails its checksum or cannot be unpacked is renamed ``<name>.rejected``, so the
next load fetches a fresh copy instead of failing the same way forever. Unpacking is capped (a
small archive cannot fill the disk): see :func:`unpack_limit`, overridden with ``max_bytes=``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from course.datasets.errors import (
    ChecksumError,
    CorpusArgumentError,
    CorpusError,
    CorpusLayoutError,
    CorpusMissingError,
    FormatError,
)

__all__ = ["ArchiveTooLargeError", "ChecksumError", "CorpusArgumentError", "CorpusLayoutError",
           "CorpusMissingError", "Source", "ensure_extracted", "ensure_file", "extract", "find_file",
           "normalize_checksum", "parse_checksum", "path_choices", "resolve_corpus", "trust_file", "verify"]

DOWNLOAD_DIR = Path(__file__).resolve().parents[2] / "data" / "downloads"
ALGORITHMS = ("sha256", "sha1", "md5")
HEX_DIGITS = {"sha256": 64, "sha1": 40, "md5": 32}  # the length of each algorithm's hex digest
Fetch = Callable[[str, Path, float], None]
MAX_EXTRACT_RATIO = 100              # unpacked bytes per archive byte allowed by default
MIN_EXTRACT_LIMIT = 64 * 2**20       # small archives may always unpack to this much
MAX_EXTRACT_BYTES = 32 * 2**30       # and no archive to more than this without max_bytes=


class ArchiveTooLargeError(CorpusError, ValueError):
    """An archive would unpack to more than its size cap (a possible decompression bomb)."""


@dataclass(frozen=True)
class Source:
    """Where a corpus comes from: URL, file name in the cache, pinned checksum, licence note.

    ``one_file`` says which single data file its loader reads when given it as ``path=`` (for
    example "one split's TSV file"), or None when the corpus cannot be read from one file.
    """

    name: str
    url: str
    filename: str
    checksum: str | None
    license: str
    homepage: str
    one_file: str | None = None


def path_choices(source: Source) -> str:
    """What ``path=`` may be for ``source``, as a phrase: its archive, the folder it unpacks to,
    and the single file its loader reads, if there is one."""
    archive = f"the {source.name} archive ({source.filename})"
    if source.one_file:
        return f"{archive}, the folder it unpacks to, or {source.one_file}"
    return f"{archive} or the folder it unpacks to (a single file is not enough)"


CHECKSUM_FORM = ('"sha256:<64 hex digits>" (or the 64 hex digits alone; "sha1:<40 hex digits>" and '
                 '"md5:<32 hex digits>" are accepted too)')
HOW_TO_HASH = ("Compute a file's checksum with  sha256sum FILE  (on macOS:  shasum -a 256 FILE); a "
               "loader that refuses a copy prints the exact value that accepts it.")


def checksum_problem(checksum: object) -> str | None:
    """What is wrong with ``checksum`` as a checksum, or None when :func:`parse_checksum` takes it."""
    if not isinstance(checksum, str):
        return f"it is a {type(checksum).__name__}, not a string"
    text = checksum.strip()
    algorithm, colon, digest = text.partition(":")
    if not colon:
        first = text.split()[0] if text.split() else ""
        if not text:
            return "it is empty (for no checksum, pass None)"
        if re.fullmatch(r"[0-9a-fA-F]{64}", text):
            return None  # the 64 hex digits alone: sha256
        if first != text and re.fullmatch(r"[0-9a-fA-F]{64}", first):
            return "it looks like a line of sha256sum output: keep only the 64 hex digits before the file name"
        if re.fullmatch(r"[0-9a-fA-F]+", text):
            return f"{len(text)} hex digits without an algorithm; a bare checksum is sha256, which has 64"
        return "it names no algorithm and is not 64 hex digits"
    algorithm, digest = algorithm.strip().lower(), digest.strip()
    if algorithm not in HEX_DIGITS:
        return f"unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}"
    if not re.fullmatch(r"[0-9a-fA-F]*", digest):
        return f"the {algorithm} digest is not hexadecimal (only 0-9 and a-f)"
    if len(digest) != HEX_DIGITS[algorithm]:
        return f"a {algorithm} digest has {HEX_DIGITS[algorithm]} hex digits, this one {len(digest)}"
    return None


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``(algorithm, lower-case hex digest)`` of ``"sha256:<64 hex digits>"`` (or sha1/md5; the
    prefix in any case, whitespace around it ignored), or of 64 hex digits alone, taken as sha256.

    Anything else raises :class:`CorpusArgumentError` saying what was wrong, the form expected
    and how to compute a file's checksum.
    """
    problem = checksum_problem(checksum)
    if problem is not None:
        shown = repr(checksum) if len(repr(checksum)) <= 90 else repr(checksum)[:80] + "..."
        raise CorpusArgumentError(f"The checksum {shown} is malformed: {problem}. Give it as "
                                  f"{CHECKSUM_FORM}. {HOW_TO_HASH}")
    algorithm, colon, digest = checksum.strip().partition(":")
    if not colon:
        return "sha256", algorithm.lower()
    return algorithm.strip().lower(), digest.strip().lower()


def normalize_checksum(checksum: str | None) -> str | None:
    """``checksum`` as ``"<algorithm>:<lower-case hex>"`` (None stays None); a malformed one
    raises :class:`CorpusArgumentError` (see :func:`parse_checksum`)."""
    if checksum is None:
        return None
    algorithm, digest = parse_checksum(checksum)
    return f"{algorithm}:{digest}"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of the file at ``path`` under ``algorithm``, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def trusted_record(path: Path) -> Path:
    """The file beside ``path`` that remembers the checksum a user accepted for it."""
    return path.with_name(path.name + ".trusted")


def read_trusted(path: Path) -> str | None:
    """The checksum accepted earlier for ``path`` (recorded beside it), or None."""
    record = trusted_record(path)
    if not record.is_file():
        return None
    text = record.read_text(encoding="utf-8", errors="replace").strip()
    if not text:
        return None
    problem = checksum_problem(text)
    if problem is not None:
        raise CorpusArgumentError(f"{record} should hold the checksum accepted for {path.name}, but it is "
                                  f"malformed: {problem}. Delete it and accept the file again (checksum= "
                                  "or python -m course.datasets accept), or write "
                                  f"{CHECKSUM_FORM} into it.", parameters=())
    return normalize_checksum(text)


def trust_file(path: Path) -> str:
    """Accept ``path`` as it is now: record its ``sha256:<hex>`` beside it and return it.

    Later loads of the same file pass without ``checksum=``; a changed file fails again.
    """
    checksum = f"sha256:{file_digest(path)}"
    trusted_record(path).write_text(checksum + "\n", encoding="utf-8")
    return checksum


def matches(path: Path, checksum: str, sha256: str | None = None) -> bool:
    """Whether the file at ``path`` has ``checksum`` (``sha256`` is its digest, when known)."""
    algorithm, expected = parse_checksum(checksum)
    actual = sha256 if algorithm == "sha256" and sha256 is not None else file_digest(path, algorithm)
    return actual == expected


def mismatch_message(path: Path, sha256: str, expected: list[str], name: str | None,
                     url: str | None = None) -> str:
    """What was wrong (the file's checksum against the trusted ones) and the ways to go on."""
    algorithm, digest = parse_checksum(expected[0])
    actual = sha256 if algorithm == "sha256" else file_digest(path, algorithm)
    others = f" (or {', '.join(expected[1:])})" if len(expected) > 1 else ""
    if url is not None:  # a fresh download: the file is deleted, so only a new download can help
        return (
            f"The {name} download from {url} has {algorithm} {actual}, expected {digest}{others}; "
            "it was deleted.\n"
            "  If the host now serves a release you trust, download it with\n"
            f"    python -m course.datasets download {name} --checksum sha256:{sha256}\n"
            f"  (or pass checksum=\"sha256:{sha256}\" to the loader); the checksum is remembered."
        )
    accept = f"python -m course.datasets accept {name} --path {path}" if name else None
    return (
        f"{path} has {algorithm} {actual}, expected {digest}{others}.\n"
        "  A damaged or partial download: delete the file and download it again.\n"
        "  A copy you trust (repacked, or a newer release): "
        + (f"accept it with\n    {accept}\n  or pass" if accept else "pass")
        + f" checksum=\"sha256:{sha256}\" to the loader (a lesson's checksum parameter)"
        + (f"; either is remembered in {trusted_record(path).name} beside the file." if accept else ".")
    )


def verify(path: Path, checksum: str | None = None, *, pinned: str | None = None,
           name: str | None = None, remember: bool = True, url: str | None = None) -> str:
    """Check ``path`` and return its sha256 hex digest.

    With ``checksum`` (a user's explicit choice) the file must match it, and the acceptance is
    recorded beside the file when ``remember``. Without it, the file must match ``pinned`` or a
    checksum recorded earlier; with neither, any file passes. A mismatch raises
    :class:`ChecksumError` whose message gives the file's own checksum and how to accept it.
    """
    checksum, pinned = normalize_checksum(checksum), normalize_checksum(pinned)
    sha256 = file_digest(path)
    if checksum is not None:
        if not matches(path, checksum, sha256):
            raise ChecksumError(mismatch_message(path, sha256, [checksum], name, url), sha256=sha256)
        if remember and checksum != pinned:
            trust_file(path)
        return sha256
    trusted = [c for c in (pinned, read_trusted(path)) if c]
    if trusted and not any(matches(path, c, sha256) for c in trusted):
        raise ChecksumError(mismatch_message(path, sha256, trusted, name, url), sha256=sha256)
    return sha256


def urllib_fetch(url: str, destination: Path, timeout: float) -> None:
    """Stream ``url`` to ``destination`` (some hosts refuse urllib's default user agent)."""
    request = urllib.request.Request(url, headers={"User-Agent": "Mozilla/5.0 (course dataset loader)"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out)


def missing_message(source: Source, path: Path, reason: str = "") -> str:
    """Why ``source`` is not at ``path`` and every way to get it there (or read it from elsewhere)."""
    why = f" ({reason})" if reason else ""
    return (
        f"The {source.name} corpus is not in {path.parent}{why}.\n"
        f"  Download it with:  python -m course.datasets download {source.name}\n"
        f"  or fetch {source.url}\n"
        f"  by hand and save it as {path}\n"
        f"  (or pass path= {path_choices(source)};\n"
        f"  about the data: {source.homepage}; licence: {source.license})"
    )


def cached_archive(source: Source, *, download: bool = False, cache_dir: Path | None = None,
                   checksum: str | None = None, fetch: Fetch = urllib_fetch,
                   timeout: float = 60.0) -> tuple[Path, str]:
    """The cached archive of ``source`` and its sha256, downloaded first when ``download``."""
    checksum = normalize_checksum(checksum)  # a malformed one fails before any download
    path = (cache_dir or DOWNLOAD_DIR) / source.filename
    if path.exists():
        try:
            return path, verify(path, checksum, pinned=source.checksum, name=source.name)
        except ChecksumError as err:
            if not download:
                raise ChecksumError(f"{err} Or load it with download=True: the file is then set aside "
                                    f"as {path.name}.rejected and a fresh copy is fetched.",
                                    sha256=err.sha256) from None
            # never leave a rejected file where every later load would fail on it again
            set_aside(path)
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
        sha256 = verify(partial, checksum, pinned=source.checksum, name=source.name, remember=False,
                        url=source.url)
    except ChecksumError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    if checksum is not None and checksum != normalize_checksum(source.checksum):
        trust_file(path)
    if checksum is None and source.checksum is None:
        print(f"{source.name}: no pinned checksum; sha256:{sha256} "
              "(pass it as checksum= to verify later copies)")
    return path, sha256


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


def ensure_file(source: Source, *, download: bool = False, cache_dir: Path | None = None,
                checksum: str | None = None, fetch: Fetch = urllib_fetch, timeout: float = 60.0) -> Path:
    """The cached archive of ``source``, downloaded first when ``download`` and missing.

    ``checksum`` accepts a copy other than the pinned one (for example a repacked or newer
    release, or a corpus whose host publishes none); the acceptance is remembered beside it.
    """
    return cached_archive(source, download=download, cache_dir=cache_dir, checksum=checksum,
                          fetch=fetch, timeout=timeout)[0]


ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


def is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def extract(archive: Path, destination: Path, sha256: str | None = None, *,
            max_bytes: int | None = None) -> Path:
    """Unpack a .zip or .tar.gz into ``destination`` unless it already holds this very archive.

    A marker file records the archive's sha256: a replaced archive (a newer release, say) is
    unpacked afresh instead of serving the old files. Unpacking goes to a temporary folder first,
    so an interrupted run never leaves a half-filled ``destination`` marked complete. The unpacked
    size is capped (see :func:`unpack_limit`; ``max_bytes`` overrides the cap).
    """
    if not is_archive(archive):
        raise ValueError(f"do not know how to unpack {archive.name}; expected .zip or .tar.gz")
    sha256 = sha256 or file_digest(archive)
    marker = destination / ".extracted"
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == sha256:
        return destination
    try:
        check_unpacked_size(archive, unpack_limit(archive, max_bytes))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        raise FormatError(f"{archive} cannot be unpacked ({err}): it is damaged or truncated. "
                          "Delete it and download it again.") from None
    partial = destination.with_name(destination.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    try:
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(partial)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(partial, filter="data")  # no absolute paths, links or devices
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as err:
        shutil.rmtree(partial)
        raise FormatError(f"{archive} cannot be unpacked ({err}): it is damaged or truncated. "
                          "Delete it and download it again.") from None
    (partial / ".extracted").write_text(sha256 + "\n", encoding="utf-8")
    if destination.exists():
        shutil.rmtree(destination)
    partial.replace(destination)
    return destination


def ensure_extracted(source: Source, *, download: bool = False, cache_dir: Path | None = None,
                     checksum: str | None = None, fetch: Fetch = urllib_fetch,
                     max_bytes: int | None = None) -> Path:
    """The folder the corpus's archive unpacks into, downloading and unpacking as needed.

    An archive that turns out unreadable is set aside (``<name>.rejected``) so that the next
    load downloads it again instead of failing on it forever.
    """
    archive, sha256 = cached_archive(source, download=download, cache_dir=cache_dir, checksum=checksum,
                                     fetch=fetch)
    try:
        return extract(archive, archive.parent / f"{source.name}-extracted", sha256, max_bytes=max_bytes)
    except FormatError as err:
        aside = set_aside(archive)  # a later load with download=True starts afresh
        raise FormatError(f"{err} It was moved to {aside.name}, so downloading again (download=True) "
                          "starts afresh instead of failing on it.") from None


def resolve_corpus(source: Source, path: Path | str | None = None, *, download: bool = False,
                   cache_dir: Path | None = None, checksum: str | None = None,
                   fetch: Fetch = urllib_fetch) -> Path:
    """Where a loader reads ``source`` from: a folder to search, or one file to read.

    ``path`` may be the corpus archive (verified, then unpacked into the cache), the folder it
    unpacks to, or a single data file; without it, the download cache is used. ``checksum`` (of
    the archive or the single file) must be well formed, and cannot go with a folder: both raise
    :class:`CorpusArgumentError`.
    """
    checksum = normalize_checksum(checksum)
    if path is None:
        return ensure_extracted(source, download=download, cache_dir=cache_dir, checksum=checksum,
                                fetch=fetch)
    path = Path(path)
    if not path.exists():
        raise CorpusMissingError(f"{path} does not exist. Give path= {path_choices(source)}.")
    if path.is_dir() or not is_archive(path):
        if checksum is not None and path.is_dir():
            one_file = f" or {source.one_file}" if source.one_file else ""
            raise CorpusArgumentError(
                f"A checksum applies to one file, the {source.name} archive ({source.filename}){one_file}, "
                f"but path= {path} is a folder. Pass that file as path= to have it checked, or drop the "
                "checksum (checksum=None) for a folder you trust.", parameters=("path", "checksum"))
        if checksum is not None:
            verify(path, checksum, name=None)
        return path
    sha256 = verify(path, checksum, pinned=source.checksum if path.name == source.filename else None,
                    name=None)
    return extract(path, (cache_dir or DOWNLOAD_DIR) / f"{source.name}-extracted", sha256)


def visible(path: Path, root: Path) -> bool:
    """False for macOS archive debris (``__MACOSX/``, ``._name``) that repacked zips carry."""
    parts = path.relative_to(root).parts
    return not any(p == "__MACOSX" or p.startswith("._") for p in parts)


def find_file(root: Path, patterns: list[str], what: str) -> Path:
    """The one file under ``root`` matching the first pattern that matches anything.

    Patterns are tried in order (most specific first), at any depth, so an archive repacked with
    an extra top folder still works; two candidates for one pattern are an error naming both.
    """
    for pattern in patterns:
        hits = sorted(p for p in root.rglob(pattern) if p.is_file() and visible(p, root))
        if len(hits) == 1:
            return hits[0]
        if hits:
            shown = ", ".join(str(h.relative_to(root)) for h in hits[:5])
            raise CorpusLayoutError(f"{len(hits)} candidates for the {what} under {root}: {shown}. "
                                    "Pass path= the one you mean.")
    raise CorpusLayoutError(f"no {what} ({' or '.join(patterns)}) under {root}: this is not the "
                            "published layout. Pass path= the file itself.")
