"""The CLI's file-in/file-out wrappers that run no model (teach, score and run are in `audit_runs`): each reads its
files, calls the library on objects, and writes its outputs.

The chain itself (plant -> teach -> score -> report) is `chain.run_chain`; nothing here computes a number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from privacy_audit._io import (
    all_or_nothing, atomic_write, guard_outputs,
)
from privacy_audit.canaries import (
    CanarySet, Planting, generate_canary_set, load_canary_set, parse_space, plant_file, save_canary_set,
)
from privacy_audit.canaries.canary import Design
from privacy_audit.canaries.echo import ECHO_SPACE, echo_template
from privacy_audit.canaries.rare import rare_design
from privacy_audit.canaries.checks import design_checks
from privacy_audit.canaries.planting import Position, detect_format, planting_path, read_table
from privacy_audit.canaries.presets import load_preset
from privacy_audit.errors import InputError
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.models import LanguageModel, load_model
from privacy_audit.reports import (
    AuditReport, GateOutcome, holds_secrets, load_report, render_comparison, render_markdown, save_report,
)
from privacy_audit.reports.compare import Comparison, compare
from privacy_audit.reports.html import render_comparison_html, render_html
from privacy_audit.reports.junit import render_junit

Progress = Callable[[int, int], None]


def make_canaries(
    *, template: str | None = None, space: str | None = None, preset: str | None = None, count: int, references: int,
    seed: int, repetitions: int = 1, out: str | os.PathLike[str], check_model: LanguageModel | str | None = None,
    randomized: bool = False, design: Design = "template",
    data: str | os.PathLike[str] | None = None, field: str = "text", data_format: str | None = None,
    prefix_words: int = 10,
) -> CanarySet:
    """Generate a canary set from a template and space or a preset, run the design checks, write it (mode 0600).

    The echo design (for data-only audits) draws its template, `<a record's first prefix_words words> {secret}`,
    from `data` with the seed, and its secret space defaults to `ECHO_SPACE`. The rare design fills the template's
    slot with words `check_model` finds least likely there (`canaries.rare`), its space built from them."""
    if preset is not None and (template is not None or space is not None):
        raise InputError("give --preset, or --template with --space, not both")
    if (design == "echo") != (data is not None):
        raise InputError("the echo design draws its prefix from --data, and only it reads --data")
    if design == "echo" and (template is not None or preset is not None):
        raise InputError("the echo design draws its template from --data: give --space only, not --template/--preset")
    if design == "rare" and (check_model is None or template is None or space is not None):
        raise InputError("the rare design picks its secrets' words with a model: give --template and --check-model, "
                         "not --space or --preset")
    guard_outputs([preset if preset is not None and os.path.exists(preset) else None, data], [out])
    derived: dict[str, tuple[str, ...]] = {}
    if preset is not None:
        p = load_preset(preset)
        template, space, derived = p.template, p.space, p.derived
    if data is not None:
        rows, _ = read_table(data, field, detect_format(data, data_format))
        template = echo_template([r[field] for r in rows], prefix_words=prefix_words,
                                 rng=np.random.default_rng([seed, 1]))
        space = space or ECHO_SPACE
    if template is None or (space is None and design != "rare"):
        raise InputError("give --template and --space (or --preset NAME; see 'privacy-audit canaries list-presets')")
    lm = load_model(check_model) if isinstance(check_model, str) else check_model
    if design == "rare" and lm is not None:
        template, space = rare_design(template, lm)
    assert space is not None  # every design has its space by now
    guard_outputs(parse_space(space).files, [out])
    canary_set = generate_canary_set(
        template=template, space=space, count=count, references=references, seed=seed, repetitions=repetitions,
        derived=derived, preset=preset, randomized=randomized,
    ).model_copy(update={"design": design})
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


