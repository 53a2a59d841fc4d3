"""Per-canary figures and summary tests, each one registered object that computes itself, checks a stored report by
running that same computation on the report's own rows, and says how it renders.

A per-canary figure (`canary_figure`) is a value on every canary's row (None where it was not measured): its type
and range, the function that computes it from the rows and what the run knows, whether that needs the model
(then a stored value is checked for its type and where it may be set) or the prompt's text (then it is recomputed
where a report stores the prompt and secrets), and its column in the canary tables. A summary test (`summary_test`)
is a p-value of the planted canaries against chance: the function that computes it (None where the design does
not support it), whether the default gate's chance rule counts it, and its row in the summary table. The report's
JSON, its check when read, the Markdown and HTML tables and the chance rule's family all follow from the
registries, so a new figure is one decorated function and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any

import numpy as np
from pydantic import Field, TypeAdapter, ValidationError

from privacy_audit.canaries import CanarySet
from privacy_audit.canaries.canary import PLACEHOLDER, fill_template
from privacy_audit.canaries.spaces import SecretSpace, parse_space
from privacy_audit.errors import InputError, ReportError
from privacy_audit.models.context import Context
from privacy_audit.scoring.options import ScoringOptions
from privacy_audit.scoring.registry import CANARY_FIGURES, SUMMARY_TESTS, Value
from privacy_audit.scoring.types import CanaryScore, PValueRecord, Summary
from privacy_audit.stats.fit import SkewnormFit
from privacy_audit.stats.permutation import PValue
# Figures recomputed from a stored report agree with the stored ones to rounding (float64, the same code).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Design:
    """How the canaries were drawn and scored, as a report records it: enough to recompute each derived figure.
    `prompt` is the teaching prompt (always while scoring; in a stored report only with --include-secrets)."""

    mode: str
    space: str
    template: str
    derived: Mapping[str, tuple[str, ...]]
    canary_seed: int
    prompt: str | None = None

    @cached_property
    def secret_space(self) -> SecretSpace | None:
        """The space, or None where a stored report cannot say what it held: a word list read from a file (which may
        have changed since) or a spec this version cannot read."""
        if "@" in self.space:
            return None
        try:
            return parse_space(self.space)
        except InputError:
            return None

    def text(self, secret: str) -> str | None:
        """The candidate text of `secret`, or None where the space or the template's fields cannot be read."""
        space = self.secret_space
        if space is None or secret not in space:
            return None
        slots = set(space.slots) | set(self.derived)
        if any(name not in slots for name in PLACEHOLDER.findall(self.template)):
            return None
        return fill_template(self.template, space.values(secret), self.derived)


@dataclass(frozen=True)
class Measuring:
    """A scoring in progress, for the figures measured with the model: the context it read, the canary set, the
    options."""

    context: Context
    canary_set: CanarySet
    options: ScoringOptions


@dataclass(frozen=True)
class Evidence:
    """What figures are computed from: the canaries' rows, the design, the skew-normal fit of the references, the
    number of the space's secrets the prompt holds, and while scoring, the scoring in progress (`run`: the model's
    context); `computed` holds the figures computed so far, in registration order (a stored report's are its own)."""

    rows: tuple[CanaryScore, ...]
    design: Design
    fit: SkewnormFit | None = None
    secrets_in_prompt: int | None = None
    run: Measuring | None = None
    computed: Mapping[CanaryFigure, tuple[Value | None, ...]] = field(default_factory=dict)

    def values(self, figure: CanaryFigure) -> tuple[Value | None, ...]:
        """A figure's value on each row: as computed so far, else as the rows store it."""
        return self.computed[figure] if figure in self.computed else tuple(figure.of(r) for r in self.rows)

    @property
    def planted(self) -> np.ndarray:
        return np.array([r.planted for r in self.rows], dtype=bool)

    def texts(self) -> list[str] | None:
        """Every candidate's text: the canary set's while scoring; from a report only when it stores every secret."""
        if self.run is not None:
            return [c.text for c in self.run.canary_set.canaries]
        texts = [None if r.secret is None else self.design.text(r.secret) for r in self.rows]
        return None if any(t is None for t in texts) else [t for t in texts if t is not None]


@dataclass(frozen=True, eq=False)
class CanaryFigure:
    """A registered per-canary figure: see the module docstring. `render` formats a row's value for the tables."""

    name: str
    label: str
    kind: type
    compute: Callable[[Evidence], Sequence[Value | None]]
    low: float = -math.inf
    high: float = math.inf
    measured: bool = False
    needs_prompt: bool = False
    planted_only: bool = False
    column: bool = True
    render: Callable[[CanaryScore], str] | None = None

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        bounds = {"ge": self.low} if math.isfinite(self.low) else {}
        bounds |= {"le": self.high} if math.isfinite(self.high) else {}
        return TypeAdapter(Annotated[self.kind | None, Field(**bounds)], config={"allow_inf_nan": False})

    def validate(self, value: object) -> Value | None:
        """The value as this figure's type, or a ValueError: strictly typed (true is not a count), finite, in range."""
        try:
            return self._adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            raise ValueError(f"{self.name}: {exc.errors()[0]['msg']}, got {value!r}") from None

    def json_schema(self) -> dict[str, object]:
        """The JSON Schema of this figure's values, with its label as title and the computing function's docstring."""
        schema = self._adapter.json_schema()
        return {**schema, "title": self.label, "description": " ".join((self.compute.__doc__ or "").split())}

    def of(self, row: CanaryScore) -> Value | None:
        """This figure's value on a row (None where it was not measured)."""
        return row.figure(self.name)

    def cell(self, row: CanaryScore) -> str:
        """The row's value as a table shows it."""
        if self.render is not None:
            return self.render(row)
        value = self.of(row)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


@dataclass(frozen=True, eq=False)
class SummaryTest:
    """A registered test of the planted canaries against chance: see the module docstring. `render` gives its
    summary row's value from the rows, the summary and its p-value."""

    name: str
    label: str
    compute: Callable[[Evidence, np.random.Generator], PValue | None]
    render: Callable[[Sequence[CanaryScore], Summary, PValueRecord], str]
    chance: bool = True

    def of(self, summary: Summary) -> PValueRecord | None:
        """The test's p-value in a summary (None where the design does not support it)."""
        return summary.p_values.get(self.name)




def canary_figure(
    name: str, *, label: str, kind: type, low: float = -math.inf, high: float = math.inf, measured: bool = False,
    needs_prompt: bool = False, planted_only: bool = False, column: bool = True,
    render: Callable[[CanaryScore], str] | None = None,
) -> Callable[[Callable[[Evidence], Sequence[Value | None]]], CanaryFigure]:
    """Register a per-canary figure computed by the decorated function (one value per row, in row order)."""

    def decorator(compute: Callable[[Evidence], Sequence[Value | None]]) -> CanaryFigure:
        _unused(name, CANARY_FIGURES)
        figure = CanaryFigure(name, label, kind, compute, low, high, measured, needs_prompt, planted_only, column,
                              render)
        CANARY_FIGURES[name] = figure
        return figure

    return decorator


def summary_test(
    name: str, *, label: str, render: Callable[[Sequence[CanaryScore], Summary, PValueRecord], str],
    chance: bool = True,
) -> Callable[[Callable[[Evidence, np.random.Generator], PValue | None]], SummaryTest]:
    """Register a summary test computed by the decorated function (None where the design does not support it)."""

    def decorator(compute: Callable[[Evidence, np.random.Generator], PValue | None]) -> SummaryTest:
        _unused(name, SUMMARY_TESTS)
        test = SummaryTest(name, label, compute, render, chance)
        SUMMARY_TESTS[name] = test
        return test

    return decorator


def unregister(registered: CanaryFigure | SummaryTest) -> None:
    """Remove a registered figure or test (a plugin's, or a test's)."""
    if isinstance(registered, CanaryFigure) and CANARY_FIGURES.get(registered.name) is registered:
        del CANARY_FIGURES[registered.name]
    elif isinstance(registered, SummaryTest) and SUMMARY_TESTS.get(registered.name) is registered:
        del SUMMARY_TESTS[registered.name]


def _unused(name: str, registry: Mapping[str, object]) -> None:
    if name in registry:
        raise ValueError(f"{name!r} is already registered")


def canary_figures() -> dict[str, CanaryFigure]:
    """Every registered per-canary figure, in registration order."""
    return {name: f for name, f in CANARY_FIGURES.items() if isinstance(f, CanaryFigure)}


def summary_tests() -> dict[str, SummaryTest]:
    """Every registered summary test, in registration order."""
    return {name: t for name, t in SUMMARY_TESTS.items() if isinstance(t, SummaryTest)}


def compute_figures(evidence: Evidence) -> dict[CanaryFigure, tuple[Value | None, ...]]:
    """Every registered figure on every row, in registration order (each may read the ones before it)."""
    computed: dict[CanaryFigure, tuple[Value | None, ...]] = {}
    for figure in canary_figures().values():
        current = Evidence(evidence.rows, evidence.design, evidence.fit, evidence.secrets_in_prompt, evidence.run,
                           computed)
        values = tuple(figure.compute(current))
        if len(values) != len(evidence.rows):
            raise ValueError(f"figure {figure.name} gave {len(values)} values for {len(evidence.rows)} canaries")
        computed[figure] = tuple(figure.validate(v) for v in values)
    return computed


def compute_tests(evidence: Evidence, rng: np.random.Generator) -> dict[str, PValue]:
    """Every registered summary test the design supports, in registration order (Monte Carlo ones draw from `rng`)."""
    found = {name: test.compute(evidence, rng) for name, test in summary_tests().items()}
    return {name: p for name, p in found.items() if p is not None}


def same(a: Value | None, b: Value | None, tolerance: float = TOLERANCE) -> bool:
    """Two stored values agree: both None, equal flags and counts, or floats equal to rounding."""
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a == b
    return abs(a - b) <= tolerance * max(1.0, abs(a), abs(b))


def check_figures(evidence: Evidence) -> None:
    """Each figure of a stored report checked by its own computation on the report's rows (ReportError on the first
    disagreement): a measured one for where it may be set, one that needs the prompt where the report stores it."""
    stored = Evidence(evidence.rows, evidence.design, evidence.fit, evidence.secrets_in_prompt)
    texts_known = stored.texts() is not None and evidence.design.prompt is not None
    for figure in canary_figures().values():
        values = stored.values(figure)
        for row, value in zip(evidence.rows, values):
            if value is not None and figure.planted_only and not row.planted:
                raise ReportError(f"canary {row.id}.{figure.name} is set on a reference; it is a planted canary's")
        if figure.measured or (figure.needs_prompt and not texts_known):
            continue
        for row, value, want in zip(evidence.rows, values, figure.compute(stored)):
            if not same(value, want):
                raise ReportError(f"canary {row.id}.{figure.name} is {value!r} but its rows give {want!r}")


def check_test(test: SummaryTest, record: PValueRecord | None, want: PValue | None) -> None:
    """A stored p-value against the same test computed again on the report's rows: the method the design calls for,
    an exact p-value to rounding, a Monte Carlo one within six standard errors of both estimates."""
    where = f"summary.p_values.{test.name}"
    if (record is None) != (want is None):
        state = "is missing" if record is None else "is given"
        raise ReportError(f"{where} {state}, but this report's rows {'support' if want else 'do not support'} it")
    if record is None or want is None:
        return
    if record.method != want.method:
        raise ReportError(f"{where}.method is {record.method!r} but this design's p-value is {want.method!r}")
    if record.monte_carlo_error is None and want.monte_carlo_error is None:
        ok = same(record.p, want.p, 1e-6) or record.log10_p < -300 and abs(record.log10_p - want.log10_p) < 1e-2
    else:
        spread = math.hypot(record.monte_carlo_error or 0.0, want.monte_carlo_error or 0.0)
        ok = abs(record.p - want.p) <= 6 * spread + 1e-4
    if not ok:
        raise ReportError(f"{where}.p is {record.p!r} but the report's rows give {want.p:.6g}")
    if record.p > 0 and abs(math.log10(record.p) - record.log10_p) > (1e-6 if record.p > 1e-300 else 1e-2):
        raise ReportError(f"{where}.log10_p is {record.log10_p!r} but p is {record.p!r}")
