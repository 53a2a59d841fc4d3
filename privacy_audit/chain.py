"""The one audit chain, on objects: plant -> teach -> score -> report; `run`, `demo` and every trial call `run_chain`.

Nothing here reads or writes the user's files: the CLI's file-in/file-out wrappers live in `audit.py`.
The only thing kept on disk is the teaching cache (under the cache folder, mode 0600).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from privacy_audit._io import make_folder, read_json, write_json
from privacy_audit._paths import cache_root
from privacy_audit.canaries import CanarySet, plant_records
from privacy_audit.canaries.plant import Position
from privacy_audit.errors import InputError
from privacy_audit.models import LanguageModel
from privacy_audit.models.base import ModelInfo
from privacy_audit.pipelines import Record, TeachingOutput, describe, format_example, run_pipeline, student_accuracy
from privacy_audit.reports import AuditReport, RunSpec
from privacy_audit.scoring.leaks import leak_report
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.reconstruction import reconstruction
from privacy_audit.scoring.score import score_prompt
from privacy_audit.scoring.types import Reconstruction, ScoringResult

Progress = Callable[[int, int], None]
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class PlantOptions:
    """Where the canaries go in the private records, and which fields the pipeline reads."""

    field: str = "text"
    label_field: str | None = None
    position: Position = "append"
    seed: int = 0
    shards: int | None = None
    fraction: float | None = None
    shard_field: str = "teacher"


@dataclass(frozen=True)
class TeachOptions:
    """Which pipeline teaches, with which options and seed. `cache`: "use" reuses an identical earlier run
    and stores new ones, "refresh" runs the pipeline again and stores it, "off" neither reads nor writes."""

    pipeline: str
    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    cache: Literal["use", "refresh", "off"] = "off"


@dataclass(frozen=True)
class ChainResult:
    planted: list[dict[str, Any]]
    records: list[Record]
    teaching: TeachingOutput
    report: AuditReport


def versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers in a report."""
    out = {"python": platform.python_version()}
    for dist in ("privacy-audit", "torch", "transformers", "numpy", "scipy", "tokenizers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def to_records(
    rows: Sequence[Mapping[str, Any]], *, field: str, label_field: str | None, shard_field: str = "teacher"
) -> list[Record]:
    """Rows of a data file as pipeline input: text, label, the teacher planting assigned, and every column."""
    if label_field is not None:
        missing = [i for i, r in enumerate(rows, 1) if label_field not in r]
        if missing:
            raise InputError(f"record {missing[0]} has no label field {label_field!r}; choose one with --label-field")
    return [
        Record(
            text=r[field], label=None if label_field is None else str(r[label_field]),
            teacher=r[shard_field] if isinstance(r.get(shard_field), int) else None, fields=dict(r),
        )
        for r in rows
    ]


def run_chain(
    rows: Sequence[Mapping[str, Any]], canary_set: CanarySet, model: LanguageModel | None = None, *,
    teacher: LanguageModel | None = None, scorer: LanguageModel | None = None, plant: PlantOptions, teach: TeachOptions,
    scoring: ScoringOptions = DEFAULT_SCORING, evals: Sequence[Record] | None = None,
    held_out: Sequence[Record] | None = None, membership: bool = True, progress: Progress | None = None,
    say: Say = _quiet,
) -> ChainResult:
    """Plant the canaries into `rows`, teach with `teacher`, and score the prompt with `scorer` into a report
    (`model` is both, where one is not given).

    `evals` (labelled records) add the student's accuracy; with `membership`, the report adds
    reconstruction likelihood of the records the teacher saw against `held_out` (default: the records
    it did not use; skipped when it used them all). Both are the scorer's measurements.
    """
    teacher, scorer = teacher or model, scorer or model
    if scorer is None:
        raise InputError("run_chain needs a scorer: pass scorer= (or model= for both roles)")
    planted, _ = plant_records(
        [dict(r) for r in rows], canary_set, field=plant.field, position=plant.position, seed=plant.seed,
        shards=plant.shards, fraction=plant.fraction, shard_field=plant.shard_field,
    )
    records = to_records(planted, field=plant.field, label_field=plant.label_field, shard_field=plant.shard_field)
    teaching = teach_records(teach, records, teacher, say=say)
    if evals is not None:
        utility = student_accuracy(scorer, teaching.prompt, evals, labels=teaching.labels)
        teaching = teaching.model_copy(update={"utility": utility})
    members = non_members = None
    if membership and plant.label_field is not None:
        try:
            members, non_members = membership_split(teaching, records, held_out)
        except InputError as exc:
            say(f"reconstruction likelihood skipped: {exc}")
    report = build_report(
        teaching, canary_set, scorer, scoring, members=members, non_members=non_members, progress=progress
    )
    return ChainResult(planted=planted, records=records, teaching=teaching, report=report)


def teach_records(
    spec: TeachOptions, records: Sequence[Record], model: LanguageModel | None, *, say: Say = _quiet
) -> TeachingOutput:
    """Run a pipeline on records, through the teaching cache as `spec.cache` says (keyed on pipeline,
    options, the files they name, model, records, seed and version)."""
    needs = describe(spec.pipeline).needs
    if "model" in needs and model is None:
        raise InputError(f"pipeline {spec.pipeline!r} needs a model (--model)")
    if "model" in needs and model is not None:
        model.require("generate")
    if spec.cache == "off":
        return run_pipeline(spec.pipeline, records, model=model, seed=spec.seed, options=spec.options)
    cached = teaching_cache_path(teaching_cache_key(spec, records, model=model if "model" in needs else None))
    if spec.cache == "use" and cached.is_file():
        try:
            output = TeachingOutput.model_validate(read_json(cached, what="cached teaching output"))
            say(f"reused the cached teaching output {cached} (--no-cache to run the pipeline again)")
            return output
        except (InputError, ValueError):
            pass
    output = run_pipeline(spec.pipeline, records, model=model, seed=spec.seed, options=spec.options)
    make_folder(cached.parent, what="cache folder")
    write_json(cached, output.model_dump(mode="json"), private=True, staged=False)
    return output


def teaching_cache_path(key: str) -> Path:
    """Where the teaching output of a cache key is kept."""
    return cache_root() / "teaching" / f"{key}.json"


def teaching_cache_key(spec: TeachOptions, records: Sequence[Record], *, model: LanguageModel | None) -> str:
    """Hash of everything that determines a teaching output, including the content of files its options
    name (a command teacher's script, a prompt file), so editing them invalidates the cache."""
    component = describe(spec.pipeline)
    blob = json.dumps(
        {"pipeline": spec.pipeline, "options": dict(spec.options), "seed": spec.seed,
         "model": None if model is None else model.info().model_dump(exclude={"dtype", "device", "system_fingerprint"}),
         "files": component.cache_files(spec.options), "records": [r.model_dump() for r in records],
         "privacy_audit": versions().get("privacy-audit")},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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
        recon = reconstruction(model, teaching.prompt + scoring.separator, members=members, non_members=non_members)
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
        template=canary_set.template, space=canary_set.space, canary_seed=canary_set.seed,
        canary_design=canary_set.design,
        prompt_sha256=hashlib.sha256(teaching.prompt.encode("utf-8")).hexdigest(), prompt_chars=len(teaching.prompt),
        extraction=result.search, tokenization=result.boundary, score_checks=result.checks,
    )
    return AuditReport(
        run=run, canaries=result.canaries, summary=result.summary, statistics=result.statistics,
        leaks=leak_report(teaching.artifacts), reconstruction=reconstruction, utility=teaching.utility,
        prompt=teaching.prompt if include_prompt else None,
    )
