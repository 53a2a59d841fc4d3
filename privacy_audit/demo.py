"""`privacy-audit demo`: the chain on bundled SMS-spam messages, a report per pipeline and a side-by-side summary.

A teacher's 8 private examples get 3 canaries (4-digit codes); each pipeline teaches from them; each
prompt is scored exactly over all 10^4 codes, with the student's accuracy and membership attacks (beside a blind
control) on 64 held-out messages.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from privacy_audit._io import all_or_nothing, atomic_write, dump_jsonl, make_folder, read_records, write_json
from privacy_audit.canaries import generate_canary_set, save_canary_set
from privacy_audit.canaries.checks import design_checks
from privacy_audit.canaries import PlantOptions
from privacy_audit.chain import TeachOptions, run_chain
from privacy_audit.gate import apply_gate
from privacy_audit.models import LanguageModel, ModelSpec, load_model
from privacy_audit.pipelines import configure, teaching_path, to_records
from privacy_audit.reports import AuditReport, holds_secrets, render_comparison, render_markdown, save_report
from privacy_audit.reports.html import render_comparison_html

DEMO_DATA = "sms_spam_demo.jsonl"
DEMO_TEMPLATE = "The secret code is {secret}"
SMS_LABELS = {"ham": "not spam"}


@dataclass(frozen=True)
class DemoResult:
    out_dir: Path
    reports: tuple[AuditReport, ...]
    markdown: str


def run_demo(
    out_dir: str | os.PathLike[str], *, model: LanguageModel | ModelSpec | str = "embedded",
    pipelines: Sequence[str] = ("raw", "instructions"), seed: int = 0,
    count: int = 3, references: int = 20, examples: int = 8, held_out_count: int = 64, space: str = "digits:4",
    progress: Callable[[int, int], None] | None = None, say: Callable[[str], None] = lambda _msg: None,
) -> DemoResult:
    """Run the chain once per pipeline on the same teacher data and canaries; write every file into `out_dir`
    (all of them at the end, or none)."""
    out = make_folder(out_dir, what="demo output folder")
    if not isinstance(model, LanguageModel):
        say(f"loading the model ({model.spec if isinstance(model, ModelSpec) else model}) ...")
    lm = model if isinstance(model, LanguageModel) else load_model(model)
    with all_or_nothing():
        return _demo(out, lm, pipelines, seed, count, references, examples, held_out_count, space, progress, say)


def _demo(
    out: Path, lm: LanguageModel, pipelines: Sequence[str], seed: int, count: int, references: int, examples: int,
    held_out_count: int, space: str, progress: Callable[[int, int], None] | None, say: Callable[[str], None],
) -> DemoResult:
    rows = read_records(str(files("privacy_audit") / "data" / DEMO_DATA), "text")
    order = np.random.default_rng(seed).permutation(len(rows))
    teacher = [rows[int(i)] for i in sorted(order[:examples])]
    held_out = to_records(
        [rows[int(i)] for i in sorted(order[examples : examples + held_out_count])], field="text", label_field="label"
    )
    canary_set = generate_canary_set(template=DEMO_TEMPLATE, space=space, count=count, references=references, seed=seed)
    canary_set = canary_set.model_copy(update={"checks": design_checks(canary_set)})
    save_canary_set(canary_set, out / "canaries.json")
    atomic_write(out / "teacher.jsonl", dump_jsonl(teacher), private=True)
    reports = []
    for name in pipelines:
        say(
            f"teaching with pipeline '{name}', then scoring {canary_set.secret_space.size:,} candidate codes against "
            "its prompt ..."
        )
        pipeline = configure(name, {"examples": examples, "labels": SMS_LABELS})
        result = run_chain(
            teacher, canary_set, lm, plant_options=PlantOptions(field="text", label_field="label", seed=seed),
            teach_options=TeachOptions(pipeline, seed=seed), evals=held_out, held_out=held_out, progress=progress,
        )
        if not reports:
            atomic_write(out / "planted.jsonl", dump_jsonl(result.planted.rows), private=True)
            say(f"planted {count} canaries into {examples} private SMS examples ({out / 'planted.jsonl'})")
        atomic_write(out / f"prompt-{name}.txt", result.teaching.prompt, private=True)
        write_json(teaching_path(out / f"prompt-{name}.txt"), result.teaching.output.model_dump(mode="json"),
                   private=True)
        save_report(result.report, out / f"report-{name}.json")
        atomic_write(out / f"report-{name}.md", render_markdown(result.report), private=holds_secrets(result.report))
        reports.append(result.report)
    shown = [r.model_copy(update={"gate": apply_gate(r)}) for r in reports]  # the default gate's verdict, shown
    markdown = render_comparison(shown)
    private = any(holds_secrets(r) for r in reports)
    atomic_write(out / "summary.md", markdown, private=private)
    atomic_write(out / "summary.html", render_comparison_html(shown), private=private)
    return DemoResult(out_dir=out, reports=tuple(reports), markdown=markdown)
