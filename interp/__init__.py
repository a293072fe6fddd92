"""interp: capture attention from any PyTorch model, store it durably, compare it.

    import interp
    with interp.capture(model, "encoder.*attn") as cap:   # glob, type or predicate
        model(batch)
    weights = cap.as_dict()                               # {module: [batch, (heads,) q, k]}

Import-light on purpose: importing ``interp`` loads only torch and the capture machinery; the
store (SQLite, numpy), batch capture (tqdm) and CLI load on first use.
"""

from __future__ import annotations

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

if TYPE_CHECKING:
    from .batch import CaptureReport, ShapeMismatchError, capture_dataset
    from .store import CorruptRecordError, Store, StoredRecord, StoreError, fingerprint

_LAZY = {
    "Store": "store", "StoredRecord": "store", "StoreError": "store",
    "CorruptRecordError": "store", "fingerprint": "store", "open_store": "store",
    "capture_dataset": "batch", "CaptureReport": "batch", "ShapeMismatchError": "batch",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'interp' has no attribute {name!r}")


__all__ = [
    "OUTPUT_BIAS_WEIGHTS",
    "OUTPUT_STATE_WEIGHTS",
    "OUTPUT_WEIGHTS",
    "Capture",
    "CaptureReport",
    "CorruptRecordError",
    "ExtractionError",
    "Extractor",
    "InvalidWeightsError",
    "ModuleSelectionError",
    "Record",
    "ShapeMismatchError",
    "Store",
    "StoreError",
    "StoredRecord",
    "attention_modules",
    "capture",
    "capture_attention",
    "capture_dataset",
    "find_extractor",
    "fingerprint",
    "hooks_attached",
    "is_attention",
    "load_plugins",
    "open_store",
    "register_extractor",
    "select_modules",
    "stack_calls",
    "tuple_item",
    "unregister_extractor",
]

# ---- attribution, comparison, faithfulness (interp.attribution / compare / faithfulness) ----
# Lazy like the store: Captum, pandas and scipy load on first use. ``interp.attribute`` is the
# function (its module is ``interp.attribution``); ``interp.compare`` is the module, whose
# ``compare`` function is exported here as ``compare_scores``.
_LAZY.update({
    "Attribution": "attribution", "attribute": "attribution", "attribute_seq2seq": "attribution",
    "find_embedding": "attribution", "save_attribution": "attribution_store",
    "compare_scores": "compare", "summarize": "compare",
    "alignment_error_rate": "compare", "rationale_metrics": "compare",
    "erasure": "faithfulness", "aopc": "faithfulness", "leave_one_out": "faithfulness",
    "permutation_test": "faithfulness", "adversarial_attention": "faithfulness",
    "uniform_baseline": "faithfulness", "uniform_attention": "faithfulness",
})
__all__ += [
    "Attribution", "adversarial_attention", "alignment_error_rate", "aopc", "attribute",
    "attribute_seq2seq", "compare_scores", "erasure", "find_embedding", "leave_one_out",
    "permutation_test", "rationale_metrics", "save_attribution", "summarize",
    "uniform_attention", "uniform_baseline",
]

# ---- static plots and the explorer widget (interp.plot / interp.widgets) ----
# Lazy: matplotlib, seaborn and ipywidgets load on first use. ``interp.explore(examples)`` is the
# one-line explorer for a lesson; ``interp.plot`` and ``interp.widgets`` load as attributes too.
_LAZY.update({"explore": "widgets", "Explorer": "widgets", "examples_from_batch": "explorer_data"})
_SUBMODULES = ("plot", "widgets")
_getattr_without_submodules = __getattr__


def __getattr__(name: str) -> Any:  # noqa: F811
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    return _getattr_without_submodules(name)


__all__ += ["Explorer", "examples_from_batch", "explore"]
