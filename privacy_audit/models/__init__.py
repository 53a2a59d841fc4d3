"""Language models behind one seam: `LanguageModel`; backends are registered by name.

Importing this package imports no torch: the transformers backends import it when built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from privacy_audit._registry import Component, component, create, names
from privacy_audit.errors import InputError
from privacy_audit.models import mock as _mock  # noqa: F401  (registers "mock")
from privacy_audit.models.base import Completion, LanguageModel, ModelInfo
from privacy_audit.models.context import Context, ContextBackend, ScoredContinuations
from privacy_audit.models.mock import MockModel


def _register_lazy() -> None:
    """Import the torch backends' modules (they only import torch when a model is built)."""
    from privacy_audit.models import embedded as _embedded  # noqa: F401
    from privacy_audit.models import hf as _hf  # noqa: F401


def backend_for(spec: str) -> tuple[Component, dict[str, Any]]:
    """The registered backend a spec names, with the arguments the spec itself fixes (a model's source)."""
    _register_lazy()
    spec = spec.strip()
    if not spec:
        raise InputError("--model is empty; use 'embedded', 'mock', a folder, a .gguf file or hf:<id>")
    if spec in names("backend") and spec != "hf":
        return component("backend", spec), {}
    kind, sep, rest = spec.partition(":")
    if sep and kind == "hf":
        return component("backend", "hf"), {"source": rest}
    if os.path.exists(spec):
        return component("backend", "hf"), {"source": spec}
    raise InputError(
        f"model {spec!r} not found; use 'embedded', 'mock', a local folder, a .gguf file, or hf:<hub id>"
    )


def check_model_options(spec: str, options: Mapping[str, Any]) -> None:
    """Refuse a model spec that names no backend, or options its backend does not take, before any work."""
    backend, _ = backend_for(spec)
    backend.validate(options)


def load_model(spec: str = "embedded", **options: Any) -> LanguageModel:
    """A model from a spec: "embedded", "mock", "hf:<folder|file.gguf|hub-id>", or a path to a folder or .gguf."""
    backend, fixed = backend_for(spec)
    return create("backend", backend.name, **fixed, **options)


__all__ = [
    "Completion", "Context", "ContextBackend", "LanguageModel", "MockModel", "ModelInfo", "ScoredContinuations", "backend_for",
    "check_model_options", "load_model",
]
