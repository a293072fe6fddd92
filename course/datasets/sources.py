"""The real corpora the course can load, with pinned checksums where one is published, and the
single file (if any) each loader reads when given it as ``path=``."""

from __future__ import annotations

from course.datasets.download import Source

SOURCES: dict[str, Source] = {
    "tatoeba": Source(
        "tatoeba", "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip", "fra-eng.zip",
        "sha1:94646ad1522d915e7b0f9296181140edcf86a4f5",  # the snapshot d2l.ai pins
        "CC-BY 2.0 FR (Tatoeba sentences, via manythings.org/anki)", "https://www.manythings.org/anki/",
        one_file="fra.txt itself (plain or gzipped)"),
    "imdb": Source(
        "imdb", "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz", "aclImdb_v1.tar.gz",
        "sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
        "research use; cite Maas et al. (2011)", "https://ai.stanford.edu/~amaas/data/sentiment/",
        one_file=None),  # one review a file: the loader needs the aclImdb folder (or the archive)
    "sst2": Source(
        "sst2", "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip", "SST-2.zip",
        "sha256:d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa",
        "see the Stanford Sentiment Treebank and GLUE terms", "https://gluebenchmark.com/tasks",
        one_file="one split's TSV file (train.tsv, dev.tsv or test.tsv)"),
    "snli": Source(
        "snli", "https://nlp.stanford.edu/projects/snli/snli_1.0.zip", "snli_1.0.zip",
        "sha256:afb3d70a5af5d8de0d9d81e2637e0fb8c22d1235c2749d83125ca43dab0dbd3e",
        "CC BY-SA 4.0", "https://nlp.stanford.edu/projects/snli/",
        one_file="one split's JSONL file (snli_1.0_train.jsonl, snli_1.0_dev.jsonl or snli_1.0_test.jsonl)"),
    "babi": Source(
        "babi", "http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz",
        "tasks_1-20_v1-2.tar.gz", None,  # no published checksum: pass checksum= to pin one
        "CC BY 3.0", "https://research.facebook.com/downloads/babi/",
        one_file="one task's file (such as en/qa1_single-supporting-fact_train.txt; it is read "
                 "whatever task and split are asked for)"),
}

# The committed English-French subset (data/tatoeba, built by course.datasets.tatoeba_subset from
# the 2019-04-07 export; see data/README.md). Pinned so an edited copy is noticed.
TATOEBA_SUBSET: dict[str, str] = {
    "train": "sha256:bbd9ea4ca52a4add1face977af06519e44808594db9e4aa18043e8f184e3751e",
    "valid": "sha256:98cced21d3c4b628b3c76c67d6b7fb280134fb5f427aae3099488a1e3bd4b838",
    "test": "sha256:edde838b5459921fad87f5f3b2f2415a5238c28dd71a6e8ffa3e1da6926f333b",
}
