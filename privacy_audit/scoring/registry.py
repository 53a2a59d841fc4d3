"""The registries of per-canary figures and summary tests (`figures` defines them, `measures` the built-ins, which the
scoring package registers when it is first imported): a row of a report is validated against them."""

from __future__ import annotations

from typing import Protocol

Value = float | int | bool


class Registered(Protocol):
    """What validating a report's row needs of a registered figure."""

    name: str

    def validate(self, value: object) -> Value | None: ...


CANARY_FIGURES: dict[str, Registered] = {}
SUMMARY_TESTS: dict[str, object] = {}
