"""A small registry of named components (pipelines, model backends, secret spaces).

Components register with a decorator and are built through `create(kind, name, **options)`;
the CLI's choices come from `names(kind)`, never from a hard-coded list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from privacy_audit.errors import InputError

KINDS = ("pipeline", "backend", "space")
_REGISTRY: dict[str, dict[str, Callable[..., Any]]] = {kind: {} for kind in KINDS}

F = TypeVar("F", bound=Callable[..., Any])


def register(kind: str, name: str) -> Callable[[F], F]:
    """Decorator: register `obj` under (kind, name); a duplicate name is an error."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown registry kind {kind!r}; kinds are {', '.join(KINDS)}")

    def decorator(obj: F) -> F:
        if name in _REGISTRY[kind]:
            raise ValueError(f"a {kind} named {name!r} is already registered")
        _REGISTRY[kind][name] = obj
        return obj

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registration (used by tests and plugins that register temporarily)."""
    _REGISTRY[kind].pop(name, None)


def lookup(kind: str, name: str) -> Callable[..., Any]:
    """The registered object, or an InputError that lists the known names."""
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY[kind])) or "none"
        raise InputError(f"unknown {kind} {name!r}; known: {known}") from None


def names(kind: str) -> list[str]:
    """Registered names of one kind, sorted."""
    return sorted(_REGISTRY[kind])


def create(kind: str, name: str, **options: Any) -> Any:
    """Build a registered component with keyword options."""
    return lookup(kind, name)(**options)
