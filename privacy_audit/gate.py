"""The CI gate: a pure function from a report and thresholds to pass/fail, one reason per failing rule.

Thresholds come from CLI flags, a TOML file (a `[gate]` table or top-level keys), or
`[tool.privacy-audit.gate]` in pyproject.toml; `overrides` give single canaries their own limits.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from privacy_audit.errors import InputError
from privacy_audit.reports.schema import AuditReport, GateOutcome, RuleOutcome

PER_CANARY_RULES = ("max_exposure_bits", "max_exposure_fraction")


@dataclass(frozen=True)
class Thresholds:
    """Limits a report must stay within; None disables a rule."""

    max_exposure_bits: float | None = None
    max_exposure_fraction: float | None = None
    max_greedy_extracted: int | None = None
    min_guesses: int | None = None
    max_rank_zero: int | None = None
    min_mean_rank_p_value: float | None = None
    max_verbatim: int | None = None
    max_verbatim_rate: float | None = None
    max_fuzzy_fraction: float | None = None
    fuzzy_distance: float = 0.1
    max_auc: float | None = None
    overrides: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if not self.overrides:
            out.pop("overrides", None)
        return out

    def any_rule(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name not in ("fuzzy_distance", "overrides")) or bool(
            self.overrides
        )

    def merged(self, **flags: Any) -> Thresholds:
        """These thresholds with the non-None `flags` on top (CLI flags override a file)."""
        return replace(self, **{k: v for k, v in flags.items() if v is not None})


def thresholds_from_mapping(data: dict[str, Any], *, source: str) -> Thresholds:
    """Thresholds from a TOML table; unknown keys and wrong types are InputErrors naming `source`."""
    known = {f.name for f in fields(Thresholds)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{source}: unknown gate setting {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise InputError(f"{source}: overrides must be tables, e.g. [gate.overrides.canary-00] max_exposure_bits = 6")
    for cid, rules in overrides.items():
        bad = sorted(set(rules) - set(PER_CANARY_RULES))
        if bad:
            raise InputError(f"{source}: override for {cid} sets {', '.join(bad)}; per-canary rules: {', '.join(PER_CANARY_RULES)}")
    values = {}
    for key, value in data.items():
        if key == "overrides":
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{source}: gate setting {key} must be a number, got {value!r}")
        values[key] = value
    return Thresholds(**values, overrides={k: dict(v) for k, v in overrides.items()})


def load_thresholds(config: str | os.PathLike[str] | None = None, *, search_from: str | os.PathLike[str] = ".") -> Thresholds:
    """Thresholds from `config` (TOML), else from [tool.privacy-audit.gate] of pyproject.toml in `search_from`."""
    if config is not None:
        path = Path(config)
        data = _read_toml(path)
        if "tool" in data:
            table = data["tool"].get("privacy-audit", {}).get("gate", {})
        else:
            table = data.get("gate", data)
        if not isinstance(table, dict):
            raise InputError(f"{path}: the gate settings must be a table")
        return thresholds_from_mapping(table, source=str(path))
    pyproject = Path(search_from) / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("privacy-audit", {}).get("gate")
        if table is not None:
            return thresholds_from_mapping(table, source=f"{pyproject} [tool.privacy-audit.gate]")
    return Thresholds()


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"gate config {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"gate config {path} is not valid TOML ({exc})") from None


def gate(report: AuditReport, thresholds: Thresholds) -> GateOutcome:
    """Check the report against every enabled rule; references never fail the gate."""
    if not thresholds.any_rule():
        raise InputError("no gate threshold given; pass e.g. --max-exposure BITS, or a [gate] table with --config")
    unknown = sorted(set(thresholds.overrides) - {c.id for c in report.canaries if c.planted})
    if unknown:
        raise InputError(f"gate overrides name canaries not planted in this report: {', '.join(unknown)}")
    results: list[RuleOutcome] = []

    def check(rule: str, subject: str, value: float, limit: float, *, upper: bool, what: str, unit: str = "", detail: str = "") -> None:
        ok = value <= limit if upper else value >= limit
        sign = ">" if upper else "<"
        results.append(RuleOutcome(
            rule=rule, subject=subject, value=float(value), threshold=float(limit), passed=ok,
            message=f"{subject}: {what} {value:.4g}{unit} {sign} {limit:g}{unit}{detail}",
        ))

    for c in report.canaries:
        if not c.planted:
            continue
        own = {**{k: getattr(thresholds, k) for k in PER_CANARY_RULES}, **thresholds.overrides.get(c.id, {})}
        detail = f" (rank {c.rank:,} of {c.rank_pool:,}, p = {c.p_value:.2g})"
        if own["max_exposure_bits"] is not None:
            check("max_exposure_bits", c.id, c.exposure_bits, own["max_exposure_bits"], upper=True, what="exposure", unit=" bits",
                  detail=detail)
        if own["max_exposure_fraction"] is not None:
            frac = c.exposure_bits / math.log2(c.rank_pool) if c.rank_pool > 1 else 0.0
            check("max_exposure_fraction", c.id, frac, own["max_exposure_fraction"], upper=True,
                  what="exposure as a fraction of log2|S|", detail=detail)
        if thresholds.min_guesses is not None and c.guesses is not None:
            check("min_guesses", c.id, c.guesses, thresholds.min_guesses, upper=False, what="guesses to extract the secret")
    s = report.summary
    skipped: list[str] = []
    missing = {
        "max_greedy_extracted": (s.greedy_extracted is None, "the report has no extraction (score without --no-extraction)"),
        "max_rank_zero": (s.protocol_rank_zero_count is None, "the report has no references for the paper protocol"),
        "min_mean_rank_p_value": (s.protocol_mean_rank_p_value is None, "the report has no references for the paper protocol"),
        "max_verbatim_rate": (report.leaks is None, "the pipeline generated no text to compare with private text"),
        "max_fuzzy_fraction": (report.leaks is None, "the pipeline generated no text to compare with private text"),
        "max_auc": (report.reconstruction is None, "the report has no reconstruction (score with --data)"),
    }
    for rule, (absent, why) in missing.items():
        if getattr(thresholds, rule) is not None and absent:
            skipped.append(f"{rule}: {why}")
    if thresholds.max_greedy_extracted is not None and s.greedy_extracted is not None:
        check("max_greedy_extracted", "report", s.greedy_extracted, thresholds.max_greedy_extracted, upper=True,
              what="planted secrets recovered by greedy decoding")
    if thresholds.max_rank_zero is not None and s.protocol_rank_zero_count is not None:
        check("max_rank_zero", "report", s.protocol_rank_zero_count, thresholds.max_rank_zero, upper=True, what="paper-protocol rank-0 count")
    if thresholds.min_mean_rank_p_value is not None and s.protocol_mean_rank_p_value is not None:
        check("min_mean_rank_p_value", "report", s.protocol_mean_rank_p_value, thresholds.min_mean_rank_p_value, upper=False,
              what="paper-protocol mean-rank p-value")
    if thresholds.max_verbatim is not None:
        check("max_verbatim", "report", s.planted_in_prompt, thresholds.max_verbatim, upper=True,
              what="planted secrets verbatim in the teaching prompt")
    if report.leaks is not None:
        if thresholds.max_verbatim_rate is not None:
            check("max_verbatim_rate", "report", report.leaks.verbatim_rate, thresholds.max_verbatim_rate, upper=True,
                  what="generated units copied verbatim (rate)")
        if thresholds.max_fuzzy_fraction is not None:
            near = sum(r.distance < thresholds.fuzzy_distance for r in report.leaks.rows) / report.leaks.units
            check("max_fuzzy_fraction", "report", near, thresholds.max_fuzzy_fraction, upper=True,
                  what=f"fraction of generated units within distance {thresholds.fuzzy_distance:g} of private text")
    if thresholds.max_auc is not None and report.reconstruction is not None:
        check("max_auc", "report", report.reconstruction.auc, thresholds.max_auc, upper=True, what="reconstruction AUC")
    failures = tuple(r.message for r in results if not r.passed)
    return GateOutcome(
        passed=not failures, failures=failures, thresholds=thresholds.as_dict(), rules=tuple(results), skipped=tuple(skipped)
    )
