"""Attribution methods as a registry: each method is one class that holds its defaults once.

``interp.attribute(model, ids, "lime")`` looks the name up here. A method class says

* ``name`` and ``aliases`` (what users may type),
* ``defaults``: every setting it reads, with its default, written once; the settings a call
  used (defaults, then what the caller passed) are both what runs and what is recorded in
  ``Attribution.params`` (and so in the store's unique key), so the two cannot drift apart,
* ``has_deltas``: whether it returns Captum's convergence deltas,
* what it needs: ``needs_embedding`` (gradient methods differentiate the embedding layer's
  output) or ``needs_baseline`` (perturbation methods replace tokens by a baseline id),
* ``stochastic``: it samples, so a ``seed`` setting is added and the call is seeded,
* ``run(problem, settings)``: the computation, returning ``(scores [rows, src], deltas [rows] |
  None)``.

Third parties subclass :class:`GradientMethod` (implement ``attribute_embeddings``),
:class:`PerturbationMethod` (implement ``perturb``) or :class:`AttributionMethod` (implement
``run``) and call :func:`register_method`, or advertise a module that registers them under the
``interp.attribution_methods`` entry-point group (loaded the first time a name is not found).
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ._plugins import load_entry_points
from .errors import InterpError

__all__ = [
    "ENTRY_POINT_GROUP",
    "AttributionMethod",
    "GradientMethod",
    "PerturbationMethod",
    "Problem",
    "UnknownMethodError",
    "available_methods",
    "find_method",
    "load_method_plugins",
    "register_method",
    "unregister_method",
]

ENTRY_POINT_GROUP = "interp.attribution_methods"


class UnknownMethodError(InterpError, ValueError):
    """No attribution method is registered under the name asked for."""


@dataclass
class Problem:
    """What a method explains: ``forward(ids, *extras)[i, target[i]]`` for each row ``i``.

    ``ids`` / ``mask``: ``[rows, src]`` token ids and real-token mask; ``extras``: tensors with one
    entry per row passed after the ids; ``output``: ``forward(ids, *extras)``, already computed.
    ``embedding``: the layer whose output gradient methods differentiate (None for perturbation
    methods); ``baseline_ids``: ``[rows, src]`` replacement ids (None when no baseline was given);
    ``batch_size``: rows (or perturbations) per forward pass, None for the method's own choice.
    """

    ids: Tensor
    mask: Tensor
    target: Tensor
    extras: tuple[Tensor, ...]
    forward: Callable[..., Tensor]
    output: Tensor
    model: nn.Module
    embedding: nn.Module | None = None
    baseline_ids: Tensor | None = None
    batch_size: int | None = None


class AttributionMethod:
    """One attribution method. Subclass, set the class attributes, implement :meth:`run`."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    defaults: ClassVar[Mapping[str, Any]] = {}
    has_deltas: ClassVar[bool] = False
    needs_embedding: ClassVar[bool] = False
    needs_baseline: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    #: settings that may be given which are not in ``defaults`` (passed on to Captum as is)
    accepts_extra_settings: ClassVar[bool] = True

    def settings(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The settings of one call: the defaults, overridden by what the caller gave.

        Unknown settings pass through (to Captum) when ``accepts_extra_settings``; otherwise they
        are refused with the list of known ones. Every value must be JSON-serialisable, because
        the settings are recorded with the scores.
        """
        known = dict(self.defaults)
        if self.stochastic:
            known.setdefault("seed", 0)
        unknown = [k for k in given if k not in known]
        if unknown and not self.accepts_extra_settings:
            raise TypeError(
                f"{self.name} does not take {sorted(unknown)}; its settings are {sorted(known)}"
            )
        out = {**known, **dict(given)}
        for key, value in out.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise TypeError(
                    f"setting {key}={value!r} of {self.name} is not JSON-serialisable; settings are "
                    "recorded with the scores, so pass numbers, strings, booleans, lists or None"
                ) from None
        return out

    def run(self, problem: Problem, settings: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        """Scores ``[rows, src]`` (one per token) and deltas ``[rows]`` (None without deltas)."""
        raise NotImplementedError


# --------------------------------------------------------------------------- gradient methods


class _EmbeddingSwap(nn.Module):
    """Runs the model with the embedding layer's output replaced by a given tensor.

    Captum differentiates with respect to ``embeds``; the hook puts it where the embedding's
    output would be (first call of the layer in a forward whose output shape matches, so a
    decoder sharing the layer keeps its own lookup). This is what ``LayerIntegratedGradients``
    does inside, minus its two extra forward passes to recover the layer's output.
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


@dataclass
class EmbeddingInputs:
    """What a gradient method gets: the model as a function of embeddings, and its inputs."""

    forward: nn.Module  # (embeds, ids, *extras) -> outputs
    embeds: Tensor  # [rows, src, dim], requires grad
    baseline: Tensor  # [rows, src, dim]; equal to embeds on padding, so padding gets nothing
    args: tuple[Tensor, ...]  # (ids, *extras), Captum's additional_forward_args
    target: Tensor  # [rows]
    output: Tensor  # the model's output at the input, [rows, outputs], already computed
    batch_size: int | None


class GradientMethod(AttributionMethod):
    """A method on the embedding layer's output, reduced to one score per token by ``reduce``.

    ``reduce="sum"`` over dimensions keeps completeness for methods that multiply by the input;
    ``"norm"`` (the L2 norm) suits raw gradients, whose sign is not worth summing.
    """

    needs_embedding = True
    defaults: ClassVar[Mapping[str, Any]] = {"reduce": "sum"}

    def attribute_embeddings(self, inputs: EmbeddingInputs, options: dict[str, Any]
                             ) -> tuple[Tensor, Tensor | None]:
        """Attributions ``[rows, src, dim]`` (or ``[rows, src]``) and deltas or None.

        ``options`` are the call's settings without the ones this base class handles
        (``reduce``, ``seed``).
        """
        raise NotImplementedError

    def run(self, problem: Problem, settings: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        if settings["reduce"] not in ("sum", "norm"):
            raise ValueError(f"reduce must be 'sum' or 'norm', not {settings['reduce']!r}")
        assert problem.embedding is not None
        embedding = problem.embedding
        with torch.no_grad():
            embeds = embedding(problem.ids)
            base = torch.zeros_like(embeds) if problem.baseline_ids is None else embedding(problem.baseline_ids)
            base = torch.where(problem.mask[..., None], base, embeds)
        inputs = EmbeddingInputs(
            _EmbeddingSwap(problem.model, embedding, problem.forward),
            embeds.detach().requires_grad_(True), base, (problem.ids, *problem.extras),
            problem.target, problem.output, problem.batch_size,
        )
        options = {k: v for k, v in settings.items() if k not in ("reduce", "seed")}
        attr, deltas = self.attribute_embeddings(inputs, options)
        attr = attr.detach()
        if attr.dim() == 3:
            attr = attr.sum(-1) if settings["reduce"] == "sum" else attr.norm(dim=-1)
        return attr, (None if deltas is None else deltas.detach().reshape(-1))


class IntegratedGradientsMethod(GradientMethod):
    """Integrated gradients (Sundararajan et al. 2017) from the baseline embedding to the input."""

    name = "integrated_gradients"
    aliases = ("ig", "layer_integrated_gradients")
    defaults: ClassVar[Mapping[str, Any]] = {"reduce": "sum", "n_steps": 50, "integration": "gausslegendre"}
    has_deltas = True

    def attribute_embeddings(self, inputs: EmbeddingInputs, options: dict[str, Any]
                             ) -> tuple[Tensor, Tensor | None]:
        from captum.attr import IntegratedGradients

        options = dict(options)
        integration = options.pop("integration")
        attr = IntegratedGradients(inputs.forward).attribute(
            inputs.embeds, baselines=inputs.baseline, target=inputs.target,
            additional_forward_args=inputs.args, method=integration,
            internal_batch_size=inputs.batch_size, **options,
        )
        # Captum's convergence delta, sum(attr) - (F(x) - F(baseline)), with F(x) taken from the
        # forward pass the caller already made: one forward pass (at the baseline), not two
        with torch.no_grad():
            at_base = inputs.forward(inputs.baseline, *inputs.args)
        rows = torch.arange(inputs.target.shape[0], device=inputs.target.device)
        gap = inputs.output[rows, inputs.target].double() - at_base[rows, inputs.target].double()
        deltas = (attr.detach().double().sum(dim=(1, 2)) - gap).to(attr.dtype)
        return attr, deltas


class SaliencyMethod(GradientMethod):
    """The gradient of the output with respect to each token's embedding (Simonyan et al. 2014)."""

    name = "saliency"
    defaults: ClassVar[Mapping[str, Any]] = {"reduce": "norm", "abs": True}

    def attribute_embeddings(self, inputs: EmbeddingInputs, options: dict[str, Any]
                             ) -> tuple[Tensor, Tensor | None]:
        from captum.attr import Saliency

        return Saliency(inputs.forward).attribute(
            inputs.embeds, target=inputs.target, additional_forward_args=inputs.args, **options
        ), None


class InputXGradientMethod(GradientMethod):
    """The input embedding times its gradient."""

    name = "input_x_gradient"
    aliases = ("ixg", "inputxgradient")

    def attribute_embeddings(self, inputs: EmbeddingInputs, options: dict[str, Any]
                             ) -> tuple[Tensor, Tensor | None]:
        from captum.attr import InputXGradient

        return InputXGradient(inputs.forward).attribute(
            inputs.embeds, target=inputs.target, additional_forward_args=inputs.args, **options
        ), None


class DeepLiftMethod(GradientMethod):
    """DeepLift (Shrikumar et al. 2017): differences from the baseline, with Rescale rules."""

    name = "deeplift"
    has_deltas = True

    def attribute_embeddings(self, inputs: EmbeddingInputs, options: dict[str, Any]
                             ) -> tuple[Tensor, Tensor | None]:
        from captum.attr import DeepLift

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(reuse|Setting forward, backward hooks).*")
            return DeepLift(inputs.forward).attribute(
                inputs.embeds, baselines=inputs.baseline, target=inputs.target,
                additional_forward_args=inputs.args, return_convergence_delta=True, **options,
            )


class GradientShapMethod(GradientMethod):
    """GradientSHAP: expected gradients from noisy points between the baseline and the input."""

    name = "gradient_shap"
    aliases = ("gradientshap",)
    defaults: ClassVar[Mapping[str, Any]] = {"reduce": "sum", "n_samples": 5, "stdevs": 0.0}
    has_deltas = True
    stochastic = True

    def attribute_embeddings(self, inputs: EmbeddingInputs, options: dict[str, Any]
                             ) -> tuple[Tensor, Tensor | None]:
        from captum.attr import GradientShap

        # Captum samples each input's baseline from the whole baseline batch; each row must use
        # its own baseline, so rows go one at a time
        explainer = GradientShap(inputs.forward)
        attrs, deltas = [], []
        for i in range(inputs.embeds.shape[0]):
            a, d = explainer.attribute(
                inputs.embeds[i : i + 1], baselines=inputs.baseline[i : i + 1],
                target=inputs.target[i : i + 1],
                additional_forward_args=tuple(t[i : i + 1] for t in inputs.args),
                return_convergence_delta=True, **options,
            )
            attrs.append(a)
            deltas.append(d.reshape(1, -1).mean(1))
        return torch.cat(attrs), torch.cat(deltas)


# --------------------------------------------------------------------------- perturbation methods


class PerturbationMethod(AttributionMethod):
    """A method that replaces real tokens by the baseline id and watches the output move."""

    needs_baseline = True
    default_batch_size: ClassVar[int] = 64  # perturbations per forward pass (Captum's own: 1)

    def perturb(self, problem: Problem, baseline: Tensor, batch_size: int, options: dict[str, Any]) -> Tensor:
        """Scores ``[rows, src]``. ``baseline``: the ids with every real token replaced."""
        raise NotImplementedError

    def run(self, problem: Problem, settings: dict[str, Any]) -> tuple[Tensor, Tensor | None]:
        if problem.baseline_ids is None:
            raise ValueError(
                f"{self.name} replaces tokens by a baseline id: pass baseline_id= (your pad, unk or "
                "mask token id) or pad_id="
            )
        baseline = torch.where(problem.mask, problem.baseline_ids, problem.ids)  # padding stays
        options = {k: v for k, v in settings.items() if k != "seed"}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*(multiple inputs|batch).*")
            scores = self.perturb(problem, baseline, problem.batch_size or self.default_batch_size, options)
        return scores.detach().float(), None


class OcclusionMethod(PerturbationMethod):
    """Occlusion (Zeiler & Fergus 2014): a sliding window of tokens replaced by the baseline."""

    name = "occlusion"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 1, "stride": 1}

    def perturb(self, problem: Problem, baseline: Tensor, batch_size: int, options: dict[str, Any]) -> Tensor:
        from captum.attr import Occlusion

        options = dict(options)
        window, stride = int(options.pop("window")), int(options.pop("stride"))
        return Occlusion(problem.forward).attribute(
            problem.ids, sliding_window_shapes=(window,), strides=(stride,), baselines=baseline,
            target=problem.target, additional_forward_args=problem.extras or None,
            perturbations_per_eval=batch_size, **options,
        )


def total_variation(p: Tensor, q: Tensor) -> Tensor:
    """Total variation distance between rows of two probability tables: ``0.5 * sum |p - q|``."""
    return 0.5 * (p.double() - q.double()).abs().sum(-1)


class LeaveOneOutMethod(PerturbationMethod):
    """Each real token alone replaced by the baseline; one forward pass per token, batched.

    ``measure="difference"``: output(x)[target] - output(x without token i)[target], on the output
    the call explains (logits, probabilities or log-probabilities). ``"tvd"``: the total
    variation distance between the two output distributions (Jain & Wallace's leave-one-out),
    which needs ``output="probs"``.
    """

    name = "leave_one_out"
    aliases = ("loo",)
    defaults: ClassVar[Mapping[str, Any]] = {"measure": "difference"}
    accepts_extra_settings = False
    default_batch_size = 256

    def perturb(self, problem: Problem, baseline: Tensor, batch_size: int, options: dict[str, Any]) -> Tensor:
        measure = options["measure"]
        if measure not in ("difference", "tvd"):
            raise ValueError(f"leave_one_out's measure must be 'difference' or 'tvd', not {measure!r}")
        rows, cols = problem.mask.nonzero(as_tuple=True)
        variants = problem.ids[rows].clone()
        variants[torch.arange(rows.numel(), device=rows.device), cols] = baseline[rows, cols]
        outs = []
        with torch.no_grad():
            for start in range(0, rows.numel(), batch_size):
                r = rows[start:start + batch_size]
                outs.append(problem.forward(variants[start:start + batch_size], *(x[r] for x in problem.extras)))
        full = problem.output[rows]
        changed = torch.cat(outs) if outs else full[:0]
        if measure == "difference":
            picked = torch.arange(rows.numel(), device=rows.device)
            change = full[picked, problem.target[rows]] - changed[picked, problem.target[rows]]
        else:
            change = total_variation(full, changed)
        scores = torch.zeros(problem.ids.shape, dtype=torch.float32, device=problem.ids.device)
        scores[rows, cols] = change.float()
        return scores


class _SurrogateMethod(PerturbationMethod):
    """LIME and KernelSHAP: a weighted linear model fitted to outputs on random token subsets."""

    def explainer(self, problem: Problem, options: dict[str, Any], example: dict[str, int]) -> Any:
        """The Captum explainer; ``example["features"]`` is the current example's real-token count."""
        raise NotImplementedError

    def perturb(self, problem: Problem, baseline: Tensor, batch_size: int, options: dict[str, Any]) -> Tensor:
        options = dict(options)
        example: dict[str, int] = {}
        explainer = self.explainer(problem, options, example)  # takes its own options out
        out = []
        s = problem.ids.shape[1]
        for i in range(problem.ids.shape[0]):
            valid = problem.mask[i]
            n_valid = int(valid.sum())
            example["features"] = n_valid
            # one feature per real token; all padding shares one more feature that changes nothing
            fmask = torch.full((1, s), n_valid, dtype=torch.long, device=problem.ids.device)
            fmask[0, valid] = torch.arange(n_valid, device=problem.ids.device)
            out.append(explainer.attribute(
                problem.ids[i : i + 1], baselines=baseline[i : i + 1], target=problem.target[i : i + 1],
                additional_forward_args=tuple(t[i : i + 1] for t in problem.extras) or None,
                feature_mask=fmask, perturbations_per_eval=batch_size, **options,
            ))
        return torch.cat(out)


def lime_text_kernel(kept: Tensor, n_tokens: int, kernel_width: float = 25.0) -> Tensor:
    """LIME's weight of a token subset, as the ``lime`` package's text explainer computes it.

    ``kept``: ``[samples, features]`` 0/1 (1 = token kept); only the first ``n_tokens`` columns
    are tokens. Distance: the cosine distance between the kept vector and all-ones (the input),
    times 100; weight ``sqrt(exp(-d**2 / kernel_width**2))``. An empty subset is at distance 100.
    The distance is measured on the subset, never on token ids, whose numbers mean nothing.
    """
    z = kept[..., :n_tokens].double()
    count = z.sum(-1)
    cosine = torch.where(count > 0, count / (count.clamp_min(1).sqrt() * max(n_tokens, 1) ** 0.5),
                         torch.zeros_like(count))
    distance = 100 * (1 - cosine)
    return torch.exp(-(distance ** 2) / kernel_width ** 2).sqrt()


class LimeMethod(_SurrogateMethod):
    """LIME (Ribeiro et al. 2016): ridge regression (alpha 1, the ``lime`` package's default) on
    random token subsets, weighted by their closeness to the input (:func:`lime_text_kernel`)."""

    name = "lime"
    defaults: ClassVar[Mapping[str, Any]] = {"n_samples": 200, "alpha": 1.0, "kernel_width": 25.0}
    stochastic = True

    def explainer(self, problem: Problem, options: dict[str, Any], example: dict[str, int]) -> Any:
        from captum.attr import Lime

        from ._linear import WeightedRidge

        width = float(options.pop("kernel_width"))

        def similarity(_original: Any, _perturbed: Any, kept: Tensor, **_: Any) -> Tensor:
            return lime_text_kernel(kept, example["features"], width).to(torch.float32)

        return Lime(problem.forward, interpretable_model=WeightedRidge(alpha=options.pop("alpha")),
                    similarity_func=similarity)


class KernelShapMethod(_SurrogateMethod):
    """KernelSHAP (Lundberg & Lee 2017): weighted least squares under the Shapley kernel."""

    name = "kernel_shap"
    aliases = ("kernelshap",)
    defaults: ClassVar[Mapping[str, Any]] = {"n_samples": 200}
    stochastic = True

    def explainer(self, problem: Problem, options: dict[str, Any], example: dict[str, int]) -> Any:
        from captum.attr import KernelShap

        from ._linear import WeightedRidge

        explainer = KernelShap(problem.forward)
        explainer.interpretable_model = WeightedRidge(alpha=0.0)
        return explainer


# --------------------------------------------------------------------------- the registry

_REGISTRY: dict[str, AttributionMethod] = {}
_ALIASES: dict[str, str] = {}
_lock = threading.Lock()
_plugins_loaded = False


def _key(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


def register_method(method: type[AttributionMethod] | AttributionMethod, *, replace: bool = False
                    ) -> type[AttributionMethod] | AttributionMethod:
    """Register an attribution method (a class or an instance); usable as a class decorator.

    Its ``name`` and ``aliases`` become valid ``method=`` arguments of ``interp.attribute``. A name
    already taken is refused unless ``replace=True``.
    """
    instance = method() if isinstance(method, type) else method
    if not isinstance(instance, AttributionMethod):
        raise TypeError(f"register_method takes an AttributionMethod subclass or instance, not {type(method).__name__}")
    if not instance.name:
        raise ValueError(f"{type(instance).__name__} has no name; set the class attribute name = '...'")
    names = [_key(instance.name), *(_key(a) for a in instance.aliases)]
    with _lock:
        taken = [n for n in names if n in _REGISTRY or n in _ALIASES]
        if taken and not replace:
            raise ValueError(
                f"attribution method name(s) {taken} already registered; pass replace=True to override"
            )
        _REGISTRY[names[0]] = instance
        for alias in names[1:]:
            _ALIASES[alias] = names[0]
    return method


def unregister_method(name: str) -> None:
    """Remove a registered method (by name or alias) and its aliases."""
    with _lock:
        key = _resolve(_key(name))
        if key not in _REGISTRY:
            raise UnknownMethodError(f"no attribution method named {name!r} is registered")
        del _REGISTRY[key]
        for alias in [a for a, target in _ALIASES.items() if target == key]:
            del _ALIASES[alias]


def _resolve(key: str) -> str:
    return _ALIASES.get(key, key)


def load_method_plugins(force: bool = False) -> list[str]:
    """Import the modules advertised under the ``interp.attribution_methods`` entry-point group.

    Runs once per process (``force=True`` reloads). A plugin that fails to load is reported with
    a warning naming it, so one broken plugin does not stop every attribution.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return []
    _plugins_loaded = True
    return load_entry_points(ENTRY_POINT_GROUP, _register_plugin, "attribution-method")


def _register_plugin(obj: Any) -> None:
    """A plugin is a method class or instance (registered here), or a function that registers."""
    if isinstance(obj, type) and issubclass(obj, AttributionMethod) or isinstance(obj, AttributionMethod):
        register_method(obj, replace=True)
    elif callable(obj):
        obj()


def find_method(name: str) -> AttributionMethod:
    """The registered method called ``name`` (or one of its aliases); plugins load on a miss."""
    if not isinstance(name, str):
        raise TypeError(f"method must be a method name (str), not {type(name).__name__}")
    key = _resolve(_key(name))
    if key not in _REGISTRY:
        load_method_plugins()
        key = _resolve(_key(name))
    if key not in _REGISTRY:
        raise UnknownMethodError(
            f"unknown attribution method {name!r}; choose one of {available_methods()} or register "
            "your own with interp.register_method"
        )
    return _REGISTRY[key]


def available_methods() -> list[str]:
    """Names of the registered methods, built-in ones first."""
    return list(_REGISTRY)


BUILTIN_METHODS: tuple[type[AttributionMethod], ...] = (
    IntegratedGradientsMethod, SaliencyMethod, InputXGradientMethod, DeepLiftMethod,
    GradientShapMethod, OcclusionMethod, LeaveOneOutMethod, LimeMethod, KernelShapMethod,
)
for _cls in BUILTIN_METHODS:
    register_method(_cls)
