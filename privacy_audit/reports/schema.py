"""The audit report: a versioned, typed JSON document with raw measurements and derived figures.

Readers refuse newer versions with a clear message and upgrade older ones in `migrate()`.
"""

from __future__ import annotations

import math
import os
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from privacy_audit._io import read_json, write_json
from privacy_audit.errors import ReportError
from privacy_audit.pipelines.utility import Utility
from privacy_audit.scoring.types import CanaryScore, LeakReport, Reconstruction, Statistics, Summary, TokenBoundary

SCHEMA_VERSION = 3


class RunSpec(BaseModel):
    """Everything needed to repeat the run: pipeline and options, model, seeds, versions, inputs' hashes."""

    model_config = ConfigDict(frozen=True)

    pipeline: str
    pipeline_options: dict[str, Any]
    model: dict[str, Any]
    seed: int
    versions: dict[str, str]
    mode: str
    separator: str
    template: str
    space: str
    canary_seed: int
    prompt_sha256: str
    prompt_chars: int
    extraction: str = "not run"
    tokenization: TokenBoundary | None = None


class RuleOutcome(BaseModel):
    """One checked gate rule: what it was checked on, the measured value, the limit, and the verdict."""

    model_config = ConfigDict(frozen=True)

    rule: str
    subject: str
    value: float
    threshold: float
    passed: bool
    message: str
    false_alarm: float | None = None


class GateOutcome(BaseModel):
    """The gate's verdict on a report, with every rule checked and every rule that could not be."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    failures: tuple[str, ...]
    thresholds: dict[str, Any]
    rules: tuple[RuleOutcome, ...] = ()
    skipped: tuple[str, ...] = ()


class AuditReport(BaseModel):
    """One audit of one teaching prompt against one canary set."""

    model_config = ConfigDict(frozen=True)

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

    2 -> 3: each canary's rank interval over the whole space (`_intervals_of_v2`).
    1 -> 2: the epsilon bound names its design (version 1's was the independent-trials bound); the
    skew-normal fit test says it was not calibrated; scores were computed on split tokenization
    (no `run.tokenization` record), which the upgraded report keeps saying by leaving it empty.
    """
    data = dict(data)
    if data.get("schema_version") == 1:
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
    return data


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
        "exposure_bits_upper": bits - math.log2(lower) if isinstance(lower, int) and lower >= 1 else 0.0,
        **canary,
    }


def holds_secrets(report: AuditReport) -> bool:
    """Whether the report carries secrets or the teaching prompt (written with --include-secrets)."""
    return report.prompt is not None or any(c.secret is not None for c in report.canaries)


def save_report(report: AuditReport, path: str | os.PathLike[str]) -> None:
    """Write the report atomically as stable, key-sorted JSON (mode 0600 when it holds secrets)."""
    write_json(path, report.model_dump(mode="json"), private=holds_secrets(report))


def load_report(path: str | os.PathLike[str]) -> AuditReport:
    """Read and validate a report; a wrong version, truncated or non-JSON file is a ReportError."""
    data = read_json(path, what="report")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{path} is not a privacy-audit report (no schema_version)")
    version = data["schema_version"]
    if not isinstance(version, int) or version < 1:
        raise ReportError(f"report {path} has an invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise ReportError(
            f"report {path} has schema_version {version}, newer than this privacy-audit reads ({SCHEMA_VERSION}); upgrade privacy-audit"
        )
    try:
        return AuditReport.model_validate(migrate(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"report {path} is malformed at {where}: {first['msg']}") from None

