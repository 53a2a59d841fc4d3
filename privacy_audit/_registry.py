"""A small registry of named components (pipelines, model backends, secret spaces) that describe themselves.

A component registers with a decorator that says what it needs (a model, private data), which
options it ignores (performance knobs that change no number) and which files of its options go
into a cache key; its options schema is its factory's keyword parameters, so unknown options and
values of the wrong type are refused before any work. The CLI's choices (--pipeline, the model
backends, the space kinds) are the registry's names.
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
from privacy_audit.errors import InputError

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
    ignores: frozenset[str] = frozenset()
    fixed: frozenset[str] = frozenset()
    files: Callable[[Mapping[str, Any]], list[str]] | None = None
    provides: tuple[str, ...] = ()

    @cached_property
    def schema(self) -> type[BaseModel]:
        """The options schema: the factory's keyword parameters with their types and defaults."""
        hints = typing.get_type_hints(self.factory, include_extras=True)
        fields: dict[str, Any] = {}
        for p in inspect.signature(self.factory).parameters.values():
            if p.name in self.fixed or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
        config = ConfigDict(
            extra="forbid", arbitrary_types_allowed=True, strict=True
        )  # `true` is not a count, "5" not a number
        return create_model(f"{self.name}-options", __config__=config, **fields)

    def options(self) -> list[str]:
        return sorted(self.schema.model_fields)

    def validate(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options the factory takes, checked against its schema (ignored performance knobs dropped)."""
        given = {k: v for k, v in options.items() if k not in self.ignores}
        unknown = sorted(set(given) - set(self.schema.model_fields))
        if unknown:
            raise InputError(
                f"{self.kind} {self.name!r} has no option {', '.join(unknown)}; its options: "
                f"{', '.join(self.options()) or 'none'}"
            )
        try:
            checked = self.schema.model_validate(given)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise InputError(f"{self.kind} {self.name!r} option {where}: {first['msg']}") from None
        return {k: getattr(checked, k) for k in given}

    def cache_files(self, options: Mapping[str, Any]) -> dict[str, str]:
        """sha256 of each file the options name that determines the output (so editing it invalidates a cache)."""
        if self.files is None:
            return {}
        return {
            f: hashlib.sha256(read_bytes(f, what="file")).hexdigest() for f in self.files(options) if Path(f).is_file()
        }


def register(
    kind: str, name: str, *, needs: Collection[str] = (), ignores: Collection[str] = (), fixed: Collection[str] = (),
    files: Callable[[Mapping[str, Any]], list[str]] | None = None, provides: Collection[str] = (),
) -> Callable[[F], F]:
    """Decorator: register a factory under (kind, name); `fixed` names the parameters the caller always
    passes itself (not options); `provides` lists a backend's capabilities. A duplicate name is an error."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")
    if set(needs) - set(NEEDS):
        raise ValueError(f"unknown needs {sorted(set(needs) - set(NEEDS))}; a component may need {', '.join(NEEDS)}")

    def decorator(obj: F) -> F:
        if name in _REGISTRY[kind]:
            raise ValueError(f"a {kind} named {name!r} is already registered")
        _REGISTRY[kind][name] = Component(
            kind, name, obj, frozenset(needs), frozenset(ignores), frozenset(fixed), files, tuple(provides)
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
    return c.factory(**fixed, **c.validate({k: v for k, v in options.items() if k not in c.fixed}))
