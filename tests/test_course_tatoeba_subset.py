"""The committed Tatoeba subset: pinned, read by the downloaded copy's reader, split by English
sentence; the selection script is deterministic; real text batches with unknown words on request."""

from __future__ import annotations

import gzip

import pytest

from course.data.loaders import make_loader
from course.data.vocab import UNK, Vocab
from course.datasets import ChecksumError, load_tatoeba_subset, read_tatoeba
from course.datasets.corpora import SUBSET_DIR
from course.datasets.tatoeba_subset import LONG_FROM, main, select, split_of, write_subset

EXPORT = [
    ("Go.", "Va !"),
    ("Go.", "Marche."),                      # one English sentence, two translations
    ("I don't know.", "Je ne sais pas."),
    ("I don't know.", "Je ne sais pas."),    # an exact duplicate pair
    ("If you had told me you were coming, I would have met you at the station.",
     "Si tu m'avais dit que tu venais, je serais venu te chercher à la gare."),
]


@pytest.fixture(scope="module")
def subset():
    return {split: load_tatoeba_subset(split) for split in ("train", "valid", "test")}


def test_committed_subset_is_pinned_and_split_by_english_sentence(subset):
    sizes = {split: len(pairs) for split, pairs in subset.items()}
    assert sizes == {"train": 45849, "valid": 2611, "test": 5454}
    english = {split: {p["english"].lower() for p in pairs} for split, pairs in subset.items()}
    assert not english["train"] & english["test"] and not english["train"] & english["valid"]
    assert all(split_of(p["english"]) == split for split, pairs in subset.items() for p in pairs[:500])
    long_test = sum(len(p["src"]) >= 15 for p in subset["test"])
    assert long_test >= 250  # enough held-out long sentences for a length bucket
    assert subset["test"][0]["src"] and subset["test"][0]["tgt"]


def test_the_same_reader_reads_a_copy_and_an_edited_copy_is_noticed(tmp_path):
    copy = tmp_path / "test.txt.gz"
    copy.write_bytes((SUBSET_DIR / "test.txt.gz").read_bytes())
    assert read_tatoeba(copy) == load_tatoeba_subset("test", path=copy)
    text = gzip.decompress(copy.read_bytes()).replace(b"Tom", b"Tim", 1)
    copy.write_bytes(gzip.compress(text))
    with pytest.raises(ChecksumError, match="expected"):
        load_tatoeba_subset("test", path=copy, checksum="sha256:" + "0" * 64)
    with pytest.raises(ValueError, match="splits"):
        load_tatoeba_subset("dev")


def test_selection_is_deterministic_and_keeps_translations_together(tmp_path):
    chosen = select(EXPORT)
    kept = [pair for pairs in chosen.values() for pair in pairs]
    assert EXPORT[4] in kept  # long sentences are always kept
    assert len(EXPORT[4][0].split()) >= LONG_FROM
    assert kept.count(("I don't know.", "Je ne sais pas.")) <= 1  # duplicates dropped
    for pairs in chosen.values():
        if ("Go.", "Va !") in pairs:
            assert ("Go.", "Marche.") in pairs  # both translations in the same split
    source = tmp_path / "fra.txt"
    source.write_text("".join(f"{en}\t{fr}\tCC-BY 2.0 (France) Attribution: tatoeba.org\n" for en, fr in EXPORT))
    first = write_subset(source, tmp_path / "a")
    second = write_subset(source, tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "test.txt.gz").read_bytes() == (tmp_path / "b" / "test.txt.gz").read_bytes()
    with pytest.raises(SystemExit):  # refuses to overwrite without --overwrite
        main([str(source), "--out", str(tmp_path / "a")])
    main([str(source), "--out", str(tmp_path / "a"), "--overwrite"])


def test_make_loader_maps_unknown_words_only_when_asked(subset):
    train, test = subset["train"][:300], subset["test"][:50]
    src_vocab = Vocab.build([p["src"] for p in train])
    tgt_vocab = Vocab.build([p["tgt"] for p in train])
    with pytest.raises(KeyError, match="unknown='unk'"):
        next(iter(make_loader(test, src_vocab, tgt_vocab, 50)))
    batch = next(iter(make_loader(test, src_vocab, tgt_vocab, 50, unknown="unk")))
    unseen = sum(w not in src_vocab for p in test for w in p["src"])
    assert unseen > 0 and int((batch.src == UNK).sum()) == unseen
    with pytest.raises(ValueError, match="unknown must be 'error'"):
        make_loader(test, src_vocab, tgt_vocab, 50, unknown="drop")
