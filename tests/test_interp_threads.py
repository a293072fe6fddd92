"""Capture from several threads sharing one model: each capture records its own thread's calls
only, and what any caller receives never changes."""

from __future__ import annotations

import threading

import torch
from test_interp_models import make_seq2seq, toy_batch
from torch import nn

import interp


def _run_threads(target, n):
    errors: list[BaseException] = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_each_thread_capture_records_only_its_own_calls():
    model = make_seq2seq()
    batches = [toy_batch(batch=2 + i, seed=i) for i in range(4)]  # batch size tells threads apart
    with torch.no_grad():
        alone = []
        for b in batches:
            with interp.capture(model, "attention") as cap:
                model(*b["inputs"])
            alone.append(cap["attention"])
    barrier = threading.Barrier(4)
    results: dict[int, interp.Capture] = {}

    def work(i):
        with torch.no_grad(), interp.capture(model, "attention") as cap:
            barrier.wait()
            for _ in range(4):
                model(*batches[i]["inputs"])
                barrier.wait()  # interleave the four threads call by call
        results[i] = cap

    _run_threads(work, 4)
    for i, cap in results.items():
        calls = cap.calls("attention")
        assert len(calls) == 4 * 5  # 4 forwards x 5 decoder steps, nobody else's
        assert {c.shape[0] for c in calls} == {2 + i}
        cap_first = torch.cat(calls[:5], dim=1)
        assert torch.equal(cap_first, alone[i])
        cap.clear()
    assert interp.hooks_attached(model) == 0


def test_mha_callers_in_other_threads_get_what_they_asked_for():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        averaged = mha(x, x, x)[1]
    wrong = [0, 0]

    def caller(i):
        with torch.no_grad():
            for _ in range(150):
                out = mha(x, x, x, need_weights=(i == 0))
                # a leak would hand back per-head weights ([2, 2, 3, 3]) or None; threads may
                # reduce in another order, so equal values are compared to a rounding error
                if i == 0 and (out[1] is None or out[1].shape != averaged.shape
                               or not torch.allclose(out[1], averaged, rtol=0, atol=1e-6)):
                    wrong[i] += 1
                if i == 1 and out[1] is not None:
                    wrong[i] += 1

    with interp.capture(mha, nn.MultiheadAttention) as cap, torch.no_grad():
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            mha(x, x, x, need_weights=False)  # the capturing thread calls meanwhile
        for t in threads:
            t.join()
    assert wrong == [0, 0]
    assert len(cap.calls("")) >= 1 and all(c.shape == (2, 2, 3, 3) for c in cap.calls(""))
