"""Secret Sharer trial and summary files: versioned, typed JSON like the report, and their Markdown.

Version 1 trial files (untyped dicts of the same keys) are read and upgraded; summaries are written for
people and other tools, never read back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from privacy_audit._io import read_json
from privacy_audit.errors import ReportError, first_problem
from privacy_audit.reports.text import format_p
from privacy_audit.scoring.membership import EVIDENCE, label_of
from privacy_audit.scoring.types import NotRun, ProtocolSummary, Reconstruction

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
    # The data-only similarity test on the same trial (1 - fuzzy-leak distance to the prompt), and the default
    # gate's Bonferroni-adjusted chance p-value of the trial's report (trial files before these fields have none).
    canary_similarity: float | None = None
    comparison_similarities: tuple[float, ...] | None = None
    chance_p_value: float | None = None
    # The data-only n-gram scorer's length-normalised scores on the same prompt, where the trial's scorer is a model.
    canary_ngram_score: float | None = None
    comparison_ngram_scores: tuple[float, ...] | None = None
    # the default gate's chance p-value of the n-gram scorer's report: the gate a data-only audit would apply
    data_only_chance_p_value: float | None = None
    # each membership attack's score of every candidate, the canary first (`scoring.membership`), and the attacks
    # the scorer could not make (trial files before these fields have none)
    attack_scores: dict[str, tuple[float, ...]] | None = None
    attacks_not_run: tuple[NotRun, ...] = ()

    def ranked(self, measure: Literal["ngram", "similarity"]) -> tuple[int, int] | None:
        """The canary's rank among its comparisons by a data-only measure (comparisons at or above it: ties count
        against it, like `rank`) and how many of them tie with it; None where the trial did not record it."""
        canary, comparisons = {
            "ngram": (self.canary_ngram_score, self.comparison_ngram_scores),
            "similarity": (self.canary_similarity, self.comparison_similarities),
        }[measure]
        if canary is None or comparisons is None:
            return None
        return rank_and_ties(canary, comparisons)


def rank_and_ties(canary: float, comparisons: Sequence[float]) -> tuple[int, int]:
    """The canary's rank among its comparisons (those at or above it: ties count against it, which keeps ranks'
    p-values valid) and how many of them tie with it."""
    return sum(x >= canary for x in comparisons), sum(x == canary for x in comparisons)


class TrialSummary(BaseModel):
    """All trials of a run: the protocol's figures and what was run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: str = "privacy-audit/secret-sharer-summary"
    schema_version: int = TRIAL_SCHEMA_VERSION
    protocol: ProtocolSummary
    # the same trials ranked by similarity to the prompt (None: a trial lacks it)
    similarity: ProtocolSummary | None = None
    # the same trials ranked by the data-only n-gram scorer (`data_only_model`) where the scorer is a model
    ngram: ProtocolSummary | None = None
    data_only_model: str | None = None
    # how many trials fail the default gate at chance_alpha, on the scorer's and on the n-gram scorer's reports
    chance_alpha: float = 0.01
    chance_failures: int | None = None
    data_only_chance_failures: int | None = None
    # the trials read as a membership test by every attack (canaries against their comparisons, pooled), with the
    # blind control on the candidates' texts (None where a trial did not record the attacks)
    membership: Reconstruction | None = None
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
    upgraded: dict[str, JsonValue] = {**data, "schema_version": TRIAL_SCHEMA_VERSION}
    try:
        return TrialResult.model_validate(upgraded)
    except ValidationError as exc:
        raise ReportError(f"{path} is not a valid trial result: {first_problem(exc)}") from None


def render_trials_markdown(summary: TrialSummary) -> str:
    """The protocol's table: mean rank and rank-0 count against their nulls, with exact p-values, the trials as a
    membership test, by score and (where recorded) by the data-only n-gram score and similarity, and the default
    gate's failures."""
    s = summary.protocol
    # each column: its name, its trials' figures, and how many of its trials fail the default gate (None: not a gate)
    columns = [("by score", s, summary.chance_failures)] + [column for column in (
        (f"by {summary.data_only_model}", summary.ngram, summary.data_only_chance_failures),
        ("by similarity", summary.similarity, None)) if column[1] is not None]
    lines = [f"## Secret Sharer: {summary.pipeline} ({s.trials} trials, N = {s.candidates})", "",
             "| measure | " + " | ".join(name for name, _, _ in columns) + " | null |",
             "|---|" + "---|" * len(columns) + "---|"]

    def row(name: str, cell, null: str = "") -> None:
        lines.append(f"| {name} | " + " | ".join(cell(p, fails) for _, p, fails in columns) + f" | {null} |")

    def rate(value: float | None) -> str:
        return "n/a (N too small)" if value is None else f"{value:.2f}"

    row("mean rank", lambda p, _: f"{p.mean_rank:.1f}", f"{s.null_mean_rank:.1f}")
    row("p-value (mean rank this low or lower)", lambda p, _: format_p(p.mean_rank_p.p, p.mean_rank_p.log10_p))
    row("rank-0 count", lambda p, _: str(p.rank_zero_count), f"{s.null_rank_zero_count:.2f}")
    row("p-value (this many rank 0 or more)", lambda p, _: format_p(p.rank_zero_p.p, p.rank_zero_p.log10_p))
    row("AUC (canary against its comparisons)", lambda p, _: rate(p.auc), "0.50")
    row("TPR at 1% FPR", lambda p, _: rate(p.tpr_at_1pct_fpr), "0.01")
    row("TPR at 0.1% FPR", lambda p, _: rate(p.tpr_at_0_1pct_fpr), "0.001")
    lines.append(f"| trials whose prompt holds the secret verbatim | {s.canary_in_prompt} |" + " |" * len(columns))
    if summary.chance_failures is not None:
        row(f"trials failing the default gate (alpha = {summary.chance_alpha:g})",
            lambda _, fails: "" if fails is None else str(fails), f"{summary.chance_alpha * s.trials:.2f} (at most)")
    rc = summary.membership
    if rc is not None:
        lines += ["", f"Membership attacks on the same trials ({len(rc.attacks[0].member_scores)} canaries against "
                      f"{len(rc.attacks[0].non_member_scores)} comparisons, pooled):", "",
                  "| attack | AUC (95% CI) | TPR at 1% FPR | TPR at 0.1% FPR |", "|---|---|---|---|"]
        for r in [*rc.attacks, *([rc.blind] if rc.blind is not None else [])]:
            ci = "" if r.auc_ci is None else f" ({r.auc_ci[0]:.2f} to {r.auc_ci[1]:.2f})"
            tprs = f"{r.tpr_at_1pct_fpr:.2f} | {r.tpr_at_0_1pct_fpr:.2f}"
            lines.append(f"| {label_of(r.name)} | {r.auc:.2f}{ci} | {tprs} |")
        lines += [f"| {label_of(n.name)} | not run: {n.reason} | | |" for n in rc.not_run]
    lines += ["", f"Evidence: {EVIDENCE}."]
    return "\n".join(lines) + "\n"
