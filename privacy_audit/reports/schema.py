"""The audit report: a versioned, typed JSON document with raw measurements and derived figures.

Readers refuse newer versions with a clear message and upgrade older ones in `migrate()`.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from pydantic import BaseModel, JsonValue

from privacy_audit._io import write_json
from privacy_audit.canaries.canary import Design, Inclusion
from privacy_audit.models.base import ModelInfo
from privacy_audit.pipelines.base import PrivacyClaim
from privacy_audit.pipelines.utility import Utility
from privacy_audit.scoring.figures import canary_figures, summary_tests
from privacy_audit.scoring.membership import MEMBERSHIP_ATTACKS
from privacy_audit.stats.roc import tpr_at_fpr
from privacy_audit.scoring.types import (
    FROZEN, CanaryScore, Count, Probability, ScoreCheck, LeakReport, Reconstruction, RunMode, Statistics, Summary,
    TokenBoundary,
)

SCHEMA_VERSION = 6


class RunSpec(BaseModel):
    """Everything needed to repeat the run: pipeline and options, the scorer (`model`) and the teacher (None for
    pipelines that use none), seeds, versions, inputs' hashes."""

    model_config = FROZEN

    pipeline: str
    pipeline_options: dict[str, JsonValue]
    model: ModelInfo
    teacher: ModelInfo | None = None
    seed: Count
    versions: dict[str, str]
    mode: RunMode
    separator: str
    template: str
    space: str
    canary_seed: Count
    canary_design: Design = "template"  # how the canaries were designed (canaries.canary.DESIGNS)
    # the template's derived fields (a preset's product of two codes), and whether each canary was planted by a coin
    derived: dict[str, tuple[str, ...]] = {}
    inclusion: Inclusion = "fixed"
    prompt_sha256: str
    prompt_chars: Count
    extraction: str = "not run"
    tokenization: TokenBoundary | None = None
    score_checks: tuple[ScoreCheck, ...] = ()
    # the (epsilon, delta) the teacher promises, where one was stated: the gate checks the audited bound against it
    claim: PrivacyClaim | None = None


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
    thresholds: dict[str, JsonValue]
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


def json_schema() -> dict[str, JsonValue]:
    """The JSON Schema of the report, generated from these types and the registered figures (committed as
    reports/schema.json): each canary's figures are properties of its row, and the summary's p-values are keyed by
    the registered summary tests' names."""
    schema = AuditReport.model_json_schema()
    row, summary = schema["$defs"]["CanaryScore"], schema["$defs"]["Summary"]
    for figure in canary_figures().values():
        row["properties"][figure.name] = {**figure.json_schema(), "default": None}
    row["additionalProperties"] = False
    summary["properties"]["p_values"]["propertyNames"] = {"enum": list(summary_tests())}
    schema["$id"] = f"https://privacy-audit.invalid/report/v{SCHEMA_VERSION}.json"
    schema["title"] = f"privacy-audit report, schema version {SCHEMA_VERSION}"
    return schema


def migrate(data: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """Upgrade an older report's JSON to the current schema's shape (what can be computed from an older report's
    rows is computed when it is read: `reports.validate.complete`).

    5 -> 6: the reconstruction's one score (the loss) becomes the first of its membership attacks; the attacks that
    version did not make are listed as not run, and it had no blind control.
    4 -> 5: each summary p-value is stored once, in `summary.p_values` (the copies beside it are dropped); the run
    records the template's derived fields and whether the canaries were planted by coins (read from the epsilon
    bound's design, the one place an older report said so).
    3 -> 4: a stored gate's skipped rules are typed (rule, reason); reports that did not name their
    interval method were made with the percentile bootstrap.
    2 -> 3: each canary's rank interval over the whole space (`_intervals_of_v2`).
    1 -> 2: the summary's p-values, computed under independent-trial nulls, are dropped (the exact permutation
    ones are computed from the rows when the report is read); the epsilon bound names its design (version 1's
    was the independent-trials bound); the skew-normal fit test says it was not calibrated; scores were computed
    on split tokenization (no `run.tokenization` record), which the upgraded report keeps saying by leaving it empty.
    """
    data = dict(data)
    if data.get("schema_version") == 1:
        summary = data.get("summary")
        if isinstance(summary, dict):
            data["summary"] = {k: v for k, v in summary.items() if k != "p_values"}
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
    if data.get("schema_version") == 4:
        data = _single_p_values(data)
        data["schema_version"] = 5
    if data.get("schema_version") == 5:
        if isinstance(data.get("reconstruction"), dict):
            data["reconstruction"] = _attacks_of_v5(data["reconstruction"])
        data["schema_version"] = 6
    return data


def _attacks_of_v5(recon: dict[str, Any]) -> dict[str, Any]:
    """5 -> 6: the loss attack as the report measured it (its TPR at 0.1% FPR computed where it was not stored)."""
    loss = {"name": "loss", **recon}
    if loss.get("tpr_at_0_1pct_fpr") is None:
        try:
            loss["tpr_at_0_1pct_fpr"] = tpr_at_fpr(member_scores=np.asarray(recon.get("member_scores"), dtype=float),
                                                   non_member_scores=np.asarray(recon.get("non_member_scores"),
                                                                                dtype=float), fpr=0.001)
        except (TypeError, ValueError):
            pass  # scores that are not numbers: the report is refused when read
    later = [name for name in MEMBERSHIP_ATTACKS if name != "loss"]
    return {"attacks": [loss], "blind": None,
            "not_run": [{"name": n, "reason": "not made by the version that wrote this report (schema 5)"}
                        for n in later]}


def _single_p_values(data: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """4 -> 5: the summary's copies of its p-values dropped; the run's inclusion read from the epsilon bound."""
    summary, run, stats = data.get("summary"), data.get("run"), data.get("statistics")
    copies = ("planted_vs_references_p_value", "protocol_mean_rank_p_value", "protocol_rank_zero_p_value")
    if isinstance(summary, dict):
        data["summary"] = {k: v for k, v in summary.items() if k not in copies}
    eps = stats.get("epsilon") if isinstance(stats, dict) else None
    if isinstance(run, dict) and isinstance(eps, dict) and "inclusion" not in run:
        data["run"] = {**run, "inclusion": "randomized" if eps.get("design") == "randomized_inclusion" else "fixed"}
    return data


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
