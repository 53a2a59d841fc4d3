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

from privacy_audit._registry import Configured, component, names
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models import mock as _mock  # noqa: F401  (registers "mock")
from privacy_audit.models.base import CachingScorer, Completion, Generator, LanguageModel, ModelInfo
from privacy_audit.models.context import (
    Context, ContextBackend, Distributions, Greedy, NextTokens, ScoredContinuations, Vocabulary,
)
from privacy_audit.models.mock import MockModel
from privacy_audit.models.served_context import ServedScorer


def _register_lazy() -> None:
    """Import the torch backends' modules (they only import torch when a model is built)."""
    from privacy_audit.models import embedded as _embedded  # noqa: F401
    from privacy_audit.models import hf as _hf  # noqa: F401
    from privacy_audit.models import ngram as _ngram  # noqa: F401
    from privacy_audit.models import openai as _openai  # noqa: F401


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user named it (`embedded`, `mock`, a folder, a .gguf file, hf:<id>, openai:<model>) with its
    backend's options, validated once: the object that travels from the command line or a config to the backend's
    factory (`load`), and what the teaching cache and reports record of it (`spec`, `options.given`)."""

    spec: str
    options: Configured
    fixed: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, spec: str, options: Mapping[str, object] | None = None) -> ModelSpec:
        """Resolve the spec to its backend and check the options against the backend's schema (InputError if not)."""
        _register_lazy()
        spec = spec.strip()
        if not spec:
            raise InputError("--model is empty; use 'embedded', 'mock', a folder, a .gguf file, hf:<id> or "
                             "openai:<model>")
        kind, sep, rest = spec.partition(":")
        if spec in names("backend") and spec != "hf":
            backend, fixed = component("backend", spec), ()
        elif sep and kind in ("hf", "openai"):
            backend, fixed = component("backend", kind), (("source" if kind == "hf" else "model", rest),)
        elif os.path.exists(spec):
            backend, fixed = component("backend", "hf"), (("source", spec),)
        else:
            raise InputError(f"model {spec!r} not found; use 'embedded', 'mock', a local folder, a .gguf file, "
                             "hf:<hub id> or openai:<model>")
        return cls(spec, backend.configure(options or {}), fixed)

    def load(self) -> LanguageModel:
        """Build the model (its options were checked when the spec was parsed)."""
        model = self.options.build(**dict(self.fixed))
        if not isinstance(model, LanguageModel):
            raise ModelError(f"backend {self.options.name!r} built {type(model).__name__}, not a LanguageModel")
        return model


@dataclass(frozen=True)
class Backend:
    """A registered backend as `privacy-audit models` lists it."""

    name: str
    summary: str
    provides: tuple[str, ...]
    options: tuple[str, ...]


def capabilities_of(model: type) -> tuple[str, ...]:
    """What a backend class can do, read from the types it implements (and those of the context it reads)."""
    out = ["generate"] if issubclass(model, Generator) else []
    if issubclass(model, ServedScorer):
        out.append("score (where a probe shows aligned prompt log-probabilities)")
        out.append("next_token, greedy (where the server answers next-token requests that agree with its echo)")
    elif issubclass(model, CachingScorer):
        read = typing.get_type_hints(model._open_context).get("return", object)
        contexts = typing.get_args(read) or (read,)  # one context type, or one per configuration
        out.append("score")
        kinds = (("next_token", NextTokens), ("greedy", Greedy), ("vocabulary", Vocabulary),
                 ("distributions", Distributions))
        for name, kind in kinds:
            having = [c for c in contexts if issubclass(c, kind)]
            if having:
                out.append(name if len(having) == len(contexts) else
                           f"{name} ({' or '.join(c.only_when for c in having)})")
    return tuple(out)


def list_backends() -> list[Backend]:
    """Every registered backend: what it can do, its options with their types and defaults, and its role line."""
    _register_lazy()
    out = []
    for name in names("backend"):
        c = component("backend", name)
        doc = (c.factory.__doc__ or "").strip().splitlines()
        options = tuple(f"{k}: {_type_name(f.annotation)} = {f.default!r}" for k, f in c.schema.model_fields.items())
        made = typing.get_type_hints(c.factory).get("return", object)
        out.append(Backend(name, doc[0] if doc else "", capabilities_of(made), options))
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


def load_model(spec: str | ModelSpec = "embedded", **options: object) -> LanguageModel:
    """A model from a spec: "embedded", "mock", "hf:<folder|file.gguf|hub-id>", openai:<model>, or a path to a folder
    or .gguf; with a `ModelSpec`, the options it was parsed with."""
    return (spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec, options)).load()


__all__ = [
    "Completion", "Context", "ContextBackend", "LanguageModel", "MockModel", "ModelInfo", "ModelSpec",
    "ScoredContinuations", "list_backends", "load_model",
]
