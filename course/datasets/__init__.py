"""Real data: time series shipped with statsmodels, and corpora downloaded on demand.

Downloads are verified by checksum and cached under ``data/downloads`` (git-ignored); offline, a
missing corpus raises :class:`CorpusMissingError` saying where to get it and where to put it.
Each ``read_*`` function parses one corpus format from a path; each ``load_*`` finds (or
downloads) the corpus first.
"""

from course.datasets.corpora import (
    load_babi,
    load_imdb,
    load_snli,
    load_sst2,
    load_tatoeba,
    read_babi,
    read_conll,
    read_imdb,
    read_snli,
    read_sst2,
    read_tatoeba,
)
from course.datasets.download import ChecksumError, CorpusMissingError
from course.datasets.series import SERIES, load_series, make_windows, split_windows, window_loader
from course.datasets.text import FormatError

__all__ = [
    "SERIES",
    "ChecksumError",
    "CorpusMissingError",
    "FormatError",
    "load_babi",
    "load_imdb",
    "load_series",
    "load_snli",
    "load_sst2",
    "load_tatoeba",
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
