"""The gate's registry: threshold rules and settings registered once (type, range, flag, the data a rule
needs), and `Thresholds`, checked when built, from flags, a TOML table or pyproject.toml."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_core import core_schema
from pydantic import JsonValue

from privacy_audit._io import read_toml
from privacy_audit.errors import InputError
from privacy_audit.reports.schema import AuditReport, RuleOutcome

@dataclass(frozen=True)
class Measurement:
    """What a rule measured on one subject (a canary id, or "report"), with the probability that a prompt
    which never saw a canary fails the rule (None where no null model defines one)."""

    subject: str
    value: float
    false_alarm: float | None
    detail: str = ""


@dataclass(frozen=True)
class Setting:
    """A number the gate is configured with: its type and allowed range (a value outside it is an error,
    never a disabled rule)."""

    name: str
    flag: str
    kind: type
    low: float
    high: float
    help: str
    default: float | None = None
    open_range: bool = False

    def check(self, value: Any, where: str | None = None) -> float:
        """`value` as this setting's type, or an InputError naming it."""
        name = where or self.name
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"gate setting {name} must be a finite number, got {value!r}")
        if self.kind is int and value != int(value):
            raise InputError(f"gate setting {name} must be a whole number, got {value!r}")
        inside = self.low < value < self.high if self.open_range else self.low <= value <= self.high
        if not inside:
            raise InputError(f"gate setting {name} = {value!r} is out of range {'(' if self.open_range else '['}"
                             f"{self.low:g}, {self.high:g}{')' if self.open_range else ']'}")
        return int(value) if self.kind is int else float(value)


Measure = Callable[[AuditReport, float, "Thresholds"], list[Measurement]]


@dataclass(frozen=True, kw_only=True)
class Rule(Setting):
    """A threshold rule: `upper` rules fail when the value exceeds the limit, the others when it falls
    below it; `missing` says why a report lacks the rule's data (None when it has it)."""

    measure: Measure
    what: str
    upper: bool = True
    unit: str = ""
    per_canary: bool = False
    missing: Callable[[AuditReport], str | None] | None = None

    def outcomes(self, report: AuditReport, limit: float, thresholds: Thresholds) -> list[RuleOutcome]:
        return [
            outcome(self.name, m, limit, upper=self.upper, what=self.what, unit=self.unit)
            for m in self.measure(report, limit, thresholds)
        ]


RULES: dict[str, Rule] = {}
SETTINGS: dict[str, Setting] = {
    "alpha": Setting(
        "alpha", "--alpha", float, 0, 1, "Family-wise level of the chance rule, which always runs (default 0.01).",
        default=0.01, open_range=True,
    ),
    "fuzzy_distance": Setting(
        "fuzzy_distance", "--fuzzy-distance", float, 0, math.inf,
        "Distance under which a generated unit counts as a fuzzy copy (default 0.1).", default=0.1,
    ),
}


def rule(
    name: str, *, flag: str, kind: type, low: float, high: float, help: str, what: str, upper: bool = True,
    unit: str = "", per_canary: bool = False, missing: Callable[[AuditReport], str | None] | None = None,
) -> Callable[[Measure], Measure]:
    """Register a threshold rule: its config key `name`, CLI `flag`, threshold type and range, and the
    function that measures it on a report. A duplicate name is an error."""

    def decorator(measure: Measure) -> Measure:
        if name in RULES or name in SETTINGS:
            raise ValueError(f"a gate rule or setting named {name!r} is already registered")
        RULES[name] = Rule(name, flag, kind, low, high, help, measure=measure, what=what, upper=upper, unit=unit,
                           per_canary=per_canary, missing=missing)
        return measure

    return decorator


class Thresholds:
    """Limits a report must stay within (one per registered rule; an unset rule does not run), the gate's
    settings, and per-canary `overrides` of the per-canary rules. Values are checked when given."""

    __slots__ = ("limits", "settings", "overrides")

    def __init__(self, *, overrides: Mapping[str, Mapping[str, float]] | None = None, **values: Any) -> None:
        limits: dict[str, float] = {}
        settings = {s.name: s.default for s in SETTINGS.values()}
        for name, value in values.items():
            if value is None:
                continue
            if name in RULES:
                limits[name] = RULES[name].check(value)
            elif name in SETTINGS:
                settings[name] = SETTINGS[name].check(value)
            else:
                raise InputError(
                    f"unknown gate setting {name}; known: {', '.join(sorted([*RULES, *SETTINGS, 'overrides']))}"
                )
        checked: dict[str, dict[str, float]] = {}
        for cid, rules in (overrides or {}).items():
            if not isinstance(rules, Mapping):
                raise InputError(
                    f"override for {cid} must be a table, e.g. [gate.overrides.{cid}] max_exposure_bits = 6"
                )
            bad = sorted(r for r in rules if r not in RULES or not RULES[r].per_canary)
            if bad:
                raise InputError(
                    f"override for {cid} sets {', '.join(bad)}; per-canary rules: {', '.join(per_canary_rules())}"
                )
            checked[str(cid)] = {r: RULES[r].check(v, f"overrides.{cid}.{r}") for r, v in rules.items()}
        object.__setattr__(self, "limits", limits)
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "overrides", checked)

    def __getattr__(self, name: str) -> Any:
        if name in RULES:
            return self.limits.get(name)
        if name in SETTINGS:
            return self.settings[name]
        raise AttributeError(f"Thresholds has no setting {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Thresholds are immutable; use merged()")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Thresholds) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __repr__(self) -> str:
        return f"Thresholds({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"

    def as_dict(self) -> dict[str, JsonValue]:
        """The set limits and every setting, as a config table would hold them."""
        out: dict[str, JsonValue] = {**self.limits, **self.settings}
        if self.overrides:
            out["overrides"] = {k: dict(v) for k, v in self.overrides.items()}
        return out

    def any_rule(self) -> bool:
        """Whether a threshold rule is set (the default chance rule always runs)."""
        return bool(self.limits) or bool(self.overrides)

    def merged(self, **flags: Any) -> Thresholds:
        """These thresholds with the non-None `flags` on top (CLI flags override a file)."""
        return Thresholds(**{**self.limits, **self.settings, **{k: v for k, v in flags.items() if v is not None}},
                          overrides=self.overrides)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        """In a config: a table becomes checked thresholds; dumped back as that table."""
        def parse(value: Any) -> Thresholds:
            if isinstance(value, Thresholds):
                return value
            return thresholds_from_mapping(value, source="config [gate]")

        return core_schema.no_info_plain_validator_function(
            parse, serialization=core_schema.plain_serializer_function_ser_schema(lambda t: t.as_dict())
        )


def per_canary_rules() -> list[str]:
    return sorted(name for name, r in RULES.items() if r.per_canary)


def thresholds_from_mapping(data: Any, *, source: str) -> Thresholds:
    """Thresholds from a TOML table; unknown keys and wrong types are InputErrors naming `source`."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: the gate settings must be a table, e.g. [gate] with max_exposure_bits = 6")
    values = dict(data)
    overrides = values.pop("overrides", {})
    if not isinstance(overrides, Mapping):
        raise InputError(f"{source}: overrides must be tables, e.g. [gate.overrides.canary-00] max_exposure_bits = 6")
    try:
        return Thresholds(overrides=overrides, **{str(k): v for k, v in values.items()})
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None


def _gate_keys(table: Mapping[str, object]) -> list[str]:
    return sorted(k for k in table if k in RULES or k in SETTINGS or k == "overrides")


def load_thresholds(
    config: str | os.PathLike[str] | None = None, *, search_from: str | os.PathLike[str] = "."
) -> Thresholds:
    """Thresholds from `config` (TOML), else from [tool.privacy-audit.gate] of pyproject.toml in `search_from`.

    A file holds its rules in one place: `[tool.privacy-audit.gate]`, a `[gate]` table, or top-level keys;
    rules in two of them are an error naming both, never one set silently dropped. A file named with
    `config` that holds no gate settings at all is an error too.
    """
    if config is not None:
        path = Path(config)
        return _thresholds_in(read_toml(path, what="gate config"), path, explicit=True)
    pyproject = Path(search_from) / "pyproject.toml"
    if pyproject.is_file():
        return _thresholds_in(read_toml(pyproject, what="gate config"), pyproject, explicit=False)
    return Thresholds()


def _thresholds_in(data: dict[str, object], path: Path, *, explicit: bool) -> Thresholds:
    tool = _table(_table(data, "tool", path), "privacy-audit", path)
    stray = _gate_keys(tool)
    if stray:
        raise InputError(
            f"{path}: gate setting {', '.join(stray)} under [tool.privacy-audit]; put it in [tool.privacy-audit.gate]"
        )
    sources: list[tuple[str, Any]] = [
        (f"[{key}]", table)
        for key, table in (("tool.privacy-audit.gate", tool.get("gate")), ("gate", data.get("gate")))
        if table is not None
    ]
    top = _gate_keys(data)
    others = sorted(
        k for k, v in data.items() if k not in top and k not in ("gate", "tool") and not isinstance(v, dict)
    )
    if others and (top or explicit and not sources):
        raise InputError(
            f"{path}: unknown gate setting {', '.join(others)}; known: "
            f"{', '.join(sorted([*RULES, *SETTINGS, 'overrides']))}"
        )
    if top:
        sources.append((f"top-level keys ({', '.join(top)})", {k: data[k] for k in top}))
    if len(sources) > 1:
        raise InputError(f"{path}: gate rules in two places, {sources[0][0]} and {sources[1][0]}; keep them in one")
    if sources:
        return thresholds_from_mapping(sources[0][1], source=f"{path} {sources[0][0]}")
    if explicit:
        raise InputError(f"{path} holds no gate settings; add a [gate] table, e.g. max_exposure_bits = 6")
    return Thresholds()


def _table(data: dict[str, object], key: str, path: Path) -> dict[str, object]:
    """data[key] as a TOML table ({} when absent); any other type is an InputError naming the file."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"{path}: {key} must be a table, got {type(value).__name__}")
    return value




def outcome(rule: str, m: Measurement, limit: float, *, upper: bool, what: str, unit: str = "") -> RuleOutcome:
    """One rule checked on one subject, with a message that reads true whichever way it went."""
    ok = m.value <= limit if upper else m.value >= limit
    if upper:
        relation = f"within the limit of {limit:g}{unit}" if ok else f"above the limit of {limit:g}{unit}"
    else:
        relation = f"at or above the minimum of {limit:g}{unit}" if ok else f"below the minimum of {limit:g}{unit}"
    alarm = (
        "; false-alarm probability: none defined" if m.false_alarm is None
        else f"; false-alarm probability on a prompt that never saw a canary {m.false_alarm:.2g}"
    )
    return RuleOutcome(
        rule=rule, subject=m.subject, value=float(m.value), threshold=float(limit), passed=ok,
        false_alarm=m.false_alarm, message=f"{m.subject}: {what} {m.value:.4g}{unit}, {relation}{m.detail}{alarm}",
    )


