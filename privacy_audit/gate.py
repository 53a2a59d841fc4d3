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

import numpy as np
from typing import Any

from privacy_audit._io import read_text
from privacy_audit.canaries.spaces import CharsetSpace, parse_space
from privacy_audit.errors import InputError
from privacy_audit.reports.schema import AuditReport, GateOutcome, RuleOutcome

PER_CANARY_RULES = ("max_exposure_bits", "max_exposure_fraction")
DEFAULT_ALPHA = 0.01
SETTINGS = ("fuzzy_distance", "alpha", "overrides")
INF = math.inf
# Each setting's allowed range: (low, high, whole number); a value outside it is an error, never a disabled rule.
RANGES: dict[str, tuple[float, float, bool]] = {
    "max_exposure_bits": (0, INF, False), "max_exposure_fraction": (0, 1, False), "max_greedy_extracted": (0, INF, True),
    "min_guesses": (1, INF, True), "max_rank_zero": (0, INF, True), "min_mean_rank_p_value": (0, 1, False),
    "max_verbatim": (0, INF, True), "max_verbatim_rate": (0, 1, False), "max_fuzzy_fraction": (0, 1, False),
    "fuzzy_distance": (0, INF, False), "max_auc": (0, 1, False), "alpha": (0, 1, False),
}


def _check_range(name: str, value: Any, low: float, high: float, integral: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"gate setting {name} must be a finite number, got {value!r}")
    if integral and value != int(value):
        raise InputError(f"gate setting {name} must be a whole number, got {value!r}")
    if not low <= value <= high or (name == "alpha" and not 0 < value < 1):
        raise InputError(f"gate setting {name} = {value!r} is out of range [{low:g}, {high:g}]")


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
    alpha: float = DEFAULT_ALPHA
    overrides: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, (low, high, integral) in RANGES.items():
            value = getattr(self, name)
            if value is not None:
                _check_range(name, value, low, high, integral)
        for cid, rules in self.overrides.items():
            for name, value in rules.items():
                _check_range(f"overrides.{cid}.{name}", value, *RANGES[name])

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if not self.overrides:
            out.pop("overrides", None)
        return out

    def any_rule(self) -> bool:
        """Whether a threshold rule is set (the default chance rule always runs)."""
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name not in SETTINGS) or bool(self.overrides)

    def merged(self, **flags: Any) -> Thresholds:
        """These thresholds with the non-None `flags` on top (CLI flags override a file)."""
        return replace(self, **{k: v for k, v in flags.items() if v is not None})


def thresholds_from_mapping(data: dict[str, Any], *, source: str) -> Thresholds:
    """Thresholds from a TOML table; unknown keys and wrong types are InputErrors naming `source`."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: the gate settings must be a table, e.g. [gate] with max_exposure_bits = 6")
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
            table = _table(_table(_table(data, "tool", path), "privacy-audit", path), "gate", path)
        else:
            table = data.get("gate", data)
        if not isinstance(table, dict):
            raise InputError(f"{path}: the gate settings must be a table")
        return thresholds_from_mapping(table, source=str(path))
    pyproject = Path(search_from) / "pyproject.toml"
    if pyproject.is_file():
        table = _table(_table(_read_toml(pyproject), "tool", pyproject), "privacy-audit", pyproject).get("gate")
        if table is not None:
            return thresholds_from_mapping(table, source=f"{pyproject} [tool.privacy-audit.gate]")
    return Thresholds()


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    """data[key] as a TOML table ({} when absent); any other type is an InputError naming the file."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"{path}: {key} must be a table, got {type(value).__name__}")
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path, what="gate config")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"gate config {path} is not valid TOML ({exc})") from None


def apply_gate(report: AuditReport, thresholds: Thresholds) -> GateOutcome:
    """Check the report: the chance rule always, then every enabled threshold rule; references never fail it.

    The gate fails closed: a report with no planted canaries is an error, not a pass.
    """
    planted = [c for c in report.canaries if c.planted]
    if not planted:
        raise InputError("the report has no planted canaries, so nothing can be gated (is it truncated or tampered with?)")
    unknown = sorted(set(thresholds.overrides) - {c.id for c in planted})
    if unknown:
        raise InputError(f"gate overrides name canaries not planted in this report: {', '.join(unknown)}")
    results: list[RuleOutcome] = [chance_rule(report, alpha=thresholds.alpha)]
    results += _canary_rules(report, thresholds)
    skipped, report_rules = _report_rules(report, thresholds)
    results += report_rules
    failures = tuple(r.message for r in results if not r.passed)
    return GateOutcome(
        passed=not failures, failures=failures, thresholds=thresholds.as_dict(), rules=tuple(results), skipped=tuple(skipped)
    )


def _outcome(
    rule: str, subject: str, value: float, limit: float, *, upper: bool, what: str, false_alarm: float | None,
    unit: str = "", detail: str = "",
) -> RuleOutcome:
    ok = value <= limit if upper else value >= limit
    sign = ">" if upper else "<"
    alarm = (
        "; false-alarm probability: none defined (no null model for copies of private text)" if false_alarm is None
        else f"; false-alarm probability on a prompt that never saw a canary {false_alarm:.2g}"
    )
    return RuleOutcome(
        rule=rule, subject=subject, value=float(value), threshold=float(limit), passed=ok, false_alarm=false_alarm,
        message=f"{subject}: {what} {value:.4g}{unit} {sign} {limit:g}{unit}{detail}{alarm}",
    )


def chance_rule(report: AuditReport, *, alpha: float) -> RuleOutcome:
    """Fail when the planted canaries are more exposed than chance, at family-wise level `alpha`.

    The family is each planted canary's exact rank test (p = rank / pool) and, with references, the exact
    permutation test of planted against references; Bonferroni over the family needs no independence,
    so a prompt that never saw a canary fails with probability at most `alpha`.
    """
    planted = [c for c in report.canaries if c.planted]
    family = [c.p_value for c in planted]
    shared = report.summary.p_values.get("planted_vs_references")
    if shared is not None:
        family.append(shared.p)
    adjusted = min(1.0, len(family) * min(family))
    return _outcome(
        "chance", "report", adjusted, alpha, upper=False, false_alarm=alpha,
        what=f"Bonferroni-adjusted p-value that the planted canaries are exposed by chance ({len(family)} exact tests)",
    )


def _exposure_false_alarm(report: AuditReport, limit_bits: float) -> float:
    """P(some planted canary's exposure, at the upper end of its interval, exceeds `limit_bits`) for a prompt
    that never saw them.

    Exact mode: the rank itself (`_rank_false_alarm`). Otherwise a canary's upper end is at most the one
    its references give (`Statistics.sampled_rank_lower_by_references_above`), so the rule can only fail
    when some canary has at most k* references at least as likely, where k* is the largest count whose
    sampled lower rank is still below |S| 2^-limit; with shared references that happens exactly when the
    top k*+1 of all planted and references are not all references. Without references the rule fails
    whenever an interval is not certified tight, so no false-alarm bound below 1 holds.
    """
    planted = [c for c in report.canaries if c.planted]
    size = planted[0].space_size
    if report.run.mode == "exact":
        return _rank_false_alarm(report, max(0, math.ceil(size * 2.0 ** (-limit_bits)) - 1))
    table = report.statistics.sampled_rank_lower_by_references_above if report.statistics is not None else None
    if not table:
        return 1.0
    cut = size * 2.0 ** (-limit_bits)
    failing = sum(1 for lower in table if lower < cut)  # the table rises with the count, so these are counts 0..k*
    refs, k = len(table) - 1, len(planted)
    return 1.0 - math.comb(refs, failing) / math.comb(refs + k, failing) if failing <= refs else 1.0


def _rank_false_alarm(report: AuditReport, failing: int) -> float:
    """P(some planted canary ranks within the top `failing` of the space) for a prompt that never saw them
    (exact ranks; ties only lower it): the planted secrets are a uniform draw without replacement from
    the space, so 1 - C(M - R, k) / C(M, k) with R the ranks that fail."""
    planted = [c for c in report.canaries if c.planted]
    k, pool = len(planted), planted[0].space_size
    return 1.0 - math.comb(pool - failing, k) / math.comb(pool, k) if failing < pool else 1.0


def _greedy_false_alarm(report: AuditReport, allowed: int) -> float:
    """P(more than `allowed` planted secrets come out of greedy decoding) for a prompt that never saw them:
    the decoded text does not depend on the secrets, so at most one distinct secret can match it, each
    of the k with probability 1/|S|."""
    planted = [c for c in report.canaries if c.planted]
    return min(1.0, len(planted) / planted[0].space_size) if allowed == 0 else 0.0


def _verbatim_false_alarm(report: AuditReport, allowed: int) -> float | None:
    """P(more than `allowed` planted secrets appear in a prompt that never saw them), for fixed-length secrets:
    such a prompt holds at most one secret per character position, a set fixed before the canaries were
    drawn, so the count is at most hypergeometric (|S| secrets, min(chars, |S|) present, k drawn)."""
    if not isinstance(parse_space(report.run.space), CharsetSpace):
        return None
    planted = [c for c in report.canaries if c.planted]
    size, k = planted[0].space_size, len(planted)
    present = min(report.run.prompt_chars, size)
    total = math.comb(size, k)
    tail = sum(math.comb(present, x) * math.comb(size - present, k - x) for x in range(allowed + 1, min(k, present) + 1))
    return min(1.0, tail / total)


# Up to this many member x non-member pairs the AUC's null is counted exactly; beyond, its normal limit.
EXACT_AUC_PAIRS = 20_000


def _auc_false_alarm(recon: Any, limit: float) -> float:
    """P(AUC > limit) when members and non-members are exchangeable (continuous scores): the exact
    Mann-Whitney null by the usual recurrence over (members, non-members), or its normal limit with a
    continuity correction for more than EXACT_AUC_PAIRS pairs."""
    m, n = len(recon.member_scores), len(recon.non_member_scores)
    pairs = m * n
    cut = math.floor(limit * pairs + 1e-9)  # AUC > limit  <=>  U > cut
    if pairs > EXACT_AUC_PAIRS:
        z = (cut + 0.5 - pairs / 2) / math.sqrt(pairs * (m + n + 1) / 12)
        return 0.5 * math.erfc(z / math.sqrt(2))
    prev = np.zeros((n + 1, pairs + 1))
    prev[:, 0] = 1.0  # no members yet: U = 0 in one way
    for _ in range(m):  # one more member each round
        cur = np.zeros_like(prev)
        cur[0, 0] = 1.0
        for j in range(1, n + 1):  # the largest score is a non-member (U unchanged) or a member (beats all j)
            cur[j] = cur[j - 1]
            cur[j, j:] += prev[j, : pairs + 1 - j]
        prev = cur
    counts = prev[n]
    return float(counts[cut + 1 :].sum() / counts.sum())


def _canary_rules(report: AuditReport, thresholds: Thresholds) -> list[RuleOutcome]:
    results = []
    uniform = not thresholds.overrides
    for c in (c for c in report.canaries if c.planted):
        own = {**{k: getattr(thresholds, k) for k in PER_CANARY_RULES}, **thresholds.overrides.get(c.id, {})}
        detail = (f" (rank {c.rank_lower:,} of {c.space_size:,}, exact)" if c.exposure_method == "exact" else
                  f" (upper end of the {c.exposure_method} interval: rank {c.rank_lower:,} to {c.rank_upper:,} of {c.space_size:,})")
        bits = math.log2(c.space_size) if c.space_size > 1 else 0.0
        if own["max_exposure_bits"] is not None:
            alarm = _exposure_false_alarm(report, own["max_exposure_bits"]) if uniform else None
            results.append(_outcome("max_exposure_bits", c.id, c.exposure_bits_upper, own["max_exposure_bits"], upper=True,
                                    what="exposure", unit=" bits", detail=detail, false_alarm=alarm))
        if own["max_exposure_fraction"] is not None:
            frac = c.exposure_bits_upper / bits if bits else 0.0
            alarm = _exposure_false_alarm(report, own["max_exposure_fraction"] * bits) if uniform else None
            results.append(_outcome("max_exposure_fraction", c.id, frac, own["max_exposure_fraction"], upper=True,
                                    what="exposure as a fraction of log2|S|", detail=detail, false_alarm=alarm))
        if thresholds.min_guesses is not None and c.guesses is not None:
            alarm = _rank_false_alarm(report, int(thresholds.min_guesses) - 1) if report.run.mode == "exact" else None
            results.append(_outcome("min_guesses", c.id, c.guesses, thresholds.min_guesses, upper=False,
                                    what="guesses to extract the secret", false_alarm=alarm))
    return results


def _report_rules(report: AuditReport, thresholds: Thresholds) -> tuple[list[str], list[RuleOutcome]]:
    """Rules on report-wide figures; rules whose figure the report lacks are listed as skipped."""
    s = report.summary
    skipped: list[str] = []
    results: list[RuleOutcome] = []
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
        results.append(_outcome("max_greedy_extracted", "report", s.greedy_extracted, thresholds.max_greedy_extracted, upper=True,
                                what="planted secrets recovered by greedy decoding",
                                false_alarm=_greedy_false_alarm(report, int(thresholds.max_greedy_extracted))))
    if thresholds.max_rank_zero is not None and s.protocol_rank_zero_count is not None:
        k, refs, j = s.planted_count, s.reference_count, int(thresholds.max_rank_zero) + 1
        alarm = math.comb(k, j) / math.comb(k + refs, j) if j <= k else 0.0
        results.append(_outcome("max_rank_zero", "report", s.protocol_rank_zero_count, thresholds.max_rank_zero, upper=True,
                                what="paper-protocol rank-0 count", false_alarm=alarm))
    if thresholds.min_mean_rank_p_value is not None and s.protocol_mean_rank_p_value is not None:
        results.append(_outcome("min_mean_rank_p_value", "report", s.protocol_mean_rank_p_value, thresholds.min_mean_rank_p_value,
                                upper=False, what="paper-protocol mean-rank p-value", false_alarm=thresholds.min_mean_rank_p_value))
    if thresholds.max_verbatim is not None:
        results.append(_outcome("max_verbatim", "report", s.planted_in_prompt, thresholds.max_verbatim, upper=True,
                                what="planted secrets verbatim in the teaching prompt",
                                false_alarm=_verbatim_false_alarm(report, int(thresholds.max_verbatim))))
    if report.leaks is not None:
        if thresholds.max_verbatim_rate is not None:
            results.append(_outcome("max_verbatim_rate", "report", report.leaks.verbatim_rate, thresholds.max_verbatim_rate, upper=True,
                                    what="generated units copied verbatim (rate)", false_alarm=None))
        if thresholds.max_fuzzy_fraction is not None:
            near = sum(r.distance < thresholds.fuzzy_distance for r in report.leaks.rows) / report.leaks.units
            results.append(_outcome("max_fuzzy_fraction", "report", near, thresholds.max_fuzzy_fraction, upper=True, false_alarm=None,
                                    what=f"fraction of generated units within distance {thresholds.fuzzy_distance:g} of private text"))
    if thresholds.max_auc is not None and report.reconstruction is not None:
        results.append(_outcome("max_auc", "report", report.reconstruction.auc, thresholds.max_auc, upper=True,
                                what="reconstruction AUC", false_alarm=_auc_false_alarm(report.reconstruction, thresholds.max_auc)))
    return skipped, results
