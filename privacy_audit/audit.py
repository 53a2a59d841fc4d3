"""Orchestration: plant -> teach -> score -> report -> gate. Each CLI command calls one function here."""

from __future__ import annotations

import hashlib
import json
import importlib.metadata
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from privacy_audit._paths import cache_root
from privacy_audit._io import atomic_write, dump_jsonl, guard_outputs, make_folder, read_json, read_records, read_text, write_json
from privacy_audit.canaries import CanarySet, Planting, generate_canary_set, load_canary_set, plant_file, save_canary_set
from privacy_audit.canaries.checks import design_checks
from privacy_audit.canaries.plant import Position
from privacy_audit.canaries.presets import load_preset
from privacy_audit.errors import InputError
from privacy_audit.gate import Thresholds, gate
from privacy_audit.models import LanguageModel, load_model
from privacy_audit.pipelines import Record, TeachingOutput, format_example, needs_model, run_pipeline, student_accuracy
from privacy_audit.pipelines.command import parse_command
from privacy_audit.models.embedded import package_version as embedded_version
from privacy_audit.reports import AuditReport, GateOutcome, RunSpec, load_report, render_comparison, render_markdown, save_report
from privacy_audit.reports.compare import Comparison, compare
from privacy_audit.reports.html import render_comparison_html, render_html
from privacy_audit.reports.junit import render_junit
from privacy_audit.scoring import score_prompt
from privacy_audit.scoring.leaks import leak_report
from privacy_audit.scoring.reconstruction import reconstruction
from privacy_audit.scoring.score import DEFAULT_MAX_EXACT, DEFAULT_SEARCH_BUDGET, DEFAULT_SEPARATOR, Mode, check_mode

Progress = Callable[[int, int], None]
DEMO_DATA = "sms_spam_demo.jsonl"
DEMO_TEMPLATE = "The secret code is {secret}"
SMS_LABELS = {"ham": "not spam"}


def versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers in a report."""
    out = {"python": platform.python_version()}
    for dist in ("privacy-audit", "torch", "transformers", "numpy", "scipy", "tokenizers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def make_canaries(
    *,
    template: str | None = None,
    space: str | None = None,
    preset: str | None = None,
    count: int,
    references: int,
    seed: int,
    repetitions: int = 1,
    out: str | os.PathLike[str],
    check_model: LanguageModel | str | None = None,
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
    fraction: float = 1.0, shard_field: str = "teacher",
) -> Planting:
    """Plant a canary-set file's canaries into a JSONL, CSV or text file (input untouched, outputs mode 0600)."""
    guard_outputs([canaries, data], [out])
    return plant_file(
        load_canary_set(canaries), data=data, field=field, out=out, position=position, seed=seed, data_format=data_format,
        shards=shards, fraction=fraction, shard_field=shard_field,
    )


def load_training_records(
    path: str | os.PathLike[str], *, field: str, label_field: str | None, shard_field: str = "teacher"
) -> list[Record]:
    """Private records of a JSONL file as pipeline input (with the teacher planting assigned, if any)."""
    rows = read_records(path, field)
    if label_field is not None:
        missing = [i for i, r in enumerate(rows, 1) if label_field not in r]
        if missing:
            raise InputError(f"{path} record {missing[0]}: no label field {label_field!r}; choose one with --label-field")
    return [
        Record(
            text=r[field], label=None if label_field is None else str(r[label_field]),
            teacher=r[shard_field] if isinstance(r.get(shard_field), int) else None, fields=r,
        )
        for r in rows
    ]


def teaching_path(prompt_path: str | os.PathLike[str]) -> Path:
    """Where the full teaching output (spec, artifacts) of a prompt file is kept."""
    return Path(f"{os.fspath(prompt_path)}.teaching.json")


def teach(
    pipeline: str,
    *,
    data: str | os.PathLike[str] | None,
    field: str = "text",
    label_field: str | None = None,
    out: str | os.PathLike[str],
    model: LanguageModel | str | None = "embedded",
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    eval_data: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    say: Callable[[str], None] = lambda _msg: None,
) -> TeachingOutput:
    """Run a pipeline on (planted) data; write the prompt to `out` and the teaching output beside it.

    A teaching output is cached under the cache folder by a hash of (pipeline, options, model id and
    revision, data, seed); a rerun reuses it unless `use_cache` is False. With `eval_data` (labelled
    held-out records) the output also carries the student's accuracy with the prompt.
    """
    if data is None and pipeline not in ("zero-shot", "prompt-file"):
        raise InputError(f"pipeline {pipeline!r} needs private data (--data)")
    option_files = [v for v in (options or {}).values() if isinstance(v, str) and os.path.isfile(v)]
    guard_outputs([data, eval_data, *option_files], [out, teaching_path(out)])
    records = load_training_records(data, field=field, label_field=label_field) if data is not None else []
    evals = load_training_records(eval_data, field=field, label_field=label_field or "label") if eval_data is not None else None
    options = dict(options or {})
    key = teaching_cache_key(pipeline, records, model=model if needs_model(pipeline) else None, seed=seed, options=options)
    cached = teaching_cache_path(key)
    output: TeachingOutput | None = None
    if use_cache and cached.is_file():
        try:
            output = TeachingOutput.model_validate(read_json(cached, what="cached teaching output"))
            say(f"reused the cached teaching output {cached} (--no-cache to run the pipeline again)")
        except (InputError, ValueError):
            output = None
    lm: LanguageModel | None = None
    if needs_model(pipeline) or evals is not None:
        lm = load_model(model) if isinstance(model, str) else model
    if output is None:
        output = run_pipeline(pipeline, records, model=lm if needs_model(pipeline) else None, seed=seed, options=options)
        make_folder(cached.parent, what="cache folder")
        write_json(cached, output.model_dump(mode="json"), private=True)
    if evals is not None:
        if lm is None:
            raise InputError("--eval-data needs a model to play the student (--model)")
        output = output.model_copy(update={"utility": student_accuracy(lm, output.prompt, evals, labels=options.get("labels"))})
    atomic_write(out, output.prompt, private=True)
    write_json(teaching_path(out), output.model_dump(mode="json"), private=True)
    return output


def teaching_cache_key(
    pipeline: str, records: Sequence[Record], *, model: LanguageModel | str | None, seed: int, options: Mapping[str, Any]
) -> str:
    """Hash of everything that determines a teaching output; for `command`, the program file's content too
    (argv[0], or the script an interpreter runs, argv[1]) so editing the script invalidates the cache."""
    if isinstance(model, LanguageModel):
        model_id: Any = {k: model.info().get(k) for k in ("name", "revision", "backend")}
    elif model == "embedded":
        model_id = f"embedded {embedded_version()}"
    elif isinstance(model, str) and os.path.exists(model):
        model_id = f"{os.path.abspath(model)} {os.path.getmtime(model)}"
    else:
        model_id = model
    files = {}
    if pipeline == "command":
        argv = parse_command(options.get("argv", ()))
        program = next((a for a in argv[:2] if os.path.isfile(a)), None)
        if program is not None:
            files[program] = hashlib.sha256(Path(program).read_bytes()).hexdigest()
    blob = json.dumps(
        {"pipeline": pipeline, "options": options, "model": model_id, "seed": seed, "files": files,
         "records": [r.model_dump() for r in records], "privacy_audit": versions().get("privacy-audit")},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def teaching_cache_path(key: str) -> Path:
    return cache_root() / "teaching" / f"{key}.json"


def read_teaching(prompt_path: str | os.PathLike[str]) -> TeachingOutput:
    """The teaching output for a prompt file: its sidecar when present (and matching), else a prompt-file record."""
    text = read_text(prompt_path, what="prompt file")
    sidecar = teaching_path(prompt_path)
    if sidecar.is_file():
        recorded = TeachingOutput.model_validate(read_json(sidecar, what="teaching output"))
        if recorded.prompt == text:
            return recorded
    return TeachingOutput(prompt=text, pipeline="prompt-file", options={"path": str(prompt_path)}, seed=0, model=None)


def build_report(
    teaching: TeachingOutput,
    canary_set: CanarySet,
    model: LanguageModel,
    *,
    mode: Mode = "exact",
    separator: str = DEFAULT_SEPARATOR,
    max_exact: int = DEFAULT_MAX_EXACT,
    include_secrets: bool = False,
    extraction: bool = True,
    search_budget: int = DEFAULT_SEARCH_BUDGET,
    members: Sequence[str] | None = None,
    non_members: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Score a teaching output against a canary set and wrap it in a report.

    With `members` (the private examples the teacher saw) and `non_members` (held-out examples of the
    same data), the report also holds the reconstruction-likelihood ROC.
    """
    result = score_prompt(
        model, teaching.prompt, canary_set, mode=mode, separator=separator, max_exact=max_exact,
        include_secrets=include_secrets, extraction=extraction, search_budget=search_budget, progress=progress,
    )
    run = RunSpec(
        pipeline=teaching.pipeline,
        pipeline_options=teaching.options,
        model=model.info(),
        seed=teaching.seed,
        versions=versions(),
        mode=mode,
        separator=separator,
        template=canary_set.template,
        space=canary_set.space,
        canary_seed=canary_set.seed,
        prompt_sha256=hashlib.sha256(teaching.prompt.encode("utf-8")).hexdigest(),
        prompt_chars=len(teaching.prompt),
        extraction=result.search,
        tokenization=result.boundary,
    )
    recon = None
    if members is not None and non_members is not None:
        recon = reconstruction(model, teaching.prompt + separator, members=members, non_members=non_members)
    return AuditReport(
        run=run, canaries=result.canaries, summary=result.summary, statistics=result.statistics,
        leaks=leak_report(teaching.artifacts), reconstruction=recon, utility=teaching.utility, prompt=teaching.prompt if include_secrets else None,
    )


def score(
    *,
    prompt: str | os.PathLike[str],
    canaries: str | os.PathLike[str],
    out: str | os.PathLike[str],
    model: LanguageModel | str = "embedded",
    model_options: Mapping[str, Any] | None = None,
    mode: Mode = "exact",
    max_exact: int = DEFAULT_MAX_EXACT,
    include_secrets: bool = False,
    extraction: bool = True,
    search_budget: int = DEFAULT_SEARCH_BUDGET,
    data: str | os.PathLike[str] | None = None,
    held_out: str | os.PathLike[str] | None = None,
    field: str = "text",
    label_field: str | None = None,
    progress: Progress | None = None,
) -> AuditReport:
    """Score a prompt file against a canary-set file; write the report JSON to `out`.

    With `data` (the planted data the pipeline ran on) the report adds reconstruction likelihood: the
    records the teacher saw against the records it did not (or those of `held_out`).
    """
    guard_outputs([prompt, canaries, data, held_out, teaching_path(prompt)], [out])
    teaching = read_teaching(prompt)
    canary_set = load_canary_set(canaries)
    check_mode(canary_set, mode=mode, max_exact=max_exact)
    members, non_members = membership_split(teaching, data=data, held_out=held_out, field=field, label_field=label_field)
    lm = load_model(model, **(model_options or {})) if isinstance(model, str) else model
    report = build_report(
        teaching, canary_set, lm, mode=mode, max_exact=max_exact, include_secrets=include_secrets,
        extraction=extraction, search_budget=search_budget, members=members, non_members=non_members, progress=progress,
    )
    save_report(report, out)
    return report


def membership_split(
    teaching: TeachingOutput,
    *,
    data: str | os.PathLike[str] | None,
    held_out: str | os.PathLike[str] | None,
    field: str,
    label_field: str | None,
) -> tuple[list[str] | None, list[str] | None]:
    """Private examples the teacher saw, and held-out ones, formatted as the pipeline showed them."""
    if data is None:
        if held_out is not None:
            raise InputError("--held-out needs --data (the planted data the pipeline ran on)")
        return None, None
    records = load_training_records(data, field=field, label_field=label_field)
    used = set(teaching.used_records) or set(range(len(records)))
    if max(used) >= len(records):
        raise InputError(f"{data} has {len(records)} records but the teaching output used record {max(used)}; pass the data it ran on")
    others = (
        load_training_records(held_out, field=field, label_field=label_field)
        if held_out is not None
        else [r for i, r in enumerate(records) if i not in used]
    )
    if not others:
        raise InputError("every record was seen by the teacher: pass held-out records with --held-out")
    labels = teaching.options.get("labels") or {}
    members = [format_example(records[i], labels) for i in sorted(used)]
    return members, [format_example(r, labels) for r in others]


def check_gate(
    report_path: str | os.PathLike[str], thresholds: Thresholds, *, write: bool = False
) -> GateOutcome:
    """Apply thresholds to a saved report; with `write`, store the outcome in the report (atomically)."""
    report = load_report(report_path)
    outcome = gate(report, thresholds)
    if write:
        save_report(report.model_copy(update={"gate": outcome}), report_path)
    return outcome


def render_report(
    report_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    html: str | os.PathLike[str] | None = None,
    markdown: str | os.PathLike[str] | None = None,
    junit: str | os.PathLike[str] | None = None,
    thresholds: Thresholds | None = None,
) -> list[AuditReport]:
    """Write HTML / Markdown / JUnit renderings of saved reports; thresholds add the gate's verdict.

    Several reports give side-by-side HTML and Markdown (with privacy against utility); JUnit takes one.
    """
    if html is None and markdown is None and junit is None:
        raise InputError("say what to write: --html FILE, --md FILE and/or --junit FILE")
    paths = [report_path] if isinstance(report_path, (str, os.PathLike)) else list(report_path)
    guard_outputs(paths, [html, markdown, junit])
    if len({os.path.abspath(o) for o in (html, markdown, junit) if o is not None}) < sum(o is not None for o in (html, markdown, junit)):
        raise InputError("--html, --md and --junit must name different files")
    if not paths:
        raise InputError("give at least one report")
    if junit is not None and len(paths) > 1:
        raise InputError("--junit renders one report at a time")
    reports = [load_report(p) for p in paths]
    if thresholds is not None:
        reports = [r.model_copy(update={"gate": gate(r, thresholds)}) for r in reports]
    several = len(reports) > 1
    if html is not None:
        atomic_write(html, render_comparison_html(reports) if several else render_html(reports[0]))
    if markdown is not None:
        atomic_write(markdown, render_comparison(reports) if several else render_markdown(reports[0]))
    if junit is not None:
        atomic_write(junit, render_junit(reports[0]))
    return reports


def compare_reports(old: str | os.PathLike[str], new: str | os.PathLike[str], *, tolerance: float = 0.5) -> Comparison:
    """Changes between two saved reports."""
    if tolerance < 0:
        raise InputError("--tolerance must be >= 0")
    return compare(load_report(old), load_report(new), tolerance=tolerance)


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    reports: tuple[AuditReport, ...]
    markdown: str


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    model: LanguageModel | str = "embedded",
    pipelines: Sequence[str] = ("raw", "instructions"),
    seed: int = 0,
    count: int = 3,
    references: int = 20,
    examples: int = 8,
    held_out_count: int = 64,
    space: str = "digits:4",
    progress: Progress | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """The whole chain on bundled SMS-spam messages: a teacher's 8 private examples get 3 canaries
    (4-digit codes); each pipeline teaches from them; each prompt is scored exactly over all 10^4 codes.
    """
    out = make_folder(out_dir, what="demo output folder")
    bundled = files("privacy_audit") / "data" / DEMO_DATA
    rows = read_records(str(bundled), "text")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    teacher = [rows[int(i)] for i in sorted(order[:examples])]
    held_out = [Record(text=rows[int(i)]["text"], label=rows[int(i)]["label"]) for i in sorted(order[examples : examples + held_out_count])]
    atomic_write(out / "teacher.jsonl", dump_jsonl(teacher), private=True)
    make_canaries(
        template=DEMO_TEMPLATE, space=space, count=count, references=references, seed=seed, repetitions=1,
        out=out / "canaries.json",
    )
    plant(out / "canaries.json", data=out / "teacher.jsonl", field="text", out=out / "planted.jsonl", seed=seed)
    say(f"planted {count} canaries into {examples} private SMS examples ({out / 'planted.jsonl'})")
    lm = load_model(model) if isinstance(model, str) else model
    canary_set = load_canary_set(out / "canaries.json")
    reports = []
    for name in pipelines:
        say(f"teaching with pipeline '{name}' ...")
        teaching = teach(
            name, data=out / "planted.jsonl", field="text", label_field="label", out=out / f"prompt-{name}.txt",
            model=lm, seed=seed, options={"examples": examples, "labels": SMS_LABELS}, use_cache=False,
        )
        teaching = teaching.model_copy(update={"utility": student_accuracy(lm, teaching.prompt, held_out, labels=SMS_LABELS)})
        say(f"scoring {canary_set.secret_space.size:,} candidate codes against the '{name}' prompt ...")
        members = [format_example(r, SMS_LABELS) for r in load_training_records(out / "planted.jsonl", field="text", label_field="label")]
        report = build_report(
            teaching, canary_set, lm, members=members, non_members=[format_example(r, SMS_LABELS) for r in held_out], progress=progress
        )
        save_report(report, out / f"report-{name}.json")
        atomic_write(out / f"report-{name}.md", render_markdown(report))
        reports.append(report)
    markdown = render_comparison(reports)
    atomic_write(out / "summary.md", markdown)
    atomic_write(out / "summary.html", render_comparison_html(reports))
    return DemoResult(out_dir=out, reports=tuple(reports), markdown=markdown)
