"""The audit report: a versioned, typed JSON document with raw measurements and derived figures.

Readers refuse newer versions with a clear message and upgrade older ones in `migrate()`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from privacy_audit._io import read_json, write_json
from privacy_audit.models.base import ModelInfo
from privacy_audit.errors import ReportError
from privacy_audit.pipelines.utility import Utility
from privacy_audit.scoring.types import (
    FROZEN, CanaryScore, Count, Probability, ScoreCheck, LeakReport, Reconstruction, RunMode, Statistics, Summary,
    TokenBoundary,
)

SCHEMA_VERSION = 4


class RunSpec(BaseModel):
    """Everything needed to repeat the run: pipeline and options, the scorer (`model`) and the teacher (None for
    pipelines that use none), seeds, versions, inputs' hashes."""

    model_config = FROZEN

    pipeline: str
    pipeline_options: dict[str, Any]
    model: ModelInfo
    teacher: ModelInfo | None = None
    seed: Count
    versions: dict[str, str]
    mode: RunMode
    separator: str
    template: str
    space: str
    canary_seed: Count
    # how the canaries were designed: "template" (a pattern, or a preset) or "echo" (a prefix drawn from the data)
    canary_design: Literal["template", "echo"] = "template"
    prompt_sha256: str
    prompt_chars: Count
    extraction: str = "not run"
    tokenization: TokenBoundary | None = None
    score_checks: tuple[ScoreCheck, ...] = ()


class RuleOutcome(BaseModel):
    """One checked gate rule: what it was checked on, the measured value, the limit, and the verdict."""

    model_config = FROZEN

    rule: str
    subject: str
    value: float
    threshold: float
    passed: bool
    message: str
    false_alarm: Probability | None = None


class SkippedRule(BaseModel):
    """A rule that was asked for but not checked, because the report lacks its data."""

    model_config = FROZEN

    rule: str
    reason: str


class GateOutcome(BaseModel):
    """The gate's verdict on a report, with every rule checked and every rule that could not be."""

    model_config = FROZEN

    passed: bool
    failures: tuple[str, ...]
    thresholds: dict[str, Any]
    rules: tuple[RuleOutcome, ...] = ()
    skipped: tuple[SkippedRule, ...] = ()


class AuditReport(BaseModel):
    """One audit of one teaching prompt against one canary set."""

    model_config = FROZEN

    schema_version: int = SCHEMA_VERSION
    run: RunSpec
    canaries: tuple[CanaryScore, ...]
    summary: Summary
    statistics: Statistics | None = None
    leaks: LeakReport | None = None
    reconstruction: Reconstruction | None = None
    utility: Utility | None = None
    prompt: str | None = None
    gate: GateOutcome | None = None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the report, generated from these types (committed as reports/schema.json)."""
    schema = AuditReport.model_json_schema()
    schema["$id"] = f"https://privacy-audit.invalid/report/v{SCHEMA_VERSION}.json"
    schema["title"] = f"privacy-audit report, schema version {SCHEMA_VERSION}"
    return schema


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Upgrade an older report's JSON to the current schema.

    3 -> 4: a stored gate's skipped rules are typed (rule, reason); reports that did not name their
    interval method were made with the percentile bootstrap.
    2 -> 3: each canary's rank interval over the whole space (`_intervals_of_v2`).
    1 -> 2: the summary's p-values are recomputed from the canaries' scores (`_p_values_of_v1`); the epsilon
    bound names its design (version 1's was the independent-trials bound); the
    skew-normal fit test says it was not calibrated; scores were computed on split tokenization
    (no `run.tokenization` record), which the upgraded report keeps saying by leaving it empty.
    """
    data = dict(data)
    if data.get("schema_version") == 1:
        data = _p_values_of_v1(data)
        stats = data.get("statistics")
        if isinstance(stats, dict):
            stats = dict(stats)
            eps = stats.get("epsilon")
            if isinstance(eps, dict):
                stats["epsilon"] = {"hits": None, "design": "independent", **eps}
            fit = stats.get("extrapolation")
            if isinstance(fit, dict):
                stats["extrapolation"] = {"calibration": "none (parameters fitted to the same data)", **fit}
            data["statistics"] = stats
        data["schema_version"] = 2
    if data.get("schema_version") == 2:
        data["canaries"] = [_intervals_of_v2(c, data.get("run", {}).get("mode")) for c in data.get("canaries", [])]
        data["schema_version"] = 3
    if data.get("schema_version") == 3:
        if isinstance(data.get("statistics"), dict):
            data["statistics"] = {"interval_method": "percentile bootstrap", **data["statistics"]}
        gate = data.get("gate")
        if isinstance(gate, dict) and isinstance(gate.get("skipped"), list):
            data["gate"] = {**gate, "skipped": [_skipped_of_v3(n) for n in gate["skipped"]]}
        data["schema_version"] = 4
    return data


def _p_values_of_v1(data: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: version 1 computed the summary's p-values under independent-trial nulls, which canaries ranked
    against shared references do not follow; they are recomputed from the canaries' raw scores under the
    exact permutation null. Malformed data is left as it is, for the schema check to name."""
    from privacy_audit.scoring.permutation import rank_sum_p_value, rank_zero_p_value

    try:
        canaries, summary = data["canaries"], dict(data["summary"])
        split = [[c for c in canaries if c["planted"] is want] for want in (True, False)]
        if not split[1]:
            return data
        raw = [np.array([float(c["logprob_bits"]) for c in group]) for group in split]
        norm = [np.array([float(c["normalised_logprob_bits"]) for c in group]) for group in split]
        rng = np.random.default_rng(0)
        found = {"planted_vs_references": rank_sum_p_value(planted_scores=raw[0], reference_scores=raw[1], rng=rng),
                 "protocol_mean_rank": rank_sum_p_value(planted_scores=norm[0], reference_scores=norm[1], rng=rng),
                 "protocol_rank_zero": rank_zero_p_value(planted_scores=norm[0], reference_scores=norm[1])}
    except (KeyError, TypeError, ValueError):
        return data
    summary["p_values"] = {
        k: {"p": v.p, "log10_p": v.log10_p, "method": v.method, "monte_carlo_error": v.monte_carlo_error}
        for k, v in found.items()
    }
    summary |= {f"{k}_p_value": v.p for k, v in found.items()}
    return {**data, "summary": summary}


def _skipped_of_v3(note: Any) -> Any:
    """3 -> 4: "rule: reason" becomes {"rule", "reason"}."""
    if not isinstance(note, str):
        return note
    rule, _, reason = note.partition(": ")
    return {"rule": rule, "reason": reason}


def _intervals_of_v2(canary: Any, mode: Any) -> Any:
    """2 -> 3: every canary carries its rank interval over the whole space. An exact-mode rank is its own
    interval; a sampled one was not recorded, so its interval is the whole space (the gate then fails closed)."""
    if not isinstance(canary, dict) or "rank" not in canary or "space_size" not in canary:
        return canary
    exact = mode == "exact"
    lower, upper = (canary["rank"], canary["rank"]) if exact else (1, canary["space_size"])
    size = canary["space_size"]
    bits = math.log2(size) if isinstance(size, int) and size >= 1 else 0.0
    return {
        "rank_lower": lower, "rank_upper": upper, "exposure_method": "exact" if exact else "sampled",
        "exposure_bits_lower": bits - math.log2(upper) if isinstance(upper, int) and upper >= 1 else 0.0,
        "exposure_bits_upper": bits - math.log2(lower) if isinstance(lower, int) and lower >= 1 else 0.0, **canary,
    }


def holds_secrets(report: AuditReport) -> bool:
    """Whether the report carries secrets or the teaching prompt (written with --include-secrets)."""
    return report.prompt is not None or any(c.secret is not None for c in report.canaries)


def save_report(report: AuditReport, path: str | os.PathLike[str], *, replaces_input: bool = False) -> None:
    """Write the report atomically as stable, key-sorted JSON (mode 0600 when it holds secrets); `replaces_input`
    when a command updates the report it read (`gate --write`)."""
    write_json(path, report.model_dump(mode="json"), private=holds_secrets(report), replaces_input=replaces_input)


def load_report(path: str | os.PathLike[str]) -> AuditReport:
    """Read a report and check it: a wrong version, a truncated or non-JSON file, a value of the wrong type
    (numbers are read strictly: "12.5" is not a number, NaN and infinities are refused) or out of range,
    and fields that contradict each other (`validate.check_report`) are ReportErrors naming the field."""
    from privacy_audit.reports.validate import check_report

    data = read_json(path, what="report")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{path} is not a privacy-audit report (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportError(f"report {path} has an invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version}, newer than this privacy-audit reads ({SCHEMA_VERSION}); "
            "upgrade privacy-audit"
        )
    try:
        report = AuditReport.model_validate_json(json.dumps(migrate(data), allow_nan=True), strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"report {path} is malformed at {where}: {first['msg']}") from None
    try:
        check_report(report)
    except ReportError as exc:
        raise ReportError(f"report {path} is invalid: {exc}") from None
    return report
