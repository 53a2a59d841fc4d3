"""The CLI's file-in/file-out wrappers of the commands that run models: teach, score and run. Each reads its
files, calls the chain on objects (`chain`), and writes its outputs; the CLI imports this module only for them,
so that gate, report, compare and canaries start without loading the scoring stack."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from privacy_audit._io import (
    all_or_nothing, atomic_write, dump_jsonl, guard_outputs, make_folder, read_json, read_records, read_text,
    write_json,
)
from privacy_audit.canaries import CanarySet, generate_canary_set, load_canary_set, save_canary_set
from privacy_audit._registry import Configured
from privacy_audit.chain import ChainResult, build_report, membership_split, run_chain
from privacy_audit.config import AuditConfig
from privacy_audit.errors import InputError
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.models import LanguageModel, ModelSpec
from privacy_audit.pipelines import (
    PrivacyClaim, Record, TeachingOutput, student_accuracy, teach_records, teaching_path, to_records, with_claim,
)
from privacy_audit.reports import (
    AuditReport, GateOutcome, holds_secrets, render_comparison, render_markdown, save_report,
)
from privacy_audit.reports.html import render_html
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.rank import check_mode

Progress = Callable[[int, int], None]


def load_training_records(
    path: str | os.PathLike[str], *, field: str, label_field: str | None, shard_field: str = "teacher"
) -> list[Record]:
    """Private records of a JSONL file as pipeline input (with the teacher planting assigned, if any)."""
    try:
        return to_records(read_records(path, field), field=field, label_field=label_field, shard_field=shard_field)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def teach(
    pipeline: Configured, *, data: str | os.PathLike[str] | None, field: str = "text", label_field: str | None = None,
    out: str | os.PathLike[str], model: LanguageModel | ModelSpec | None = None, seed: int = 0,
    eval_data: str | os.PathLike[str] | None = None, use_cache: bool = True,
    say: Callable[[str], None] = lambda _msg: None, claim: PrivacyClaim | None = None,
) -> TeachingOutput:
    """Run a configured pipeline on (planted) data; write the prompt to `out` and the teaching output beside it.

    A teaching output is cached under the cache folder (see `pipelines.teach_records`); a rerun reuses it
    unless `use_cache` is False (then the pipeline runs again and refreshes the cache). With `eval_data`
    (labelled held-out records) the output also carries the student's accuracy, on the prompt's labels. A model's
    options given to a pipeline that runs no model are an error, not silently dropped.
    """
    needs, name = pipeline.component.needs, pipeline.name
    uses_model = "model" in needs or eval_data is not None
    if not uses_model and isinstance(model, ModelSpec) and model.options.given:
        unused = ", ".join(sorted(model.options.given))
        raise InputError(f"pipeline {name!r} runs no model, so the model option {unused} would not be used; drop it "
                         "(or give --eval-data to score the student)")
    if data is None and "data" in needs:
        raise InputError(f"pipeline {name!r} needs private data (--data)")
    guard_outputs([data, eval_data, *pipeline.component.cache_files(pipeline.given)], [out, teaching_path(out)])
    records = load_training_records(data, field=field, label_field=label_field) if data is not None else []
    evals = (
        load_training_records(eval_data, field=field, label_field=label_field or "label")
        if eval_data is not None
        else None
    )
    lm: LanguageModel | None = None
    if uses_model:
        if model is None:
            raise InputError(f"pipeline {name!r} needs a model (--model)" if "model" in needs
                             else "--eval-data needs a model to play the student (--model)")
        lm = model.load() if isinstance(model, ModelSpec) else model
    output = teach_records(pipeline, records, lm, seed=seed, cache="use" if use_cache else "refresh", say=say)
    output = with_claim(output, claim)  # the teacher's promise, as the user states it, travels with the prompt
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
    model: LanguageModel | ModelSpec, scoring: ScoringOptions = DEFAULT_SCORING,
    data: str | os.PathLike[str] | None = None, held_out: str | os.PathLike[str] | None = None, field: str = "text",
    label_field: str | None = None, eval_data: str | os.PathLike[str] | None = None, progress: Progress | None = None,
) -> AuditReport:
    """Score a prompt file against a canary-set file; write the report JSON to `out`.

    With `data` (the planted data the pipeline ran on) the report adds reconstruction likelihood: the
    records the teacher saw against the records it did not (or those of `held_out`). With `eval_data` (labelled
    held-out records) the scorer plays the student and the report holds its accuracy with the prompt.
    """
    guard_outputs([prompt, canaries, data, held_out, eval_data, teaching_path(prompt)], [out])
    evals = _evals(eval_data, field, label_field)
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
    lm = model.load() if isinstance(model, ModelSpec) else model
    lm.require("score")
    report = build_report(
        _taught(teaching, lm, evals), canary_set, lm, scoring, members=members, non_members=non_members,
        progress=progress,
    )
    save_report(report, out)
    return report


def _evals(eval_data: str | os.PathLike[str] | None, field: str, label_field: str | None) -> list[Record] | None:
    """The labelled held-out records a student is measured on (read before any model loads), or None."""
    return None if eval_data is None else load_training_records(eval_data, field=field, label_field=label_field or
                                                                "label")


def _taught(teaching: TeachingOutput, student: LanguageModel, evals: Sequence[Record] | None) -> TeachingOutput:
    """The teaching output with `student`'s accuracy on `evals` in place of any it carried."""
    if evals is None:
        return teaching
    return teaching.model_copy(update={"utility": student_accuracy(student, teaching.prompt, evals,
                                                                   labels=teaching.labels)})


def prompt_files(prompts: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The prompt files given: each file, and each folder's `*.txt` files (teaching sidecars aside), in order."""
    out: list[Path] = []
    for p in map(Path, prompts):
        out += sorted(f for f in p.glob("*.txt") if f.is_file()) if p.is_dir() else [p]
    if not out:
        raise InputError(f"no prompt files (*.txt) in {', '.join(map(str, prompts))}")
    stems = [f.stem for f in out]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise InputError(f"two prompts would write the same report {repeated[0]}.json; give them different names")
    return out


def score_prompts(
    *, prompts: Sequence[str | os.PathLike[str]], canaries: str | os.PathLike[str], out: str | os.PathLike[str],
    model: LanguageModel | ModelSpec, scoring: ScoringOptions = DEFAULT_SCORING, progress: Progress | None = None,
    eval_data: str | os.PathLike[str] | None = None, field: str = "text", label_field: str | None = None,
    verdict: Thresholds | None = None,
) -> list[tuple[Path, AuditReport]]:
    """Score several prompt files (or folders of them) against one canary set with one model loaded once: one
    report per prompt, `<out>/<prompt name>.json`, and `<out>/summary.md` side by side, all written at the end
    (the output folder is made then too, so a scorer refused on the way leaves nothing behind). With `eval_data`
    the scorer plays the student on each prompt; `verdict` (thresholds) puts each report's verdict at the head of
    the summary (the reports themselves hold none: `privacy-audit gate` applies it)."""
    files = prompt_files(prompts)
    evals = _evals(eval_data, field, label_field)
    canary_set = load_canary_set(canaries)
    check_mode(canary_set, scoring)
    teachings = [read_teaching(f) for f in files]
    folder = Path(out)
    targets = [folder / f"{f.stem}.json" for f in files]
    inputs = [canaries, eval_data, *files, *(teaching_path(f) for f in files), *canary_set.secret_space.files]
    guard_outputs(inputs, [*targets, folder / "summary.md"], creates=[folder])
    lm = model.load() if isinstance(model, ModelSpec) else model
    lm.require("score")
    reports = [build_report(_taught(t, lm, evals), canary_set, lm, scoring, progress=progress) for t in teachings]
    shown = reports if verdict is None else [r.model_copy(update={"gate": apply_gate(r, verdict)}) for r in reports]
    make_folder(folder, what="output folder")
    with all_or_nothing():
        for target, report in zip(targets, reports):
            save_report(report, target)
        private = any(holds_secrets(r) for r in reports)
        atomic_write(folder / "summary.md", render_comparison(shown, names=[f.stem for f in files]), private=private)
    return list(zip(targets, reports))


@dataclass(frozen=True)
class RunResult:
    """One pipeline's run: its report, the config's gate on it (None without a [gate]), and the folder it is in."""

    report: AuditReport
    gate: GateOutcome | None
    out_dir: Path


@dataclass(frozen=True)
class RunResults:
    """What `run` wrote: one `RunResult` per pipeline, under the run's folder."""

    runs: tuple[RunResult, ...]
    out_dir: Path

    @property
    def passed(self) -> bool:
        """No pipeline's report failed the config's gate."""
        return all(r.gate is None or r.gate.passed for r in self.runs)

    def markdown(self) -> str:
        """The report (one pipeline), or the pipelines' reports side by side."""
        if len(self.runs) == 1:
            return render_markdown(self.runs[0].report)
        return render_comparison([r.report for r in self.runs], names=[r.out_dir.name for r in self.runs])

    def wrote(self) -> str:
        """The line saying where the outputs are."""
        if len(self.runs) == 1:
            return f"wrote {self.runs[0].out_dir}/report.json, report.md, report.html"
        names = ", ".join(r.out_dir.name for r in self.runs)
        return f"wrote {self.out_dir}/summary.md and a folder per pipeline ({names}) with report.json, .md, .html"


RUN_OUTPUTS = (
    "canaries.json", "planted.jsonl", "prompt.txt", "prompt.txt.teaching.json", "report.json", "report.md",
    "report.html",
)


def run_folders(out: Path, cfg: AuditConfig) -> list[Path]:
    """Where each pipeline's outputs go: the run's folder for `[pipeline]`; for `[[pipelines]]`, a folder per
    pipeline named after it (name-2, name-3 for a pipeline listed again)."""
    if cfg.pipelines is None:
        return [out]
    names: list[str] = []
    for p in cfg.pipelines:
        repeats = sum(n == p.name or n.startswith(f"{p.name}-") for n in names)
        names.append(p.name if not repeats else f"{p.name}-{repeats + 1}")
    return [out / n for n in names]


def run_audit(cfg: AuditConfig, *, say: Callable[[str], None] = lambda _m: None) -> RunResult:
    """`run CONFIG` for a config with one pipeline (`run_audits` runs several)."""
    if cfg.pipelines is not None and len(cfg.pipelines) > 1:
        raise InputError("the config lists several pipelines; run_audits runs them all")
    return run_audits(cfg, say=say).runs[0]


def run_audits(
    cfg: AuditConfig, *, say: Callable[[str], None] = lambda _m: None, progress: Progress | None = None,
) -> RunResults:
    """`run CONFIG`: plant the canaries, teach with each pipeline and score each prompt with the scorer loaded once,
    then the config's gate on each report. Outputs (canaries, planted data, prompt, report JSON, Markdown and HTML)
    go into cfg.out, or for `[[pipelines]]` into a folder per pipeline beside a summary.md, all written together at
    the end or not at all."""
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
    out = Path(cfg.out)
    folders = run_folders(out, cfg)
    summary = [out / "summary.md"] if cfg.pipelines is not None else []
    guard_outputs(cfg.input_files(), [f / name for f in folders for name in RUN_OUTPUTS] + summary,
                  creates=[out, *folders])
    teacher, scorer = cfg.load_models()
    scorer.require("score")  # a scorer that cannot score is refused before any teaching (a served one: its probe)
    thresholds = cfg.thresholds()
    done = []
    for pipeline in cfg.teaching_pipelines:
        say(f"planting {len(canary_set.planted)} canaries into {len(rows)} records, teaching with '{pipeline.name}' "
            f"({teacher.name}), scoring with {scorer.name} ...")
        result = run_chain(
            rows, canary_set, teacher=teacher, scorer=scorer, plant_options=d.plant_options(c.seed),
            teach_options=pipeline.teach_options(cache="use"), scoring=cfg.scoring.options(), evals=evals,
            membership=cfg.scoring.membership, progress=progress, say=say,
        )
        outcome = apply_gate(result.report, thresholds) if thresholds is not None else None
        done.append((result, result.report if outcome is None else result.report.model_copy(update={"gate": outcome})))
    runs = RunResults(tuple(RunResult(r, r.gate, f) for f, (_, r) in zip(folders, done)), out)
    for folder in [out, *folders]:
        make_folder(folder, what="output folder")
    with all_or_nothing():
        for folder, (result, report) in zip(folders, done):
            _write_run(folder, canary_set, result, report)
        if summary:
            atomic_write(summary[0], runs.markdown(), private=any(holds_secrets(r) for _, r in done))
    return runs


def _write_run(folder: Path, canary_set: CanarySet, result: ChainResult, report: AuditReport) -> None:
    """One pipeline's outputs."""
    private = holds_secrets(report)
    save_canary_set(canary_set, folder / "canaries.json")
    atomic_write(folder / "planted.jsonl", dump_jsonl(result.planted.rows), private=True)
    atomic_write(folder / "prompt.txt", result.teaching.prompt, private=True)
    write_json(teaching_path(folder / "prompt.txt"), result.teaching.output.model_dump(mode="json"), private=True)
    save_report(report, folder / "report.json")
    atomic_write(folder / "report.md", render_markdown(report), private=private)
    atomic_write(folder / "report.html", render_html(report), private=private)
