"""What attention returns and carries between decoding steps, and the contracts of its parts.

``AttentionOutput`` is the one output type of every attention module; ``AttentionState`` is what
a stateful attention carries from one decoder step to the next. The ``Protocol`` classes spell
out what :class:`course.attention.Attention` expects of a score, a normaliser and a window,
including the optional members it looks for.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

from torch import Tensor


class AttentionOutput(NamedTuple):
    """What every attention module returns: the context vectors and the weights that built them."""

    context: Tensor
    weights: Tensor


Prepared = Tensor | tuple[Tensor, ...] | None  # what a score's prepare(keys) returns


class AttentionState(NamedTuple):
    """What a stateful attention carries from one decoding step to the next (one query a step).

    ``step`` counts the steps already taken (local-m's aligned position p_t = t),
    ``previous_weights`` are the last step's weights (location-aware scores read them) and
    ``coverage`` is the sum of all earlier weights (See et al. 2017). All have batch first, so
    beam search reorders them like any other state.
    """

    step: Tensor              # [B] long
    previous_weights: Tensor  # [B, K]
    coverage: Tensor          # [B, K]


@runtime_checkable
class Score(Protocol):
    """Energies ``[B, (H,) Q, K]`` from ``query [B, Q, Dq]`` and ``keys [B, K, Dk]``.

    Optional members :class:`~course.attention.Attention` uses when present:

    - ``prepare(keys)`` (or ``prepare(keys, values)`` with ``projects_values = True``): per-source
      work reused by every query, passed back as ``prepared=``;
    - ``uses_state``: True when the score reads an :class:`AttentionState` (``state=``);
    - ``combine(weights, values, prepared)``: its own weighted sum (multi-head attention).
    """

    def __call__(self, query: Tensor, keys: Tensor, *args, **kwargs) -> Tensor: ...


@runtime_checkable
class Normalizer(Protocol):
    """Weights from energies: non-negative, summing to one over the allowed keys, zero elsewhere.

    Optional: ``last_log_prob`` (a sampling normaliser's log-probability of its draw).
    """

    def __call__(self, energies: Tensor, mask: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Window(Protocol):
    """Which keys each query may see, ``[B, Q, K]`` booleans, and an optional factor on the weights.

    Optional: ``needs_positions`` (True when the window reads the decoding step, local-m).
    """

    def __call__(self, query: Tensor, num_keys: int, mask: Tensor | None,
                 positions: Tensor | None) -> tuple[Tensor, Tensor | None]: ...
