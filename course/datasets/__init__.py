"""Real data: time series shipped with statsmodels, and corpora downloaded on demand.

Downloads are verified by checksum and cached under ``data/downloads`` (git-ignored); offline, a
missing corpus raises :class:`CorpusMissingError` saying where to get it and where to put it. A
copy other than the pinned one is accepted with ``checksum=`` (remembered beside the file) or
``python -m course.datasets accept NAME``; every loader also takes ``path=`` (the archive, the
folder it unpacks to, or one data file where the corpus allows). A checksum is
``"sha256:<64 hex digits>"`` or the 64 digits alone. Every error derives from :class:`CorpusError`.
Each ``read_*`` function parses one corpus format from a path; each ``load_*`` finds (or
downloads) the corpus first.
"""

from course.datasets.corpora import (
    is_single_file,
    load_babi,
    load_imdb,
    load_snli,
    load_sst2,
    load_tatoeba,
    load_tatoeba_subset,
    read_babi,
    read_conll,
    read_imdb,
    read_snli,
    read_sst2,
    read_tatoeba,
)
from course.datasets.errors import (
    ChecksumError,
    CorpusArgumentError,
    CorpusError,
    CorpusLayoutError,
    CorpusMissingError,
    FormatError,
    fallback_message,
)
from course.datasets.series import SERIES, load_series, make_windows, split_windows, window_loader

__all__ = [
    "SERIES",
    "ChecksumError",
    "CorpusArgumentError",
    "CorpusError",
    "CorpusLayoutError",
    "CorpusMissingError",
    "FormatError",
    "fallback_message",
    "is_single_file",
    "load_babi",
    "load_imdb",
    "load_series",
    "load_snli",
    "load_sst2",
    "load_tatoeba",
    "load_tatoeba_subset",
    "make_windows",
    "read_babi",
    "read_conll",
    "read_imdb",
    "read_snli",
    "read_sst2",
    "read_tatoeba",
    "split_windows",
    "window_loader",
]
