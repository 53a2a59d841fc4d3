"""Language models behind one seam: `LanguageModel`; backends are registered by name.

Importing this package imports no torch: the transformers backends import it when built.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
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
    from privacy_audit.models import ngram as _ngram  # noqa: F401
    from privacy_audit.models import openai as _openai  # noqa: F401


def backend_for(spec: str) -> tuple[Component, dict[str, Any]]:
    """The registered backend a spec names, with the arguments the spec itself fixes (a model's source)."""
    _register_lazy()
    spec = spec.strip()
    if not spec:
        raise InputError("--model is empty; use 'embedded', 'mock', a folder, a .gguf file, hf:<id> or openai:<model>")
    if spec in names("backend") and spec != "hf":
        return component("backend", spec), {}
    kind, sep, rest = spec.partition(":")
    if sep and kind == "hf":
        return component("backend", "hf"), {"source": rest}
    if sep and kind == "openai":
        return component("backend", "openai"), {"model": rest}
    if os.path.exists(spec):
        return component("backend", "hf"), {"source": spec}
    raise InputError(
        f"model {spec!r} not found; use 'embedded', 'mock', a local folder, a .gguf file, hf:<hub id> or openai:<model>"
    )


def check_model_options(spec: str, options: Mapping[str, Any]) -> None:
    """Refuse a model spec that names no backend, or options its backend does not take, before any work."""
    backend, _ = backend_for(spec)
    backend.validate(options)


@dataclass(frozen=True)
class Backend:
    """A registered backend as `privacy-audit models` lists it."""

    name: str
    summary: str
    provides: tuple[str, ...]
    options: tuple[str, ...]


def list_backends() -> list[Backend]:
    """Every registered backend: what it can do, its options with their types and defaults, and its role line."""
    _register_lazy()
    out = []
    for name in names("backend"):
        c = component("backend", name)
        doc = (c.factory.__doc__ or "").strip().splitlines()
        options = tuple(f"{k}: {_type_name(f.annotation)} = {f.default!r}" for k, f in c.schema.model_fields.items())
        out.append(Backend(name, doc[0] if doc else "", c.provides, options))
    return out


def _type_name(annotation: Any) -> str:
    """A type as a user would write its values: int, str | None, 'chat' | 'completions', a list of str."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is not None:
        return f"a list of {_type_name(args[0])}" if args else str(origin)
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def load_model(spec: str = "embedded", **options: Any) -> LanguageModel:
    """A model from a spec: "embedded", "mock", "hf:<folder|file.gguf|hub-id>", or a path to a folder or .gguf."""
    backend, fixed = backend_for(spec)
    return create("backend", backend.name, **fixed, **options)


__all__ = [
    "Completion", "Context", "ContextBackend", "LanguageModel", "MockModel", "ModelInfo", "ScoredContinuations",
    "backend_for", "check_model_options", "list_backends", "load_model",
]
