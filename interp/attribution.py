"""Gradient and perturbation attributions over input tokens, built on Captum.

One call gives token importances for a classifier (``[batch, src]``) or for every output step of
a seq2seq model (``[batch, tgt, src]``, the shape of its cross-attention), so they can be put
beside attention weights and compared.

How it works. Every problem is flattened into *rows*: a row is one token sequence and one output
index to explain (an example of a classifier; an (example, step) pair of a seq2seq model). The
gradient methods run Captum's input-level classes (``IntegratedGradients``, ``Saliency``, ...)
on the *output of the embedding layer*: a forward hook swaps the layer's output for the tensor
Captum is differentiating, which is what ``LayerIntegratedGradients`` does inside, minus its two
extra full forward passes to recover the layer's output (we call the embedding directly). The
perturbation methods (occlusion, leave-one-out, LIME, KernelSHAP) run Captum on the token ids,
replacing a token by a baseline id (never deleting it, so nothing is re-tokenised).

Reduction rule. Gradient methods give one vector per token (the embedding dimensions); it is
reduced to one number per token by ``reduce``: ``"sum"`` over dimensions (the default for
methods that multiply by the input: integrated gradients, input x gradient, DeepLift,
GradientSHAP, for which the sum keeps completeness, sum of scores = F(x) - F(baseline)) or
``"norm"``, the L2 norm (the default for saliency, whose raw gradient has no sign worth summing).

Padding. Positions outside the mask (from ``attention_mask``, ``lengths`` or ``pad_id``) keep
their original embedding / id in the baseline, so they get no attribution; their scores are set
to exactly 0 and ``Attribution.mask`` says which entries are real.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ._renamed import renamed
from .attribution_methods import BUILTIN_METHODS, AttributionMethod, Problem, find_method
from .inputs import (
    as_target,
    logits_of,
    padding_mask,
    split_kwargs,
    validate_target,
    with_attention_mask,
)

__all__ = [
    "METHODS",
    "Attribution",
    "attribute",
    "attribute_seq2seq",
    "find_embedding",
    "padding_mask",
]

METHODS: tuple[str, ...] = tuple(m.name for m in BUILTIN_METHODS)  # the built-in ones
_OUTPUTS = ("logits", "probs", "log_probs")


@dataclass
class Attribution:
    """Token importances from one method.

    ``scores``: ``[batch, src]`` (classifier) or ``[batch, tgt, src]`` (seq2seq), 0 on padding.
    ``mask``: bool, same shape, True where the entry is a real (example, step, token).
    ``target``: the output index explained, ``[batch]`` or ``[batch, tgt]`` (-1 on padded steps).
    ``deltas``: Captum's convergence deltas (sum of scores minus the output difference) for
    integrated gradients, DeepLift and GradientSHAP, shaped like ``target``; None otherwise.
    ``params``: the settings used, JSON-serialisable (stored beside the scores).
    """

    scores: Tensor
    mask: Tensor
    method: str
    target: Tensor
    deltas: Tensor | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_seq2seq(self) -> bool:
        return self.scores.dim() == 3

    def delta_summary(self) -> dict[str, float] | None:
        """Max and mean absolute convergence delta over real entries (None without deltas)."""
        if self.deltas is None:
            return None
        valid = self.target >= 0
        d = self.deltas[valid].abs().double()
        if d.numel() == 0:
            return {"max_abs_delta": float("nan"), "mean_abs_delta": float("nan")}
        return {"max_abs_delta": float(d.max()), "mean_abs_delta": float(d.mean())}


# --------------------------------------------------------------------------- input handling


def find_embedding(model: nn.Module, embedding: str | nn.Module | None = None) -> tuple[str, nn.Module]:
    """Return ``(name, module)`` of the token embedding layer to attribute to.

    ``embedding`` may be a module name (as in ``model.named_modules()``), the module itself, or
    None to take the model's single ``nn.Embedding`` (or, with several, the one a Hugging Face
    model's ``get_input_embeddings()`` returns). Raises a ValueError that lists candidates
    when none or several are found.
    """
    named = dict(model.named_modules())
    embeddings = [n for n, m in named.items() if isinstance(m, nn.Embedding)]
    how = (
        "pass embedding='<name>' (a name from model.named_modules()) or embedding=<module>, "
        "naming the layer that maps token ids to vectors"
    )
    if embedding is None:
        if len(embeddings) == 1:
            return embeddings[0], named[embeddings[0]]
        getter = getattr(model, "get_input_embeddings", None)  # Hugging Face models name theirs
        chosen = getter() if callable(getter) else None
        for n in embeddings:
            if chosen is not None and named[n] is chosen:
                return n, named[n]
        if not embeddings:
            some = [n for n in named if n][:12]
            raise ValueError(
                f"no nn.Embedding found in {type(model).__name__}; {how}. "
                f"Its modules include: {some}"
            )
        raise ValueError(
            f"{type(model).__name__} has several nn.Embedding layers {embeddings}; {how}, "
            f"e.g. embedding={embeddings[0]!r}"
        )
    if isinstance(embedding, str):
        if embedding not in named:
            raise ValueError(
                f"no module named {embedding!r} in {type(model).__name__}; {how}. "
                f"nn.Embedding layers found: {embeddings}"
            )
        return embedding, named[embedding]
    if isinstance(embedding, nn.Module):
        for n, m in named.items():
            if m is embedding:
                return n, m
        raise ValueError(
            f"the embedding module given is not part of {type(model).__name__}; {how}"
        )
    raise TypeError(f"embedding must be a str, an nn.Module or None, not {type(embedding).__name__}")


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch and numpy's global generators (Captum samples from both), then restore them."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def _apply_output(out: Tensor, output: str) -> Tensor:
    out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out  # differences in half precision lose the signal
    if output == "logits":
        return out
    if output == "probs":
        return out.softmax(-1)
    return out.log_softmax(-1)


def _check_scores(out: Any, n: int, what: str) -> Tensor:
    out = logits_of(out)
    if isinstance(out, (tuple, list)):
        raise TypeError(
            f"{what} returned a {type(out).__name__}, not a tensor of logits (nor an output with a "
            "`logits` field); pass forward_fn=lambda ids, **kw: model(ids, **kw)[0] (or whichever "
            "element holds them)"
        )
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{what} must give logits [batch, classes] for {n} rows, got {shape}")
    return out


# --------------------------------------------------------------------------- one call


def _solve(
    method: AttributionMethod,
    problem: Problem,
    embedding: str | nn.Module | None,
    baseline_id: int | None,
    reduce: str | None,
    method_kwargs: dict[str, Any],
) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
    """Run a registered method; ``params`` are exactly the settings it ran with."""
    given = dict(method_kwargs)
    if reduce is not None:
        if not method.needs_embedding:
            raise ValueError(f"reduce= applies to gradient methods; {method.name} gives one score per token")
        given["reduce"] = reduce
    settings = method.settings(given)
    params: dict[str, Any] = {"baseline_id": baseline_id}  # batch size changes no score: not recorded
    if method.needs_embedding:
        name, problem.embedding = find_embedding(problem.model, embedding)
        params["embedding"] = name
    if baseline_id is not None:
        problem.baseline_ids = torch.full_like(problem.ids, baseline_id)
    params.update(settings)
    with _seeded(settings["seed"]) if method.stochastic else contextlib.nullcontext():
        scores, deltas = method.run(problem, settings)
    if (deltas is not None) != method.has_deltas:
        raise RuntimeError(f"attribution method {method.name} declares has_deltas={method.has_deltas} "
                           f"but returned {'no ' if deltas is None else ''}deltas")
    scores = torch.where(problem.mask, scores, torch.zeros_like(scores))
    return scores, deltas, params


# --------------------------------------------------------------------------- public API


def attribute(
    model: nn.Module,
    input_ids: Tensor,
    method: str = "integrated_gradients",
    *,
    target: int | Sequence[int] | Tensor | None = None,
    embedding: str | nn.Module | None = None,
    attention_mask: Tensor | None = None,
    lengths: Tensor | Sequence[int] | None = None,
    pad_id: int | None = None,
    baseline_id: int | None = None,
    batch_size: int | None = None,
    reduce: str | None = None,
    output: str = "logits",
    forward_fn: Callable[..., Tensor] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    internal_batch_size: int | None = None,
    **method_kwargs: Any,
) -> Attribution:
    """Attribute a classifier's output to its input tokens: scores ``[batch, src]``.

    ``model(input_ids, **forward_kwargs)`` (or ``forward_fn(input_ids, **forward_kwargs)``) must
    return logits ``[batch, classes]``, or an output with a ``logits`` field (a Hugging Face
    ``ModelOutput``); for any other output, ``forward_fn`` says where the logits are.
    ``attention_mask`` marks the real tokens and is passed on to a model whose forward takes one. ``target``: the class to explain, one for all or one per
    example; None explains the model's own prediction. ``baseline_id`` (default ``pad_id``) is
    the token that replaces real tokens: the integration start for integrated gradients, the
    reference for DeepLift/GradientSHAP, the occluding token for occlusion, LIME, KernelSHAP.
    ``batch_size`` bounds rows per forward pass (integrated gradients: examples x steps;
    perturbation methods: perturbations per pass; ``internal_batch_size`` is its old name). ``output``: explain ``"logits"``, ``"probs"``
    or ``"log_probs"``. ``method_kwargs`` are the method's settings (its class in
    :mod:`interp.attribution_methods` lists them with their defaults: ``n_steps``, ``n_samples``,
    ``stdevs``, ``window``, ``measure``, ``seed``, ...); settings a method does not define go on to
    Captum. The settings used are recorded in ``Attribution.params``.
    """
    batch_size = renamed(batch_size, internal_batch_size, new="batch_size", old="internal_batch_size",
                         where="attribute")
    found = find_method(method)
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, not {output!r}")
    input_ids = torch.as_tensor(input_ids)
    mask = padding_mask(input_ids, attention_mask=attention_mask, lengths=lengths, pad_id=pad_id)
    if input_ids.dtype.is_floating_point:
        raise TypeError("input_ids must be integer token ids, got a floating-point tensor")
    input_ids = input_ids.long()
    n = input_ids.shape[0]
    fn = forward_fn if forward_fn is not None else model
    forward_kwargs = with_attention_mask(fn, forward_kwargs, attention_mask)
    names, tensors, static = split_kwargs(forward_kwargs, n)

    def forward(ids: Tensor, *extras: Tensor) -> Tensor:
        out = fn(ids, **static, **dict(zip(names, extras, strict=True)))
        return _apply_output(_check_scores(out, ids.shape[0], "the model"), output)

    with torch.no_grad():
        logits = forward(input_ids, *tensors)
    tgt = as_target(target, n, input_ids.device)
    if tgt is None:
        tgt = logits.argmax(-1)
    validate_target(tgt, logits.shape[-1], "target")
    problem = Problem(input_ids, mask, tgt, tuple(tensors), forward, logits, model, batch_size=batch_size)
    if baseline_id is None:
        baseline_id = pad_id
    scores, deltas, params = _solve(found, problem, embedding, baseline_id, reduce, method_kwargs)
    params.update(output=output, pad_id=pad_id)
    att = Attribution(scores, mask, found.name, tgt, deltas, params)
    summary = att.delta_summary()
    if summary:
        params.update(summary)
    return att


def attribute_seq2seq(
    model: nn.Module,
    src_ids: Tensor,
    tgt_ids: Tensor,
    method: str = "integrated_gradients",
    *,
    target: Tensor | None = None,
    embedding: str | nn.Module | None = None,
    src_lengths: Tensor | Sequence[int] | None = None,
    tgt_lengths: Tensor | Sequence[int] | None = None,
    pad_id: int | None = None,
    tgt_pad_id: int | None = None,
    baseline_id: int | None = None,
    batch_size: int | None = None,
    reduce: str | None = None,
    output: str = "logits",
    forward_fn: Callable[..., Tensor] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    targets: Tensor | None = None,
    internal_batch_size: int | None = None,
    **method_kwargs: Any,
) -> Attribution:
    """Attribute each output step of a seq2seq model to the source tokens: ``[batch, tgt, src]``.

    ``model(src_ids, tgt_ids, **forward_kwargs)`` (or ``forward_fn(...)``) must return logits
    ``[batch, tgt, vocab]``, step t scoring the token that follows decoder input ``tgt_ids[:, t]``
    (teacher forcing). ``target`` ``[batch, tgt]`` (old name ``targets``): the token explained at
    each step (e.g. the gold next tokens); None explains the model's own argmax at each step. To explain the model's
    free-running output, decode first and pass that output as ``tgt_ids``. Padded target steps
    (``tgt_lengths`` or ``tgt_pad_id``) are skipped; their rows are 0 and ``target`` is -1.
    ``embedding`` names the *source* embedding (required when the model has several).
    Other arguments as in :func:`attribute`; every (example, step) is one row for batching.
    """
    batch_size = renamed(batch_size, internal_batch_size, new="batch_size", old="internal_batch_size",
                         where="attribute_seq2seq")
    target = renamed(target, targets, new="target", old="targets", where="attribute_seq2seq")
    found = find_method(method)
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, not {output!r}")
    src_ids = torch.as_tensor(src_ids).long()
    tgt_ids = torch.as_tensor(tgt_ids).long()
    if src_ids.dim() != 2 or tgt_ids.dim() != 2 or src_ids.shape[0] != tgt_ids.shape[0]:
        raise ValueError(
            f"src_ids and tgt_ids must be [batch, src] and [batch, tgt] with the same batch, got "
            f"{tuple(src_ids.shape)} and {tuple(tgt_ids.shape)}"
        )
    b, t_len = tgt_ids.shape
    src_mask = padding_mask(src_ids, lengths=src_lengths, pad_id=pad_id)
    tgt_mask = padding_mask(tgt_ids, lengths=tgt_lengths, pad_id=tgt_pad_id)
    names, tensors, static = split_kwargs(forward_kwargs, b)
    fn = forward_fn if forward_fn is not None else model

    def full(src: Tensor, tgt: Tensor, *extras: Tensor) -> Tensor:
        out = logits_of(fn(src, tgt, **static, **dict(zip(names, extras, strict=True))))
        if isinstance(out, (tuple, list)):
            raise TypeError(
                f"the model returned a {type(out).__name__}, not logits; pass "
                "forward_fn=lambda src, tgt, **kw: model(src, tgt, **kw)[0]"
            )
        if not isinstance(out, Tensor) or out.dim() != 3 or out.shape[:2] != tgt.shape:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(f"the seq2seq model must give logits [batch, tgt, vocab] = [{tgt.shape[0]}, {tgt.shape[1]}, V], got {shape}")
        return _apply_output(out, output)

    with torch.no_grad():
        logits = full(src_ids, tgt_ids, *tensors)
    targets_given = target is not None
    targets = logits.argmax(-1) if target is None else torch.as_tensor(target, device=tgt_ids.device)
    if targets.shape != tgt_ids.shape:
        raise ValueError(f"targets must be [batch, tgt] = {tuple(tgt_ids.shape)}, got {tuple(targets.shape)}")
    targets = targets.long()
    bi, ti = tgt_mask.nonzero(as_tuple=True)
    row_target = targets[bi, ti]
    validate_target(row_target, logits.shape[-1], "target token")

    def forward(ids: Tensor, tgt: Tensor, step: Tensor, *extras: Tensor) -> Tensor:
        out = full(ids, tgt, *extras)
        return out[torch.arange(out.shape[0], device=out.device), step]

    problem = Problem(
        src_ids[bi], src_mask[bi], row_target, (tgt_ids[bi], ti, *(x[bi] for x in tensors)), forward,
        logits[bi, ti], model, batch_size=batch_size,
    )
    if baseline_id is None:
        baseline_id = pad_id
    row_scores, row_deltas, params = _solve(found, problem, embedding, baseline_id, reduce, method_kwargs)
    scores = torch.zeros(b, t_len, src_ids.shape[1], dtype=row_scores.dtype)
    scores[bi, ti] = row_scores
    full_target = torch.full((b, t_len), -1, dtype=torch.long)
    full_target[bi, ti] = row_target
    deltas = None
    if row_deltas is not None:
        deltas = torch.zeros(b, t_len, dtype=row_deltas.dtype)
        deltas[bi, ti] = row_deltas
    mask = tgt_mask[:, :, None] & src_mask[:, None, :]
    params.update(output=output, pad_id=pad_id, tgt_pad_id=tgt_pad_id, teacher_forced=True,
                  targets="given" if targets_given else "argmax")
    att = Attribution(scores, mask, found.name, full_target, deltas, params)
    summary = att.delta_summary()
    if summary:
        params.update(summary)
    return att

