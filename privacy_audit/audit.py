"""The CLI's file-in/file-out wrappers: each reads its files, calls the library on objects, and writes its outputs.

The chain itself (plant -> teach -> score -> report) is `chain.run_chain`; nothing here computes a number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from privacy_audit._io import (
    all_or_nothing, atomic_write, dump_jsonl, guard_outputs, make_folder, read_json, read_records, read_text,
    write_json,
)
from privacy_audit.canaries import (
    CanarySet, Planting, generate_canary_set, load_canary_set, parse_space, plant_file, save_canary_set,
)
from privacy_audit.canaries.plant import planting_path
from privacy_audit.canaries.checks import design_checks
from privacy_audit.canaries.plant import Position
from privacy_audit.canaries.presets import load_preset
from privacy_audit.chain import (
    PlantOptions, TeachOptions, build_report, membership_split, run_chain, teach_records, to_records,
)
from privacy_audit.config import AuditConfig
from privacy_audit.errors import InputError
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.models import LanguageModel, check_model_options, load_model
from privacy_audit.pipelines import Record, TeachingOutput, describe, student_accuracy, teaching_path
from privacy_audit.reports import (
    AuditReport, GateOutcome, holds_secrets, load_report, render_comparison, render_markdown, save_report,
)
from privacy_audit.reports.compare import Comparison, compare
from privacy_audit.reports.html import render_comparison_html, render_html
from privacy_audit.reports.junit import render_junit
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.rank import check_mode

Progress = Callable[[int, int], None]


def make_canaries(
    *, template: str | None = None, space: str | None = None, preset: str | None = None, count: int, references: int,
    seed: int, repetitions: int = 1, out: str | os.PathLike[str], check_model: LanguageModel | str | None = None,
    randomized: bool = False,
) -> CanarySet:
    """Generate a canary set from a template and space or a preset, run the design checks, write it (mode 0600)."""
    if preset is not None and (template is not None or space is not None):
        raise InputError("give --preset, or --template with --space, not both")
    guard_outputs([preset if preset is not None and os.path.exists(preset) else None], [out])
    derived: dict[str, tuple[str, ...]] = {}
    if preset is not None:
        p = load_preset(preset)
        template, space, derived = p.template, p.space, p.derived
    if template is None or space is None:
        raise InputError("give --template and --space (or --preset NAME; see 'privacy-audit canaries list-presets')")
    guard_outputs(parse_space(space).files, [out])
    canary_set = generate_canary_set(
        template=template, space=space, count=count, references=references, seed=seed, repetitions=repetitions,
        derived=derived, preset=preset, randomized=randomized,
    )
    lm = load_model(check_model) if isinstance(check_model, str) else check_model
    canary_set = canary_set.model_copy(update={"checks": design_checks(canary_set, lm)})
    save_canary_set(canary_set, out)
    return canary_set


def plant(
    canaries: str | os.PathLike[str], *, data: str | os.PathLike[str], field: str, out: str | os.PathLike[str],
    position: Position = "append", seed: int = 0, data_format: str | None = None, shards: int | None = None,
    fraction: float | None = None, shard_field: str = "teacher",
) -> Planting:
    """Plant a canary-set file's canaries into a JSONL, CSV or text file (input untouched, outputs mode 0600)."""
    guard_outputs([canaries, data], [out, planting_path(out)])
    canary_set = load_canary_set(canaries)
    guard_outputs(canary_set.secret_space.files, [out, planting_path(out)])
    return plant_file(
        canary_set, data=data, field=field, out=out, position=position, seed=seed, data_format=data_format,
        shards=shards, fraction=fraction, shard_field=shard_field,
    )


def load_training_records(
    path: str | os.PathLike[str], *, field: str, label_field: str | None, shard_field: str = "teacher"
) -> list[Record]:
    """Private records of a JSONL file as pipeline input (with the teacher planting assigned, if any)."""
    try:
        return to_records(read_records(path, field), field=field, label_field=label_field, shard_field=shard_field)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def teach(
    pipeline: str, *, data: str | os.PathLike[str] | None, field: str = "text", label_field: str | None = None,
    out: str | os.PathLike[str], model: LanguageModel | str | None = "embedded",
    model_options: Mapping[str, Any] | None = None, seed: int = 0, options: Mapping[str, Any] | None = None,
    eval_data: str | os.PathLike[str] | None = None, use_cache: bool = True,
    say: Callable[[str], None] = lambda _msg: None,
) -> TeachingOutput:
    """Run a pipeline on (planted) data; write the prompt to `out` and the teaching output beside it.

    A teaching output is cached under the cache folder (see `chain.teach_records`); a rerun reuses it
    unless `use_cache` is False (then the pipeline runs again and refreshes the cache). With `eval_data`
    (labelled held-out records) the output also carries the student's accuracy, on the prompt's labels.
    """
    spec = describe(pipeline)
    if isinstance(model, str) and ("model" in spec.needs or eval_data is not None):
        check_model_options(model, model_options or {})
    if data is None and "data" in spec.needs:
        raise InputError(f"pipeline {pipeline!r} needs private data (--data)")
    options = dict(options or {})
    guard_outputs([data, eval_data, *spec.cache_files(options)], [out, teaching_path(out)])
    records = load_training_records(data, field=field, label_field=label_field) if data is not None else []
    evals = (
        load_training_records(eval_data, field=field, label_field=label_field or "label")
        if eval_data is not None
        else None
    )
    lm: LanguageModel | None = None
    if "model" in spec.needs or evals is not None:
        lm = load_model(model, **(model_options or {})) if isinstance(model, str) else model
        if lm is None:
            raise InputError("--eval-data needs a model to play the student (--model)")
    output = teach_records(
        TeachOptions(pipeline, options, seed=seed, cache="use" if use_cache else "refresh"), records, lm, say=say
    )
    if evals is not None and lm is not None:
        output = output.model_copy(update={"utility": student_accuracy(lm, output.prompt, evals, labels=output.labels)})
    with all_or_nothing():
        atomic_write(out, output.prompt, private=True)
        write_json(teaching_path(out), output.model_dump(mode="json"), private=True)
    return output


def read_teaching(prompt_path: str | os.PathLike[str]) -> TeachingOutput:
    """The teaching output for a prompt file: its sidecar when present (and matching), else a prompt-file record."""
    text = read_text(prompt_path, what="prompt file")
    sidecar = teaching_path(prompt_path)
    if sidecar.is_file():
        recorded = TeachingOutput.model_validate(read_json(sidecar, what="teaching output"))
        if recorded.prompt == text:
            return recorded
    return TeachingOutput(prompt=text, pipeline="prompt-file", options={"path": str(prompt_path)}, seed=0, model=None)


def score(
    *, prompt: str | os.PathLike[str], canaries: str | os.PathLike[str], out: str | os.PathLike[str],
    model: LanguageModel | str = "embedded", model_options: Mapping[str, Any] | None = None,
    scoring: ScoringOptions = DEFAULT_SCORING, data: str | os.PathLike[str] | None = None,
    held_out: str | os.PathLike[str] | None = None, field: str = "text", label_field: str | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Score a prompt file against a canary-set file; write the report JSON to `out`.

    With `data` (the planted data the pipeline ran on) the report adds reconstruction likelihood: the
    records the teacher saw against the records it did not (or those of `held_out`).
    """
    if isinstance(model, str):
        check_model_options(model, model_options or {})
    guard_outputs([prompt, canaries, data, held_out, teaching_path(prompt)], [out])
    teaching = read_teaching(prompt)
    canary_set = load_canary_set(canaries)
    guard_outputs(canary_set.secret_space.files, [out])
    check_mode(canary_set, scoring)
    members = non_members = None
    if data is not None:
        records = load_training_records(data, field=field, label_field=label_field)
        others = load_training_records(held_out, field=field, label_field=label_field) if held_out is not None else None
        members, non_members = membership_split(teaching, records, others)
    elif held_out is not None:
        raise InputError("--held-out needs --data (the planted data the pipeline ran on)")
    lm = load_model(model, **(model_options or {})) if isinstance(model, str) else model
    report = build_report(
        teaching, canary_set, lm, scoring, members=members, non_members=non_members, progress=progress
    )
    save_report(report, out)
    return report


def check_gate(
    report_path: str | os.PathLike[str], thresholds: Thresholds, *, write: bool = False
) -> GateOutcome:
    """Apply thresholds to a saved report; with `write`, store the outcome in the report (atomically)."""
    report = load_report(report_path)
    outcome = apply_gate(report, thresholds)
    if write:
        save_report(report.model_copy(update={"gate": outcome}), report_path, replaces_input=True)
    return outcome


def render_report(
    report_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
    html: str | os.PathLike[str] | None = None, markdown: str | os.PathLike[str] | None = None,
    junit: str | os.PathLike[str] | None = None, thresholds: Thresholds | None = None,
) -> list[AuditReport]:
    """Write HTML / Markdown / JUnit renderings of saved reports; thresholds add the gate's verdict.

    Several reports give side-by-side HTML and Markdown (with privacy against utility); JUnit takes one.
    """
    if html is None and markdown is None and junit is None:
        raise InputError("say what to write: --html FILE, --md FILE and/or --junit FILE")
    paths = [report_path] if isinstance(report_path, (str, os.PathLike)) else list(report_path)
    guard_outputs(paths, [html, markdown, junit])
    if len({os.path.abspath(o) for o in (html, markdown, junit) if o is not None}) < sum(
        o is not None for o in (html, markdown, junit)
    ):
        raise InputError("--html, --md and --junit must name different files")
    if not paths:
        raise InputError("give at least one report")
    if junit is not None and len(paths) > 1:
        raise InputError("--junit renders one report at a time")
    reports = [load_report(p) for p in paths]
    if thresholds is not None:
        reports = [r.model_copy(update={"gate": apply_gate(r, thresholds)}) for r in reports]
    several = len(reports) > 1
    private = any(holds_secrets(r) for r in reports)  # a rendering of a report that holds secrets holds them too
    with all_or_nothing():
        if html is not None:
            atomic_write(html, render_comparison_html(reports) if several else render_html(reports[0]), private=private)
        if markdown is not None:
            atomic_write(
                markdown, render_comparison(reports) if several else render_markdown(reports[0]), private=private
            )
        if junit is not None:
            atomic_write(junit, render_junit(reports[0]), private=private)
    return reports


def compare_reports(old: str | os.PathLike[str], new: str | os.PathLike[str], *, tolerance: float = 0.5) -> Comparison:
    """Changes between two saved reports."""
    if tolerance < 0:
        raise InputError("--tolerance must be >= 0")
    return compare(load_report(old), load_report(new), tolerance=tolerance)


@dataclass(frozen=True)
class RunResult:
    report: AuditReport
    gate: GateOutcome | None
    out_dir: Path


RUN_OUTPUTS = (
    "canaries.json", "planted.jsonl", "prompt.txt", "prompt.txt.teaching.json", "report.json", "report.md",
    "report.html",
)


def run_audit(cfg: AuditConfig, *, say: Callable[[str], None] = lambda _m: None) -> RunResult:
    """`run CONFIG`: the chain from one config, into cfg.out (canaries, planted data, prompt, report JSON,
    Markdown and HTML, written together at the end or not at all), then the config's gate."""
    template, space, derived = cfg.template_and_space()
    c, d = cfg.canaries, cfg.data
    rows = cfg.read_pool()
    canary_set = generate_canary_set(
        template=template, space=space, count=c.count, references=c.references, seed=c.seed, repetitions=c.repetitions,
        derived=derived, preset=c.preset,
    )
    check_mode(canary_set, cfg.scoring.options())
    evals = (
        load_training_records(cfg.resolve(d.eval_path), field=d.field, label_field=d.label_field or "label")
        if d.eval_path
        else None
    )
    out = make_folder(cfg.out, what="output folder")
    guard_outputs(cfg.input_files(), [out / name for name in RUN_OUTPUTS])
    teacher, scorer = cfg.load_models()
    say(f"planting {len(canary_set.planted)} canaries into {len(rows)} records, teaching with '{cfg.pipeline.name}' "
        f"({teacher.name}), scoring with {scorer.name} ...")
    result = run_chain(
        rows,
        canary_set,
        teacher=teacher,
        scorer=scorer,
        plant=PlantOptions(
            field=d.field, label_field=d.label_field, position=d.position, seed=c.seed, shards=d.shards,
            fraction=d.fraction,
        ),
        teach=TeachOptions(cfg.pipeline.name, cfg.pipeline.options, seed=cfg.pipeline.seed, cache="use"),
        scoring=cfg.scoring.options(),
        evals=evals,
        membership=cfg.scoring.membership,
        say=say,
    )
    report = result.report
    outcome = apply_gate(report, cfg.gate) if cfg.gate is not None else None
    if outcome is not None:
        report = report.model_copy(update={"gate": outcome})
    private = holds_secrets(report)
    with all_or_nothing():
        save_canary_set(canary_set, out / "canaries.json")
        atomic_write(out / "planted.jsonl", dump_jsonl(result.planted), private=True)
        atomic_write(out / "prompt.txt", result.teaching.prompt, private=True)
        write_json(teaching_path(out / "prompt.txt"), result.teaching.model_dump(mode="json"), private=True)
        save_report(report, out / "report.json")
        atomic_write(out / "report.md", render_markdown(report), private=private)
        atomic_write(out / "report.html", render_html(report), private=private)
    return RunResult(report, outcome, out)
