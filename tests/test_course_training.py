"""Training loop, checkpoints, decoding and metrics."""

import pytest
import torch

from course.checkpoint import load_checkpoint, load_seq2seq, save_checkpoint, save_seq2seq
from course.data.loaders import make_loader
from course.metrics import bleu, by_length_bucket, chrf, exact_match, token_accuracy
from course.seeding import seed_everything
from course.seq2seq.decoding import beam_search, greedy_decode
from course.training import fit

from conftest import make_model


@pytest.fixture(scope="module")
def trained():
    from course.data.vocab import Vocab

    from conftest import reversal_pairs

    toy_pairs = reversal_pairs()
    toy_vocab = Vocab.build([p["src"] for p in toy_pairs])
    g = seed_everything(0)
    model = make_model(toy_vocab, "bahdanau")
    loader = make_loader(toy_pairs, toy_vocab, toy_vocab, batch_size=16, shuffle=True, generator=g)
    history = fit(model, loader, loader, epochs=60, lr=0.02, patience=20, progress=False)
    return model, history, loader, toy_pairs, toy_vocab


def test_fit_learns_and_keeps_the_best_epoch(trained):
    _, history, *_ = trained
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.best_epoch == min(range(len(history.val_loss)), key=history.val_loss.__getitem__)


def test_greedy_and_beam_decode_the_learned_task(trained):
    model, _, _, toy_pairs, toy_vocab = trained
    batch = next(iter(make_loader(toy_pairs[:16], toy_vocab, toy_vocab, batch_size=16)))
    greedy = greedy_decode(model, batch.src, batch.src_lengths, max_len=10)
    beams = beam_search(model, batch.src, batch.src_lengths, beam_size=3, max_len=10)
    refs = [p["tgt"] for p in toy_pairs[:16]]
    greedy_tokens = [toy_vocab.decode(h.tokens) for h in greedy]
    beam_tokens = [toy_vocab.decode(h.tokens) for h in beams]
    assert token_accuracy(greedy_tokens, refs) > 60
    assert token_accuracy(beam_tokens, refs) >= token_accuracy(greedy_tokens, refs) - 10
    for hyp in greedy + beams:
        assert hyp.attention.shape[0] == len(hyp.tokens) + 1  # a row per token plus EOS
    beam1 = beam_search(model, batch.src, batch.src_lengths, beam_size=1, max_len=10, length_penalty=0.0)
    assert [h.tokens for h in beam1] == [h.tokens for h in greedy]  # beam 1 is greedy


def test_early_stopping_needs_validation(toy_pairs, toy_vocab):
    model = make_model(toy_vocab, "plain")
    loader = make_loader(toy_pairs, toy_vocab, toy_vocab, batch_size=16)
    with pytest.raises(ValueError, match="validation"):
        fit(model, loader, None, epochs=1, patience=2, progress=False)


def test_checkpoint_round_trip_without_pickle(trained, tmp_path):
    model, _, loader, _, toy_vocab = trained
    path = save_seq2seq(tmp_path / "m.safetensors", model, toy_vocab, toy_vocab, {"note": "toy"})
    loaded, src_vocab, tgt_vocab, extra = load_seq2seq(path)
    assert src_vocab == toy_vocab and extra == {"note": "toy"}
    batch = next(iter(loader))
    model.eval()
    loaded.eval()
    torch.testing.assert_close(model(batch.src, batch.src_lengths, batch.tgt_in).logits,
                               loaded(batch.src, batch.src_lengths, batch.tgt_in).logits)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle stream


def test_checkpoint_errors(tmp_path, toy_vocab):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a readable safetensors"):
        load_checkpoint(junk)
    plain = save_checkpoint(tmp_path / "p.safetensors", make_model(toy_vocab, "plain"))
    with pytest.raises(ValueError, match="save_seq2seq"):
        load_seq2seq(plain)


def test_fit_saves_best_checkpoint(toy_pairs, toy_vocab, tmp_path):
    seed_everything(0)
    model = make_model(toy_vocab, "luong")
    loader = make_loader(toy_pairs, toy_vocab, toy_vocab, batch_size=32)
    fit(model, loader, loader, epochs=2, checkpoint=tmp_path / "best.safetensors", progress=False)
    tensors, meta = load_checkpoint(tmp_path / "best.safetensors")
    assert set(tensors) == set(model.state_dict()) and "epoch" in meta


def test_metrics_by_hand():
    refs = [["a", "b", "c"], ["d", "e"]]
    preds = [["a", "b", "c"], ["d", "x", "y"]]
    assert exact_match(preds, refs) == 50.0
    assert token_accuracy(preds, refs) == pytest.approx(100 * 4 / 6)
    long_refs = [["w", "x", "y", "z", "v"], ["p", "q", "r", "s"]]
    assert bleu(long_refs, long_refs) == pytest.approx(100.0)
    assert chrf(long_refs, long_refs) == pytest.approx(100.0)
    assert 0 < bleu([["w", "x", "y", "z", "q"], ["p", "q", "r", "s"]], long_refs) < 100
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        exact_match(preds, refs[:1])
    with pytest.raises(TypeError, match="token lists"):
        bleu(["a b"], ["a b"])


def test_by_length_bucket():
    sources = [["x"] * n for n in (3, 5, 12, 45)]
    refs = [["a"], ["b"], ["c"], ["d"]]
    preds = [["a"], ["z"], ["c"], ["z"]]
    table = by_length_bucket(sources, preds, refs, edges=(1, 10, 40), metrics=("exact_match",))
    assert table.index.tolist() == ["1-9", "10-39", "40+"]
    assert table["exact_match"].tolist() == [50.0, 100.0, 0.0]
    assert table["examples"].tolist() == [2, 1, 1]
    with pytest.raises(ValueError, match="unknown metrics"):
        by_length_bucket(sources, preds, refs, metrics=("rouge",))
