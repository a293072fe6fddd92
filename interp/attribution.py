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
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "METHODS",
    "Attribution",
    "attribute",
    "attribute_seq2seq",
    "find_embedding",
    "padding_mask",
]

GRADIENT_METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "deeplift", "gradient_shap")
PERTURBATION_METHODS = ("occlusion", "leave_one_out", "lime", "kernel_shap")
METHODS: tuple[str, ...] = GRADIENT_METHODS + PERTURBATION_METHODS
_ALIASES = {
    "ig": "integrated_gradients",
    "layer_integrated_gradients": "integrated_gradients",
    "ixg": "input_x_gradient",
    "inputxgradient": "input_x_gradient",
    "gradientshap": "gradient_shap",
    "kernelshap": "kernel_shap",
    "loo": "leave_one_out",
}
_HAS_DELTAS = ("integrated_gradients", "deeplift", "gradient_shap")
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
    None to take the model's single ``nn.Embedding``. Raises a ValueError that lists candidates
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


def padding_mask(
    input_ids: Tensor,
    *,
    attention_mask: Tensor | None = None,
    lengths: Tensor | Sequence[int] | None = None,
    pad_id: int | None = None,
) -> Tensor:
    """Bool mask ``[batch, seq]`` of real tokens, from whichever of the three is given.

    Priority: ``attention_mask`` (nonzero = real), then ``lengths`` (right padding), then
    ``pad_id``; with none of them every position is real.
    """
    if input_ids.dim() != 2:
        raise ValueError(f"token ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
    b, s = input_ids.shape
    if attention_mask is not None:
        attention_mask = torch.as_tensor(attention_mask)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)} but the token ids have "
                f"shape {tuple(input_ids.shape)}; they must match"
            )
        return attention_mask.to(input_ids.device) != 0
    if lengths is not None:
        lengths = torch.as_tensor(lengths, device=input_ids.device).long().reshape(-1)
        if lengths.numel() != b:
            raise ValueError(f"lengths has {lengths.numel()} entries for a batch of {b}")
        if (lengths < 0).any() or (lengths > s).any():
            raise ValueError(f"lengths must lie in 0..{s} (the padded length), got {lengths.tolist()}")
        return torch.arange(s, device=input_ids.device)[None, :] < lengths[:, None]
    if pad_id is not None:
        return input_ids != pad_id
    return torch.ones_like(input_ids, dtype=torch.bool)


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


def _canonical(method: str) -> str:
    key = method.lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {list(METHODS)}")
    return key


def _apply_output(out: Tensor, output: str) -> Tensor:
    if output == "logits":
        return out
    if output == "probs":
        return out.softmax(-1)
    return out.log_softmax(-1)


def _check_scores(out: Any, n: int, what: str) -> Tensor:
    if isinstance(out, (tuple, list)):
        raise TypeError(
            f"{what} returned a {type(out).__name__}, not a tensor of logits; pass "
            "forward_fn=lambda ids, **kw: model(ids, **kw)[0] (or whichever element holds them)"
        )
    if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != n:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(f"{what} must give logits [batch, classes] for {n} rows, got {shape}")
    return out


# --------------------------------------------------------------------------- the row problem


@dataclass
class _Rows:
    """The flattened problem: explain ``forward(ids, *extras)[i, target[i]]`` for each row i."""

    ids: Tensor  # [n, s] long
    mask: Tensor  # [n, s] bool
    target: Tensor  # [n] long
    extras: tuple[Tensor, ...]  # tensors with first dim n, passed after ids
    forward: Callable[..., Tensor]  # (ids, *extras) -> [n, outputs]
    output: Tensor  # forward(ids, *extras), already computed (reused for IG's delta)


class _EmbeddingSwap(nn.Module):
    """Runs the model with the embedding layer's output replaced by a given tensor.

    Captum differentiates with respect to ``embeds``; the hook puts it where the embedding's
    output would be (first call of the layer in a forward whose output shape matches, so a
    decoder sharing the layer keeps its own lookup).
    """

    def __init__(self, model: nn.Module, embedding: nn.Module, forward: Callable[..., Tensor]):
        super().__init__()
        self.model = model  # a submodule, so DeepLift finds (and hooks) its layers
        self._embedding = [embedding]  # not a submodule: it already is one, via model
        self._forward = forward

    def forward(self, embeds: Tensor, ids: Tensor, *extras: Tensor) -> Tensor:
        done = [False]

        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor | None:
            if done[0] or output.shape != embeds.shape:
                return None
            done[0] = True
            return embeds

        handle = self._embedding[0].register_forward_hook(hook)
        try:
            out = self._forward(ids, *extras)
        finally:
            handle.remove()
        if not done[0]:
            raise RuntimeError(
                "the embedding layer was not called with the token ids during the forward pass "
                f"(expected an output of shape {tuple(embeds.shape)}); name the layer that embeds "
                "the input tokens with embedding='<module name>'"
            )
        return out


def _reduce(attr: Tensor, reduce: str) -> Tensor:
    if attr.dim() == 2:
        return attr
    if reduce == "sum":
        return attr.sum(-1)
    return attr.norm(dim=-1)


def _run_gradient(
    method: str,
    rows: _Rows,
    model: nn.Module,
    embedding: nn.Module,
    baseline_ids: Tensor | None,
    internal_batch_size: int | None,
    reduce: str,
    kwargs: dict[str, Any],
) -> tuple[Tensor, Tensor | None]:
    from captum.attr import (
        DeepLift,
        GradientShap,
        InputXGradient,
        IntegratedGradients,
        Saliency,
    )

    wrapper = _EmbeddingSwap(model, embedding, rows.forward)
    with torch.no_grad():
        embeds = embedding(rows.ids)
        if baseline_ids is None:
            base = torch.zeros_like(embeds)
        else:
            base = embedding(baseline_ids)
        base = torch.where(rows.mask[..., None], base, embeds)  # padding: no difference
    embeds = embeds.detach().requires_grad_(True)
    args = (rows.ids, *rows.extras)
    deltas = None
    if method == "integrated_gradients":
        ig = IntegratedGradients(wrapper)
        attr = ig.attribute(
            embeds,
            baselines=base,
            target=rows.target,
            additional_forward_args=args,
            n_steps=kwargs.pop("n_steps", 50),
            method=kwargs.pop("integration", "gausslegendre"),
            internal_batch_size=internal_batch_size,
            **kwargs,
        )
        # Captum's convergence delta, sum(attr) - (F(x) - F(baseline)), with F(x) reused from
        # the forward pass already made: one forward pass (at the baseline) instead of two
        with torch.no_grad():
            at_base = wrapper(base, *args)
        idx = torch.arange(rows.target.shape[0], device=rows.target.device)
        gap = rows.output[idx, rows.target].double() - at_base[idx, rows.target].double()
        deltas = (attr.detach().double().sum(dim=(1, 2)) - gap).to(attr.dtype)
    elif method == "saliency":
        attr = Saliency(wrapper).attribute(
            embeds, target=rows.target, additional_forward_args=args, abs=kwargs.pop("abs", True), **kwargs
        )
    elif method == "input_x_gradient":
        attr = InputXGradient(wrapper).attribute(embeds, target=rows.target, additional_forward_args=args, **kwargs)
    elif method == "deeplift":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(reuse|Setting forward, backward hooks).*")
            attr, deltas = DeepLift(wrapper).attribute(
                embeds,
                baselines=base,
                target=rows.target,
                additional_forward_args=args,
                return_convergence_delta=True,
                **kwargs,
            )
    else:  # gradient_shap
        n_samples = kwargs.pop("n_samples", 5)
        stdevs = kwargs.pop("stdevs", 0.0)
        # one baseline per row: Captum samples baselines for each input from the whole
        # distribution, so give it, per row, copies of that row's own baseline via a batch loop
        attrs, ds = [], []
        gs = GradientShap(wrapper)
        for i in range(rows.ids.shape[0]):
            a, d = gs.attribute(
                embeds[i : i + 1],
                baselines=base[i : i + 1],
                target=rows.target[i : i + 1],
                additional_forward_args=tuple(t[i : i + 1] for t in args),
                n_samples=n_samples,
                stdevs=stdevs,
                return_convergence_delta=True,
                **kwargs,
            )
            attrs.append(a)
            ds.append(d.reshape(1, -1).mean(1))
        attr, deltas = torch.cat(attrs), torch.cat(ds)
    scores = _reduce(attr.detach(), reduce)
    return scores, (None if deltas is None else deltas.detach().reshape(-1))


def _run_perturbation(
    method: str,
    rows: _Rows,
    baseline_ids: Tensor,
    internal_batch_size: int | None,
    kwargs: dict[str, Any],
) -> Tensor:
    from captum.attr import KernelShap, Lime, Occlusion

    baseline = torch.where(rows.mask, baseline_ids, rows.ids)  # padding is never perturbed
    args = tuple(rows.extras)
    per_eval = internal_batch_size or 64  # perturbations per forward pass (Captum: 1)
    if method in ("occlusion", "leave_one_out"):
        window = 1 if method == "leave_one_out" else int(kwargs.pop("window", 1))
        stride = 1 if method == "leave_one_out" else int(kwargs.pop("stride", 1))
        attr = Occlusion(rows.forward).attribute(
            rows.ids,
            sliding_window_shapes=(window,),
            strides=(stride,),
            baselines=baseline,
            target=rows.target,
            additional_forward_args=args or None,
            perturbations_per_eval=per_eval,
            **kwargs,
        )
        return attr.detach().float()
    from ._linear import WeightedRidge

    n_samples = kwargs.pop("n_samples", 200)
    if method == "lime":
        explainer = Lime(rows.forward, interpretable_model=WeightedRidge(alpha=kwargs.pop("alpha", 1.0)))
    else:
        explainer = KernelShap(rows.forward)
        explainer.interpretable_model = WeightedRidge(alpha=0.0)
    out = []
    s = rows.ids.shape[1]
    for i in range(rows.ids.shape[0]):
        valid = rows.mask[i]
        n_valid = int(valid.sum())
        # one feature per real token; all padding shares one more feature that changes nothing
        fmask = torch.full((1, s), n_valid, dtype=torch.long, device=rows.ids.device)
        fmask[0, valid] = torch.arange(n_valid, device=rows.ids.device)
        a = explainer.attribute(
            rows.ids[i : i + 1],
            baselines=baseline[i : i + 1],
            target=rows.target[i : i + 1],
            additional_forward_args=tuple(t[i : i + 1] for t in args) or None,
            feature_mask=fmask,
            n_samples=n_samples,
            perturbations_per_eval=per_eval,
            **kwargs,
        )
        out.append(a.detach().float())
    return torch.cat(out)


def _solve(
    method: str,
    rows: _Rows,
    model: nn.Module,
    embedding: str | nn.Module | None,
    baseline_id: int | None,
    internal_batch_size: int | None,
    reduce: str | None,
    method_kwargs: dict[str, Any],
) -> tuple[Tensor, Tensor | None, dict[str, Any]]:
    kwargs = dict(method_kwargs)
    params: dict[str, Any] = {"baseline_id": baseline_id, "internal_batch_size": internal_batch_size}
    baseline_ids = None if baseline_id is None else torch.full_like(rows.ids, baseline_id)
    if method in GRADIENT_METHODS:
        name, module = find_embedding(model, embedding)
        reduce = reduce or ("norm" if method == "saliency" else "sum")
        if reduce not in ("sum", "norm"):
            raise ValueError(f"reduce must be 'sum' or 'norm', not {reduce!r}")
        params.update(embedding=name, reduce=reduce)
        if method == "integrated_gradients":
            params.update(n_steps=kwargs.get("n_steps", 50), integration=kwargs.get("integration", "gausslegendre"))
        if method == "gradient_shap":
            params.update(n_samples=kwargs.get("n_samples", 5), stdevs=kwargs.get("stdevs", 0.0))
        seed = kwargs.pop("seed", 0)
        with _seeded(seed) if method == "gradient_shap" else contextlib.nullcontext():
            scores, deltas = _run_gradient(
                method, rows, model, module, baseline_ids, internal_batch_size, reduce, kwargs
            )
        if method == "gradient_shap":
            params["seed"] = seed
    else:
        if baseline_ids is None:
            raise ValueError(
                f"{method} replaces tokens by a baseline id: pass baseline_id= (your pad, unk or "
                "mask token id) or pad_id="
            )
        if method == "occlusion":
            params.update(window=kwargs.get("window", 1), stride=kwargs.get("stride", 1))
        if method in ("lime", "kernel_shap"):
            params["n_samples"] = kwargs.get("n_samples", 200)
        seed = kwargs.pop("seed", 0)
        stochastic = method in ("lime", "kernel_shap")
        with _seeded(seed) if stochastic else contextlib.nullcontext(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(multiple inputs|batch).*")
            scores = _run_perturbation(method, rows, baseline_ids, internal_batch_size, kwargs)
        deltas = None
        if method in ("lime", "kernel_shap"):
            params["seed"] = seed
    scores = torch.where(rows.mask, scores, torch.zeros_like(scores))
    return scores, deltas, params


def _as_target(target: Any, n: int, device: torch.device) -> Tensor | None:
    if target is None:
        return None
    t = torch.as_tensor(target, device=device)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    t = t.long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} entries for a batch of {n}; give one per example or one for all")
    return t


def _validate_target(target: Tensor, n_outputs: int, what: str) -> None:
    bad = (target < 0) | (target >= n_outputs)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{what} index {int(target.reshape(-1)[i])} (row {i}) is out of range for a model with "
            f"{n_outputs} outputs; valid indices are 0..{n_outputs - 1}"
        )


def _split_kwargs(forward_kwargs: Mapping[str, Any] | None, n: int) -> tuple[list[str], list[Tensor], dict[str, Any]]:
    """Per-example tensors (first dim = batch) travel with the rows; the rest is passed as is."""
    names, tensors, static = [], [], {}
    for k, v in (forward_kwargs or {}).items():
        if isinstance(v, Tensor) and v.dim() > 0 and v.shape[0] == n:
            names.append(k)
            tensors.append(v)
        else:
            static[k] = v
    return names, tensors, static


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
    internal_batch_size: int | None = None,
    reduce: str | None = None,
    output: str = "logits",
    forward_fn: Callable[..., Tensor] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    **method_kwargs: Any,
) -> Attribution:
    """Attribute a classifier's output to its input tokens: scores ``[batch, src]``.

    ``model(input_ids, **forward_kwargs)`` (or ``forward_fn(input_ids, **forward_kwargs)``) must
    return logits ``[batch, classes]``. ``target``: the class to explain, one for all or one per
    example; None explains the model's own prediction. ``baseline_id`` (default ``pad_id``) is
    the token that replaces real tokens: the integration start for integrated gradients, the
    reference for DeepLift/GradientSHAP, the occluding token for occlusion, LIME, KernelSHAP.
    ``internal_batch_size`` bounds rows per forward pass (integrated gradients: examples x steps;
    perturbation methods: perturbations per pass). ``output``: explain ``"logits"``, ``"probs"``
    or ``"log_probs"``. ``method_kwargs`` go to Captum (e.g. ``n_steps``, ``n_samples``,
    ``stdevs``, ``window``; ``integration`` is IG's ``method``; ``seed`` for sampling methods).
    """
    method = _canonical(method)
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, not {output!r}")
    input_ids = torch.as_tensor(input_ids)
    mask = padding_mask(input_ids, attention_mask=attention_mask, lengths=lengths, pad_id=pad_id)
    if input_ids.dtype.is_floating_point:
        raise TypeError("input_ids must be integer token ids, got a floating-point tensor")
    input_ids = input_ids.long()
    n = input_ids.shape[0]
    names, tensors, static = _split_kwargs(forward_kwargs, n)
    fn = forward_fn if forward_fn is not None else model

    def forward(ids: Tensor, *extras: Tensor) -> Tensor:
        out = fn(ids, **static, **dict(zip(names, extras, strict=True)))
        return _apply_output(_check_scores(out, ids.shape[0], "the model"), output)

    with torch.no_grad():
        logits = forward(input_ids, *tensors)
    tgt = _as_target(target, n, input_ids.device)
    if tgt is None:
        tgt = logits.argmax(-1)
    _validate_target(tgt, logits.shape[-1], "target")
    rows = _Rows(input_ids, mask, tgt, tuple(tensors), forward, logits)
    if baseline_id is None:
        baseline_id = pad_id
    scores, deltas, params = _solve(
        method, rows, model, embedding, baseline_id, internal_batch_size, reduce, method_kwargs
    )
    params.update(output=output, pad_id=pad_id)
    att = Attribution(scores, mask, method, tgt, deltas, params)
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
    targets: Tensor | None = None,
    embedding: str | nn.Module | None = None,
    src_lengths: Tensor | Sequence[int] | None = None,
    tgt_lengths: Tensor | Sequence[int] | None = None,
    pad_id: int | None = None,
    tgt_pad_id: int | None = None,
    baseline_id: int | None = None,
    internal_batch_size: int | None = None,
    reduce: str | None = None,
    output: str = "logits",
    forward_fn: Callable[..., Tensor] | None = None,
    forward_kwargs: Mapping[str, Any] | None = None,
    **method_kwargs: Any,
) -> Attribution:
    """Attribute each output step of a seq2seq model to the source tokens: ``[batch, tgt, src]``.

    ``model(src_ids, tgt_ids, **forward_kwargs)`` (or ``forward_fn(...)``) must return logits
    ``[batch, tgt, vocab]``, step t scoring the token that follows decoder input ``tgt_ids[:, t]``
    (teacher forcing). ``targets`` ``[batch, tgt]``: the token explained at each step (e.g. the
    gold next tokens); None explains the model's own argmax at each step. To explain the model's
    free-running output, decode first and pass that output as ``tgt_ids``. Padded target steps
    (``tgt_lengths`` or ``tgt_pad_id``) are skipped; their rows are 0 and ``target`` is -1.
    ``embedding`` names the *source* embedding (required when the model has several).
    Other arguments as in :func:`attribute`; every (example, step) is one row for batching.
    """
    method = _canonical(method)
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
    names, tensors, static = _split_kwargs(forward_kwargs, b)
    fn = forward_fn if forward_fn is not None else model

    def full(src: Tensor, tgt: Tensor, *extras: Tensor) -> Tensor:
        out = fn(src, tgt, **static, **dict(zip(names, extras, strict=True)))
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
    targets_given = targets is not None
    if targets is None:
        targets = logits.argmax(-1)
    targets = torch.as_tensor(targets, device=tgt_ids.device)
    if targets.shape != tgt_ids.shape:
        raise ValueError(f"targets must be [batch, tgt] = {tuple(tgt_ids.shape)}, got {tuple(targets.shape)}")
    targets = targets.long()
    bi, ti = tgt_mask.nonzero(as_tuple=True)
    row_target = targets[bi, ti]
    _validate_target(row_target, logits.shape[-1], "target token")

    def forward(ids: Tensor, tgt: Tensor, step: Tensor, *extras: Tensor) -> Tensor:
        out = full(ids, tgt, *extras)
        return out[torch.arange(out.shape[0], device=out.device), step]

    rows = _Rows(
        src_ids[bi], src_mask[bi], row_target, (tgt_ids[bi], ti, *(x[bi] for x in tensors)), forward,
        logits[bi, ti],
    )
    if baseline_id is None:
        baseline_id = pad_id
    row_scores, row_deltas, params = _solve(
        method, rows, model, embedding, baseline_id, internal_batch_size, reduce, method_kwargs
    )
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
    att = Attribution(scores, mask, method, full_target, deltas, params)
    summary = att.delta_summary()
    if summary:
        params.update(summary)
    return att

