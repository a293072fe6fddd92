"""The one loss protocol, the Trainer that continues a run, callbacks, and the batch base type."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from course.data.batches import (
    Batch,
    DocumentBatch,
    ModelBatch,
    PairBatch,
    StoryBatch,
    TagBatch,
    TextBatch,
    WindowBatch,
)
from course.data.loaders import make_loader
from course.seeding import seed_everything
from course.seq2seq.losses import Seq2SeqLoss
from course.training import History, Trainer, fit

from conftest import make_model, reversal_pairs

ROOT = Path(__file__).resolve().parents[1]


def setup(seed: int = 0):
    from course.data.vocab import Vocab

    pairs = reversal_pairs()
    vocab = Vocab.build([p["src"] for p in pairs])
    g = seed_everything(seed)
    model = make_model(vocab, "bahdanau")
    loader = make_loader(pairs, vocab, vocab, batch_size=16, shuffle=True, generator=g)
    return model, loader


def test_two_calls_of_three_epochs_equal_one_call_of_six():
    one, loader_one = setup()
    Trainer(one, lr=0.02).fit(loader_one, loader_one, epochs=6, progress=False)
    two, loader_two = setup()
    trainer = Trainer(two, lr=0.02)
    trainer.fit(loader_two, loader_two, epochs=3, progress=False)
    history = trainer.fit(loader_two, loader_two, epochs=3, progress=False)
    assert len(history.train_loss) == 6 and trainer.epochs_done == 6
    for a, b in zip(one.state_dict().values(), two.state_dict().values()):
        assert torch.equal(a, b)


def test_a_restarted_optimiser_gives_different_weights():
    """The check above can fail: restarting Adam (two fit() calls) changes the result."""
    one, loader_one = setup()
    Trainer(one, lr=0.02).fit(loader_one, loader_one, epochs=6, progress=False)
    two, loader_two = setup()
    fit(two, loader_two, loader_two, epochs=3, lr=0.02, progress=False)
    fit(two, loader_two, loader_two, epochs=3, lr=0.02, progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))


def test_trainer_state_round_trips_through_weights_only_load(tmp_path):
    one, loader_one = setup()
    Trainer(one, lr=0.02).fit(loader_one, loader_one, epochs=4, progress=False)
    two, loader_two = setup()
    first = Trainer(two, lr=0.02)
    first.fit(loader_two, loader_two, epochs=2, progress=False)
    torch.save(first.state_dict(), tmp_path / "run.pt")
    second = Trainer(two, lr=0.02)
    second.load_state_dict(torch.load(tmp_path / "run.pt", weights_only=True))
    second.fit(loader_two, loader_two, epochs=2, progress=False)
    assert second.epochs_done == 4
    for a, b in zip(one.state_dict().values(), two.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(KeyError, match="not a Trainer state"):
        second.load_state_dict({"optimizer": {}})


def test_a_callback_sees_the_history_and_can_stop():
    model, loader = setup()
    seen = []

    def enough(epoch: int, history: History) -> bool:
        seen.append((epoch, len(history.train_loss), len(history.val_loss)))
        return epoch == 1

    history = fit(model, loader, loader, epochs=10, lr=0.02, callbacks=[enough], progress=False)
    assert seen == [(0, 1, 1), (1, 2, 2)]
    assert len(history.train_loss) == 2 and history.stopped_early
    assert history.stop_reason == "stopped by callback enough"
    with pytest.raises(TypeError, match="callables"):
        fit(model, loader, epochs=1, callbacks=[3], progress=False)


def test_fit_says_where_teacher_forcing_went():
    model, loader = setup()
    with pytest.raises(TypeError, match=r"teacher_forcing_ratio -> loss_fn=Seq2SeqLoss\(teacher_forcing"):
        fit(model, loader, epochs=1, teacher_forcing_ratio=0.5, progress=False)
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['lr_decay'\\]"):
        fit(model, loader, epochs=1, lr_decay=0.5, progress=False)


def test_scheduled_sampling_follows_the_epoch_and_evaluation_is_teacher_forced():
    model, loader = setup()
    loss = Seq2SeqLoss(teacher_forcing=lambda epoch: 1.0 - 0.25 * epoch,
                       generator=torch.Generator().manual_seed(0))
    ratios = []
    real_terms = loss.terms
    loss.terms = lambda m, b: (ratios.append(loss.ratio(m)), real_terms(m, b))[1]
    fit(model, loader, loader, epochs=3, lr=0.02, loss_fn=loss, progress=False)
    batches = len(loader)
    assert ratios == [1.0] * batches + [1.0] * batches + [0.75] * batches + [1.0] * batches + [0.5] * batches + [1.0] * batches
    with pytest.raises(ValueError, match="teacher_forcing must lie in"):
        Seq2SeqLoss(teacher_forcing=1.5)


def test_every_batch_type_names_its_inputs_and_targets():
    t = torch.arange(6).view(2, 3)
    n = torch.tensor([3, 2])
    cases = [
        (Batch(t, n, t > 0, t, t + 1, n), (t, n, t), t + 1),
        (TextBatch(t, n, t > 0, n, n), (t, n), n),
        (DocumentBatch(t, t, n, n), (t, t), n),
        (PairBatch(t, n, t + 1, n, n, n), (t, n, t + 1, n), n),
        (StoryBatch(t, t, t, n, n, n), (t, t, t, n), n),
        (TagBatch(t, n, t, n), (t, n), t),
        (WindowBatch(t.float(), t.float()), (t.float(),), t.float()),
    ]
    for batch, inputs, targets in cases:
        assert isinstance(batch, ModelBatch) and len(batch) == 2
        assert all(torch.equal(a, b) for a, b in zip(batch.inputs(), inputs, strict=True))
        assert torch.equal(batch.targets, targets)
        doubled = batch.map(lambda x: x.repeat_interleave(2, 0))
        assert type(doubled) is type(batch) and len(doubled) == 4


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_layers_data_never_imports_models_and_models_never_import_loaders():
    data = [*(ROOT / "course" / "data").glob("*.py"), *(ROOT / "course" / "datasets").glob("*.py"),
            ROOT / "course" / "masks.py"]
    for path in data:
        bad = {m for m in _imports(path) if m.startswith(("course.models", "course.seq2seq", "course.attention"))}
        assert not bad, f"{path.relative_to(ROOT)} (data) imports models: {sorted(bad)}"
    models = [*(ROOT / "course" / "models").glob("*.py"), *(ROOT / "course" / "seq2seq").glob("*.py"),
              *(ROOT / "course" / "attention").glob("*.py")]
    for path in models:
        assert "course.data.loaders" not in _imports(path), (
            f"{path.relative_to(ROOT)} (a model) imports the DataLoader module; masks live in course.masks")
