"""Measuring the memory a computation needs: peak resident memory, and the bytes autograd keeps.

Torch's CPU allocator is invisible to ``tracemalloc``, so :func:`measure_peak_rss` runs the call
in a forked child process and reports how far the child's peak resident memory (Linux
``VmHWM``) rose above what it inherited: the memory the call itself added at its highest, with
nothing left over from earlier calls. :func:`saved_tensor_bytes` counts, exactly, the bytes of
the tensors autograd keeps for the backward pass (``torch.autograd.graph.saved_tensors_hooks``).
:func:`fit_line` fits the measured growth so it can be extrapolated. :func:`set_mmap_threshold`
stops glibc's ``malloc`` from keeping freed medium-sized buffers (128 kB to 32 MB) in its heap.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import resource
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class PeakMemory:
    """What :func:`measure_peak_rss` measured: added peak bytes, seconds, and the call's return value."""

    peak_bytes: int
    seconds: float
    value: Any = None


@dataclass(frozen=True)
class SavedBytes:
    """What :func:`saved_tensor_bytes` counted: bytes of distinct storages saved for backward."""

    bytes: int
    tensors: int
    value: Any = None


def peak_rss_bytes() -> int:
    """Highest resident memory of this process so far (Linux ``VmHWM``, else ``ru_maxrss``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024


def _child(connection: Any, fn: Callable[..., Any], args: tuple, kwargs: dict, threads: int) -> None:
    try:
        torch.set_num_threads(threads)  # before any work: a forked child must not reuse the parent's pool
        before = peak_rss_bytes()       # the peak starts at what the child inherited
        start = time.perf_counter()
        value = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        connection.send(("ok", PeakMemory(peak_rss_bytes() - before, seconds, value)))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        connection.send(("error", traceback.format_exc()))
    finally:
        connection.close()


def measure_peak_rss(fn: Callable[..., Any], *args: Any, threads: int = 1, timeout: float = 600.0,
                     **kwargs: Any) -> PeakMemory:
    """Run ``fn(*args, **kwargs)`` in a forked child and return the resident memory it added at its peak.

    The child starts as a copy of this process, so ``fn`` may be any function (a notebook's too);
    its return value comes back pickled (keep it small). Everything ``fn`` allocates counts,
    its inputs included if it builds them. Needs ``fork`` (Linux, macOS). Raises
    ``RuntimeError`` with the child's traceback if ``fn`` raised, or if the child died (for example
    killed for memory) or ran past ``timeout`` seconds.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        raise RuntimeError("measure_peak_rss needs the 'fork' start method (Linux or macOS)")
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, fn, args, kwargs, threads), daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            process.kill()
            raise RuntimeError(f"the measured call ran past {timeout} s")
        status, payload = receive.recv()
    except EOFError:
        raise RuntimeError(f"the measuring child died (exit code {process.exitcode}); "
                           "it may have been killed for memory") from None
    finally:
        process.join()
        receive.close()
    if status != "ok":
        raise RuntimeError(f"the measured call raised in the child:\n{payload}")
    return payload


def saved_tensor_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> SavedBytes:
    """Run ``fn`` and count the bytes of the tensors autograd saves for the backward pass.

    Every tensor an operation (or a custom ``autograd.Function``) saves goes through
    ``saved_tensors_hooks``; distinct storages are counted once (a view saved twice, or saved
    by two operations, is one buffer). Parameters and inputs count too when an operation saves
    them. Call it with gradients enabled; the return value of ``fn`` is kept in the result, so
    the saved tensors are still alive for a ``backward`` afterwards.
    """
    storages: dict[int, int] = {}
    count = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal count
        count += 1
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        value = fn(*args, **kwargs)
    return SavedBytes(sum(storages.values()), count, value)


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Least-squares ``y = slope * x + intercept``; returns ``(slope, intercept, r_squared)``."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"fit_line needs at least two (x, y) pairs of equal length, got {len(xs)} and {len(ys)}")
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("fit_line needs at least two different x values")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sxx
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for y in ys)
    residual = sum((y - slope * x - intercept) ** 2 for x, y in zip(xs, ys))
    return slope, intercept, 1.0 - residual / total if total else 1.0


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def set_mmap_threshold(nbytes: int = 128 * 1024) -> bool:
    """Fix glibc's mmap threshold for this process: buffers of ``nbytes`` or more are mapped, and
    given back to the operating system when freed.

    By default glibc raises the threshold (up to 32 MB) every time a mapped buffer is freed, so
    later buffers of that size come from its heap, where freed ones interleaved with small live
    tensors stay resident: a loop that allocates a few-MB buffer per step grows the process as if
    it kept them all. Process-wide (like the ``MALLOC_MMAP_THRESHOLD_`` environment variable);
    returns False where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, int(nbytes)))
    except (OSError, AttributeError):
        return False
