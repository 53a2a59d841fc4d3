"""The audit chain on stage objects: canaries -> `plant` -> `teach` -> `score` -> `apply_gate`; `run`, `demo` and
every Secret Sharer trial call `run_chain`, which is those steps in a row.

Nothing here reads or writes the user's files: the CLI's file-in/file-out wrappers live in `audit.py` and
`audit_runs.py`. The only thing kept on disk is the teaching cache (under the cache folder, mode 0600).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from privacy_audit.canaries import CanarySet, Planted, PlantOptions, plant
from privacy_audit.errors import InputError
from privacy_audit.models import LanguageModel
from privacy_audit.models.base import ModelInfo
from privacy_audit.pipelines import Record, Teaching, TeachingOutput, format_example, student_accuracy, teach, versions
from privacy_audit.pipelines.teaching import TeachOptions
from privacy_audit.reports import AuditReport, RunSpec
from privacy_audit.scoring.leaks import leak_report
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.membership import reconstruction
from privacy_audit.scoring.score import score_prompt
from privacy_audit.scoring.types import Reconstruction, ScoringResult

Progress = Callable[[int, int], None]
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class ChainResult:
    """What one run of the chain made: the planted records, the teaching, and the report."""

    planted: Planted
    teaching: Teaching
    report: AuditReport


def score(
    teaching: Teaching, scorer: LanguageModel, scoring: ScoringOptions = DEFAULT_SCORING, *,
    evals: Sequence[Record] | None = None, held_out: Sequence[Record] | None = None, membership: bool = True,
    progress: Progress | None = None, say: Say = _quiet,
) -> AuditReport:
    """Score a teaching prompt against the canaries it was taught from, into a report: exposure and every figure,
    the student's accuracy on `evals` (labelled records), and with `membership`, reconstruction likelihood of the
    records the teacher saw against `held_out` (default: the records it did not use; skipped, and said, when it used
    them all or the records carry no labels). Every figure is the scorer's measurement."""
    output = teaching.output
    if evals is not None:
        output = output.model_copy(update={"utility": student_accuracy(scorer, output.prompt, evals,
                                                                      labels=output.labels)})
    members = non_members = None
    if membership and teaching.planted.options.label_field is not None:
        try:
            members, non_members = membership_split(output, teaching.records, held_out)
        except InputError as exc:
            say(f"reconstruction likelihood skipped: {exc}")
    return build_report(output, teaching.canaries, scorer, scoring, members=members, non_members=non_members,
                        progress=progress)


def run_chain(
    rows: Sequence[Mapping[str, JsonValue]], canary_set: CanarySet, model: LanguageModel | None = None, *,
    teacher: LanguageModel | None = None, scorer: LanguageModel | None = None, plant_options: PlantOptions,
    teach_options: TeachOptions, scoring: ScoringOptions = DEFAULT_SCORING, evals: Sequence[Record] | None = None,
    held_out: Sequence[Record] | None = None, membership: bool = True, progress: Progress | None = None,
    say: Say = _quiet,
) -> ChainResult:
    """Plant the canaries into `rows`, teach with `teacher`, and score the prompt with `scorer` into a report
    (`model` is both, where one is not given): `plant`, `teach` and `score` in a row."""
    teacher, scorer = teacher or model, scorer or model
    if scorer is None:
        raise InputError("run_chain needs a scorer: pass scorer= (or model= for both roles)")
    planted = plant(canary_set, rows, plant_options)
    teaching = teach(planted, teach_options.pipeline, model=teacher, seed=teach_options.seed,
                     cache=teach_options.cache, say=say, claim=teach_options.claim)
    report = score(teaching, scorer, scoring, evals=evals, held_out=held_out, membership=membership,
                   progress=progress, say=say)
    return ChainResult(planted=planted, teaching=Teaching(_with_utility(teaching.output, report), planted,
                                                          teaching.records), report=report)


def _with_utility(output: TeachingOutput, report: AuditReport) -> TeachingOutput:
    """The teaching output with the student's accuracy the report measured (what `run` writes beside the prompt)."""
    return output if report.utility is None else output.model_copy(update={"utility": report.utility})


def membership_split(
    teaching: TeachingOutput, records: Sequence[Record], held_out: Sequence[Record] | None
) -> tuple[list[str], list[str]]:
    """Private examples the teacher saw, and held-out ones, formatted as the pipeline showed them."""
    used = set(range(len(records))) if teaching.used_records is None else set(teaching.used_records)
    if not used:
        raise InputError(
            f"pipeline {teaching.pipeline!r} wrote its prompt from no private record, so there is no member to test"
        )
    if not records or max(used) >= len(records):
        raise InputError(
            f"the data has {len(records)} records but the teaching output used record {max(used)}; pass the data it "
            "ran on"
        )
    others = list(held_out) if held_out is not None else [r for i, r in enumerate(records) if i not in used]
    if not others:
        raise InputError("the teacher saw every record: pass held-out records with --held-out")
    return [format_example(records[i], teaching.labels) for i in sorted(used)], [
        format_example(r, teaching.labels) for r in others
    ]


def build_report(
    teaching: TeachingOutput, canary_set: CanarySet, model: LanguageModel, scoring: ScoringOptions = DEFAULT_SCORING, *,
    members: Sequence[str] | None = None, non_members: Sequence[str] | None = None, progress: Progress | None = None,
) -> AuditReport:
    """Score a teaching output against a canary set and wrap it in a report (with the reconstruction ROC
    when `members` and `non_members` are given): `score_prompt`, then `make_report`."""
    result = score_prompt(model, teaching.prompt, canary_set, scoring, progress=progress)
    recon = None
    if members is not None and non_members is not None:
        recon = reconstruction(model, teaching.prompt + scoring.separator, members=members, non_members=non_members,
                               seed=teaching.seed)
    return make_report(
        teaching, canary_set, result, model=model.info(), reconstruction=recon, include_prompt=scoring.include_secrets
    )


def make_report(
    teaching: TeachingOutput, canary_set: CanarySet, result: ScoringResult, *, model: ModelInfo,
    reconstruction: Reconstruction | None = None, include_prompt: bool = False,
) -> AuditReport:
    """A report from a scoring already done: the run spec (what ran, on what, with which versions), the
    measurements, the leaks of the teaching output's generated text, and the prompt only when asked for."""
    run = RunSpec(
        pipeline=teaching.pipeline, pipeline_options=teaching.options, model=model, teacher=teaching.model,
        seed=teaching.seed, versions=versions(), mode=result.mode, separator=result.separator,
        template=canary_set.template if include_prompt else canary_set.public_template, space=canary_set.space,
        canary_seed=canary_set.seed,
        canary_design=canary_set.design, derived=canary_set.derived, inclusion=canary_set.inclusion,
        prompt_sha256=hashlib.sha256(teaching.prompt.encode("utf-8")).hexdigest(), prompt_chars=len(teaching.prompt),
        extraction=result.search, tokenization=result.boundary, score_checks=result.checks, claim=teaching.claim,
    )
    return AuditReport(
        run=run, canaries=result.canaries, summary=result.summary, statistics=result.statistics,
        leaks=leak_report(teaching.artifacts), reconstruction=reconstruction, utility=teaching.utility,
        prompt=teaching.prompt if include_prompt else None,
    )
