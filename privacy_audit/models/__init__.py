"""Language models behind one seam: `LanguageModel`; backends are registered by name.

Importing this package imports no torch: the transformers backends import it when built.
"""

from __future__ import annotations

import os
from typing import Any

from privacy_audit._registry import create, names
from privacy_audit.errors import InputError
from privacy_audit.models import mock as _mock  # noqa: F401  (registers "mock")
from privacy_audit.models.base import Completion, LanguageModel, ScoredContinuations
from privacy_audit.models.mock import MockModel


def _register_lazy() -> None:
    """Import the torch backends' modules (they only import torch when a model is built)."""
    from privacy_audit.models import embedded as _embedded  # noqa: F401
    from privacy_audit.models import hf as _hf  # noqa: F401


def load_model(spec: str = "embedded", **options: Any) -> LanguageModel:
    """A model from a spec: "embedded", "mock", "hf:<folder|file.gguf|hub-id>", or a path to a folder or .gguf."""
    _register_lazy()
    spec = spec.strip()
    if not spec:
        raise InputError("--model is empty; use 'embedded', 'mock', a folder, a .gguf file or hf:<id>")
    if spec in names("backend") and spec != "hf":
        return create("backend", spec, **options)
    kind, sep, rest = spec.partition(":")
    if sep and kind == "hf":
        return create("backend", "hf", source=rest, **options)
    if os.path.exists(spec):
        return create("backend", "hf", source=spec, **options)
    raise InputError(
        f"model {spec!r} not found; use 'embedded', 'mock', a local folder, a .gguf file, or hf:<hub id>"
    )


__all__ = ["Completion", "LanguageModel", "MockModel", "ScoredContinuations", "load_model"]
