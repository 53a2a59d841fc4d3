"""Project errors: one base class, a few categories; the CLI maps them to exit code 2 and one line."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError


class PrivacyAuditError(Exception):
    """Base of every error privacy-audit raises on purpose."""


class InputError(PrivacyAuditError, ValueError):
    """Bad user input: a file, a field, an option or a template that cannot be used as given."""


class ModelError(PrivacyAuditError):
    """A language model is missing, corrupt, or returned something of the wrong shape."""


class PipelineError(PrivacyAuditError):
    """A teaching pipeline failed or produced no teaching prompt."""


class ReportError(InputError):
    """A report file that cannot be read: not JSON, truncated, or of an unknown schema version."""


class Terminated(BaseException):
    """This process was told to end (SIGTERM, SIGHUP) while it held something that must end with it; the CLI
    exits with 128 + the signal number, after every `finally` has run (staged outputs removed, teachers ended)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def first_problem(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """pydantic's first complaint about some input as one line: where (a dotted path) and what is wrong; a key or
    table `model` does not know is named as such, with the closest known name where one is close."""
    first = exc.errors()[0]
    loc = first["loc"]
    where = ".".join(str(part) for part in loc)
    if first["type"] == "extra_forbidden" and loc:
        what = "table" if isinstance(first.get("input"), dict) else "key"
        known = _fields_at(model, loc[:-1]) if model is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean [{close[0]}]?" if close and what == "table" else (
            f"; did you mean {close[0]!r}?" if close else (f"; known: {', '.join(known)}" if known else ""))
        return f"{where}: unknown {what}{hint}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _fields_at(model: type[BaseModel], path: Sequence[object]) -> list[str]:
    """The field names (aliases where set) of the model found at `path` inside `model` (list indices skipped)."""
    from pydantic import BaseModel

    current: type[BaseModel] | None = model
    for part in path:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = next((t for t in _types(field.annotation) if isinstance(t, type) and issubclass(t, BaseModel)), None)
    if current is None:
        return []
    return [f.alias or name for name, f in current.model_fields.items() if not f.exclude]


def _types(annotation: object) -> list[object]:
    """An annotation and every type inside it (X | None, list[X], Annotated[X, ...])."""
    out, todo = [], [annotation]
    while todo:
        t = todo.pop()
        out.append(t)
        todo += list(typing.get_args(t))
    return out
