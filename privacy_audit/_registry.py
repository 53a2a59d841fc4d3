"""A small registry of named components (pipelines, model backends, secret spaces) that describe themselves.

A component registers with a decorator that says what it needs (a model, private data) and which files
of its options go into a cache key; its options schema is its factory's keyword parameters (with their
ranges), so unknown options, values of the wrong type and values out of range (infinities included) are
refused before any work, once: `configure` returns the checked options that travel to the factory. The
CLI's choices (--pipeline, the model backends, the space kinds) are the registry's names.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from privacy_audit._io import read_bytes
from privacy_audit.errors import InputError, first_problem

KINDS = ("pipeline", "backend", "space")
NEEDS = ("model", "data")
_REGISTRY: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Component:
    """A registered factory and what it says about itself."""

    kind: str
    name: str
    factory: Callable[..., Any]
    needs: frozenset[str] = frozenset()
    fixed: frozenset[str] = frozenset()
    files: Callable[[Mapping[str, object]], list[str]] | None = None

    @cached_property
    def schema(self) -> type[BaseModel]:
        """The options schema: the factory's keyword parameters with their types and defaults."""
        hints = typing.get_type_hints(self.factory, include_extras=True)
        fields: dict[str, tuple[object, object]] = {}
        for p in inspect.signature(self.factory).parameters.values():
            if p.name in self.fixed or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
        # `true` is not a count, "5" not a number, and no option is infinite
        config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, strict=True, allow_inf_nan=False)
        return create_model(f"{self.name}-options", __config__=config, **fields)

    def options(self) -> list[str]:
        return sorted(self.schema.model_fields)

    def configure(self, options: Mapping[str, object]) -> Configured:
        """The options checked once against the factory's schema (ignored performance knobs dropped): the typed
        object that travels from a command line or a config to the factory."""
        given = dict(options)
        unknown = sorted(set(given) - set(self.schema.model_fields))
        if unknown:
            raise InputError(
                f"{self.kind} {self.name!r} has no option {', '.join(unknown)}; its options: "
                f"{', '.join(self.options()) or 'none'}"
            )
        try:
            return Configured(self, self.schema.model_validate(given))
        except ValidationError as exc:
            raise InputError(f"{self.kind} {self.name!r} option {first_problem(exc)}") from None

    def cache_files(self, options: Mapping[str, object]) -> dict[str, str]:
        """sha256 of each file the options name that determines the output (so editing it invalidates a cache)."""
        if self.files is None:
            return {}
        return {
            f: hashlib.sha256(read_bytes(f, what="file")).hexdigest() for f in self.files(options) if Path(f).is_file()
        }


@dataclass(frozen=True)
class Configured:
    """A registered component with its options validated once: `given` is what was set (for records and cache
    keys), `build` calls the factory with every checked value and what the caller fixes (a model's source)."""

    component: Component
    options: BaseModel

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def given(self) -> dict[str, object]:
        """The options that were set, as given (JSON-compatible where they came from JSON or TOML)."""
        return {k: getattr(self.options, k) for k in self.options.model_fields_set}

    def build(self, **fixed: object) -> Any:
        values = {k: getattr(self.options, k) for k in type(self.options).model_fields}
        return self.component.factory(**fixed, **values)


def register(
    kind: str, name: str, *, needs: Collection[str] = (), fixed: Collection[str] = (),
    files: Callable[[Mapping[str, object]], list[str]] | None = None,
) -> Callable[[F], F]:
    """Decorator: register a factory under (kind, name); `fixed` names the parameters the caller always
    passes itself (not options). A duplicate name is an error."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")
    if set(needs) - set(NEEDS):
        raise ValueError(f"unknown needs {sorted(set(needs) - set(NEEDS))}; a component may need {', '.join(NEEDS)}")

    def decorator(obj: F) -> F:
        if name in _REGISTRY[kind]:
            raise ValueError(f"a {kind} named {name!r} is already registered")
        _REGISTRY[kind][name] = Component(
            kind, name, obj, frozenset(needs), frozenset(fixed), files
        )
        return obj

    return decorator


def component(kind: str, name: str) -> Component:
    """The registered component, or an InputError that lists the known names."""
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY[kind])) or "none"
        raise InputError(f"unknown {kind} {name!r}; known: {known}") from None


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The registered factory."""
    return component(kind, name).factory


def names(kind: str) -> list[str]:
    """Registered names of one kind, sorted."""
    return sorted(_REGISTRY[kind])


def create(kind: str, name: str, **options: Any) -> Any:
    """Build a registered component with its options checked against its schema."""
    c = component(kind, name)
    fixed = {k: v for k, v in options.items() if k in c.fixed}
    return c.configure({k: v for k, v in options.items() if k not in c.fixed}).build(**fixed)
