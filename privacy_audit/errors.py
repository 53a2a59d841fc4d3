"""Project errors: one base class, a few categories; the CLI maps them to exit code 2 and one line."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


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


def first_problem(exc: ValidationError) -> str:
    """pydantic's first complaint about some input as one line: where (a dotted path) and what is wrong."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
