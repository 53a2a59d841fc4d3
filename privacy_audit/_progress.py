"""Progress of long steps deep in the library (model load, generation), drawn by whoever runs them.

A step asks `tracker(label, unit)` for a callback `(done, total)`; it gets None unless a caller is
`watching`, so library users see nothing and pay nothing, and pipelines report without a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Progress = Callable[[int, int], None]
Watcher = Callable[[str, str], Progress | None]

_WATCHER: ContextVar[Watcher | None] = ContextVar("privacy_audit_progress", default=None)


def tracker(label: str, unit: str) -> Progress | None:
    """A progress callback for one step, or None when nobody watches."""
    watcher = _WATCHER.get()
    return watcher(label, unit) if watcher is not None else None


@contextmanager
def watching(watcher: Watcher | None) -> Iterator[None]:
    """Steps run inside report to `watcher` (a factory of callbacks from a label and a unit)."""
    token = _WATCHER.set(watcher)
    try:
        yield
    finally:
        _WATCHER.reset(token)
