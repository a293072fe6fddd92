"""interp: capture attention from any PyTorch model, store it durably, compare it.

Import-light on purpose: only the capture and extractor registry load here; the store, batch
capture and CLI import on use.
"""

from .capture import (
    Capture,
    ExtractionError,
    ModuleSelectionError,
    Record,
    capture,
    capture_attention,
    hooks_attached,
    select_modules,
)
from .extractors import Extractor, find_extractor, load_plugins, register_extractor
