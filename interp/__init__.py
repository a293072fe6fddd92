"""interp: capture attention from any PyTorch model, store it durably, compare it.

    import interp
    with interp.capture(model, "encoder.*attn") as cap:   # glob, type or predicate
        model(batch)
    weights = dict(cap)                                   # {module: [batch, (heads,) q, k]}

Import-light on purpose: importing ``interp`` loads only torch and the capture machinery. Every
other public name (the store, batch capture, attribution, comparison, faithfulness, plots, the
explorer) is listed in ``_LAZY`` and loads on first use; ``dir(interp)`` and type checkers see
them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .capture import (
    Capture,
    ExtractionError,
    InvalidWeightsError,
    ModuleSelectionError,
    Record,
    attention_modules,
    capture,
    capture_attention,
    hooks_attached,
    select_modules,
    stack_calls,
)
from .errors import InterpError
from .extractors import (
    OUTPUT_BIAS_WEIGHTS,
    OUTPUT_STATE_WEIGHTS,
    OUTPUT_WEIGHTS,
    Extractor,
    find_extractor,
    is_attention,
    load_plugins,
    register_extractor,
    tuple_item,
    unregister_extractor,
)

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from . import plot as plot  # submodules: not in __all__, so `import *` stays light
    from . import widgets as widgets
    from .aggregation import aggregate, attention_rollout
    from .attribution import Attribution, attribute, attribute_seq2seq, find_embedding
    from .attribution_methods import (
        AttributionMethod,
        GradientMethod,
        PerturbationMethod,
        UnknownMethodError,
        available_methods,
        find_method,
        register_method,
        unregister_method,
    )
    from .attribution_store import save_attribution
    from .batch import CaptureReport, ShapeMismatchError, attribute_dataset, capture_dataset
    from .compare import alignment_error_rate, rationale_metrics, summarize
    from .compare import compare as compare_scores
    from .explorer_data import examples_from_batch
    from .faithfulness import (
        adversarial_attention,
        aopc,
        erasure,
        leave_one_out,
        permutation_test,
        uniform_attention,
        uniform_baseline,
    )
    from .shard import MergeError, Shard, merge_stores
    from .store import CorruptRecordError, Store, StoredRecord, StoreError, fingerprint, open_store
    from .widgets import Explorer, explore

# name -> (module, attribute in it; None for the module itself). Heavy dependencies (SQLite and
# numpy for the store, Captum, pandas and scipy for analysis, matplotlib, seaborn and ipywidgets
# for plots) load only when one of these names is first used.
_LAZY: dict[str, tuple[str, str | None]] = {
    # the store and batch capture
    **{n: ("store", n) for n in ("Store", "StoredRecord", "StoreError", "CorruptRecordError",
                                 "fingerprint", "open_store")},
    **{n: ("batch", n) for n in ("capture_dataset", "attribute_dataset", "CaptureReport", "ShapeMismatchError")},
    # attribution and its method registry
    **{n: ("attribution", n) for n in ("Attribution", "attribute", "attribute_seq2seq", "find_embedding")},
    **{n: ("attribution_methods", n) for n in (
        "AttributionMethod", "GradientMethod", "PerturbationMethod", "UnknownMethodError",
        "available_methods", "find_method", "register_method", "unregister_method")},
    "save_attribution": ("attribution_store", "save_attribution"),
    # comparison (``interp.compare`` is the module; its ``compare`` function is ``compare_scores``)
    "compare_scores": ("compare", "compare"),
    **{n: ("compare", n) for n in ("summarize", "alignment_error_rate", "rationale_metrics")},
    **{n: ("faithfulness", n) for n in (
        "erasure", "aopc", "leave_one_out", "permutation_test", "adversarial_attention",
        "uniform_baseline", "uniform_attention")},
    **{n: ("aggregation", n) for n in ("aggregate", "attention_rollout")},
    **{n: ("shard", n) for n in ("Shard", "MergeError", "merge_stores")},
    # plots and the explorer widget
    **{n: ("widgets", n) for n in ("explore", "Explorer")},
    "examples_from_batch": ("explorer_data", "examples_from_batch"),
    "plot": ("plot", None),
    "widgets": ("widgets", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'interp' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


# every public name, eager and lazy (a test checks this list against _LAZY)
__all__ = [
    "Attribution", "AttributionMethod", "Capture", "CaptureReport", "CorruptRecordError",
    "Explorer", "ExtractionError", "Extractor", "GradientMethod", "InterpError",
    "InvalidWeightsError", "MergeError", "ModuleSelectionError", "OUTPUT_BIAS_WEIGHTS", "OUTPUT_STATE_WEIGHTS",
    "OUTPUT_WEIGHTS", "PerturbationMethod", "Record", "Shard", "ShapeMismatchError", "Store", "StoreError",
    "StoredRecord", "UnknownMethodError", "adversarial_attention", "aggregate",
    "alignment_error_rate", "aopc", "attention_modules", "attention_rollout", "attribute",
    "attribute_dataset", "attribute_seq2seq", "available_methods", "capture", "capture_attention", "capture_dataset",
    "compare_scores", "erasure", "examples_from_batch", "explore", "find_embedding",
    "find_extractor", "find_method", "fingerprint", "hooks_attached", "is_attention",
    "leave_one_out", "load_plugins", "merge_stores", "open_store", "permutation_test", "rationale_metrics",
    "register_extractor", "register_method", "save_attribution", "select_modules", "stack_calls",
    "summarize", "tuple_item", "uniform_attention", "uniform_baseline", "unregister_extractor",
    "unregister_method",
]
