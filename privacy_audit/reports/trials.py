"""Secret Sharer trial and summary files: versioned, typed JSON like the report, and their Markdown.

Version 1 trial files (untyped dicts of the same keys) are read and upgraded; summaries are written for
people and other tools, never read back.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from privacy_audit._io import read_json
from privacy_audit.errors import ReportError
from privacy_audit.reports.text import format_p
from privacy_audit.scoring.types import ProtocolSummary

TRIAL_SCHEMA_VERSION = 2


class TrialResult(BaseModel):
    """One trial: the canary's rank among N-1 comparisons, with every score it was ranked on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = "privacy-audit/secret-sharer-trial"
    schema_version: int = TRIAL_SCHEMA_VERSION
    trial: int
    seed: int
    rank: int
    candidates: int
    canary_secret: str
    canary_score: float
    comparison_scores: tuple[float, ...]
    prompt_sha256: str
    prompt_chars: int
    canary_in_prompt: bool


class TrialSummary(BaseModel):
    """All trials of a run: the protocol's figures and what was run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = "privacy-audit/secret-sharer-summary"
    schema_version: int = TRIAL_SCHEMA_VERSION
    protocol: ProtocolSummary
    pipeline: str
    model: str
    teacher: str | None = None
    template: str
    space: str
    folder: str


def load_trial(path: str | os.PathLike[str]) -> TrialResult:
    """A trial file, upgraded from version 1 (an untyped dict of the same keys); anything else is a ReportError."""
    data = read_json(path, what="trial result")
    if not isinstance(data, dict):
        raise ReportError(f"{path} is not a Secret Sharer trial result")
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or version > TRIAL_SCHEMA_VERSION:
        raise ReportError(
            f"trial {path} has schema_version {version!r}, which this privacy-audit does not read; upgrade it"
        )
    upgraded: dict[str, Any] = {**data, "schema_version": TRIAL_SCHEMA_VERSION}
    try:
        return TrialResult.model_validate(upgraded)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ReportError(
            f"{path} is not a valid trial result: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None


def render_trials_markdown(summary: TrialSummary) -> str:
    """The protocol's table: mean rank and rank-0 count against their nulls, with exact p-values."""
    s = summary.protocol
    return (
        f"## Secret Sharer: {summary.pipeline} ({s.trials} trials, N = {s.candidates})\n\n"
        "| measure | value | null |\n|---|---|---|\n"
        f"| mean rank | {s.mean_rank:.1f} | {s.null_mean_rank:.1f} |\n"
        f"| p-value (mean rank this low or lower) | {format_p(s.mean_rank_p.p, s.mean_rank_p.log10_p)} | |\n"
        f"| rank-0 count | {s.rank_zero_count} | {s.null_rank_zero_count:.2f} |\n"
        f"| p-value (this many rank 0 or more) | {format_p(s.rank_zero_p.p, s.rank_zero_p.log10_p)} | |\n"
        f"| trials whose prompt holds the secret verbatim | {s.canary_in_prompt} | |\n"
    )
