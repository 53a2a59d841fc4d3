"""The privacy-audit command line: a thin click layer, one library call per command (modules that load the scoring
stack are imported by the commands that need them, so gate, report, compare and canaries start fast).

Exit codes: 0 success or gate passed, 1 gate failed, 2 bad usage or input, 3 internal error, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from privacy_audit import audit
from privacy_audit._cli_support import (
    EXIT_GATE_FAILED, SEED, AuditGroup, RuleCommand, claim_options, model_option, model_spec, parse_options,
    progress, say, scored_line, threshold_options, thresholds,
)
from privacy_audit.config import load_config
from privacy_audit.gate import load_thresholds, verdict_lines
from privacy_audit.models import list_backends
from privacy_audit.canaries import DESIGNS, brief, load_canary_set
from privacy_audit.canaries.planting import FORMATS, POSITIONS
from privacy_audit.canaries.presets import list_presets
from privacy_audit.pipelines import PrivacyClaim, pipeline_names
from privacy_audit.reports import render_markdown
from privacy_audit.reports.text import clean
from privacy_audit.reports.trials import render_trials_markdown
from privacy_audit.scoring.options import ScoringOptions

SCORING = ScoringOptions()

@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="privacy-audit")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Audit how much private data leaks through LLM social learning."""
    ctx.meta["privacy_audit.debug"] = debug
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@main.command()
@click.option("--out", "out_dir", default="privacy-audit-demo", show_default=True, type=click.Path(file_okay=False))
@model_option
@click.option("--seed", default=0, show_default=True, type=SEED)
def demo(out_dir: str, model: str, model_options: tuple[str, ...], seed: int) -> None:
    """Plant canaries in SMS messages, teach with raw and instructions pipelines, score, and compare."""
    from privacy_audit.demo import run_demo

    result = run_demo(out_dir, model=model_spec(model, model_options), seed=seed, progress=progress("scoring"),
                      say=say)
    click.echo(result.markdown)
    click.echo(f"Reports, prompts and canaries are in {result.out_dir}/ (canary files are private, mode 0600).")


@main.command("models")
def models_command() -> None:
    """The model backends: what each can do, and its options (set with -m KEY=VALUE or a config's options table)."""
    for backend in list_backends():
        click.echo(f"{backend.name}: {backend.summary}")
        click.echo(f"  can: {', '.join(backend.provides) or 'nothing declared'}")
        for option in backend.options:
            click.echo(f"  -m {option}")


@main.group()
def canaries() -> None:
    """Make canary sets and plant them into data."""


@canaries.command("generate")
@click.option("--template", default=None, help='Canary pattern with one {secret} slot, e.g. "The secret code is '
              '{secret}" (at most 1,000 characters).')
@click.option("--space", default=None, help="Secret space of at least 2 secrets: digits:4, hex:8, alnum:6, names, "
              "words:a,b,c, words:@FILE, slot=SPEC;slot=SPEC.")
@click.option("--preset", default=None, help="A preset instead of --template/--space (see list-presets), or a .toml "
              "file.")
@click.option("--count", default=5, show_default=True, type=click.IntRange(1, 10_000_000), help="Canaries to plant.")
@click.option("--references", default=20, show_default=True, type=click.IntRange(0, 10_000_000),
              help="Never-planted references.")
@click.option("--repetitions", default=1, show_default=True, type=click.IntRange(1, 10_000),
              help="Copies of each canary to plant.")
@click.option("--check-model", default=None, help="Check tokenization with this model's tokenizer (e.g. embedded); "
              "the rare design's words are the ones it finds least likely.")
@click.option("--seed", required=True, type=SEED)
@click.option("--randomized-inclusion", "randomized", is_flag=True,
              help="Plant each of the COUNT + REFERENCES canaries by its own fair coin (the one-run epsilon design).")
@click.option("--design", type=click.Choice(list(DESIGNS)), default="template", show_default=True,
              help="echo: for data-only audits, an in-distribution prefix drawn from --data, then a random secret "
                   "(--space, alnum:10 by default); rare: words --check-model finds least likely after --template.")
@click.option("--data", default=None, type=click.Path(dir_okay=False),
              help="Records (JSONL, CSV or text) the echo design draws its prefix from.")
@click.option("--field", default="text", show_default=True, help="The data's text field (echo design).")
@click.option("--prefix-words", default=10, show_default=True, type=click.IntRange(1, 200), help="Words of the echo "
              "prefix.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def canaries_generate(
    template: str | None, space: str | None, preset: str | None, count: int, references: int, repetitions: int,
    check_model: str | None, seed: int, out: str, randomized: bool, design: str, data: str | None, field: str,
    prefix_words: int) -> None:
    """Draw canaries and references uniformly without replacement; write the set (mode 0600)."""
    made = audit.make_canaries(
        template=template, space=space, preset=preset, count=count, references=references, seed=seed,
        repetitions=repetitions, out=out, check_model=check_model, randomized=randomized,
        design=next(d for d in DESIGNS if d == design), data=data, field=field, prefix_words=prefix_words,
    )
    click.echo(f"wrote {out}: {len(made.planted)} canaries + {len(made.references)} references from "
               f"{brief(made.space)} (|S| = {made.secret_space.size:,}); secrets not shown")
    c = made.checks
    if c is not None and c.boundary_note is not None:
        click.echo(f"tokenization ({c.tokenizer}): {c.scored_tokens_min}-{c.scored_tokens_max} scored tokens per "
                   f"canary; {c.boundary_note}")


@canaries.command("show")
@click.argument("canary_set", type=click.Path(dir_okay=False))
@click.option("--show-secrets", is_flag=True, help="Print the secrets too (they are private).")
def canaries_show(canary_set: str, show_secrets: bool) -> None:
    """Describe a canary set: template, space, counts, design checks (secrets only with --show-secrets)."""
    cs = load_canary_set(canary_set)
    click.echo(f"template: {clean(cs.template)}\nspace: {brief(cs.space)} (|S| = {cs.secret_space.size:,})"
               f"\nseed: {cs.seed}\npreset: {cs.preset or '-'}\ndesign: {cs.design}"
               f"\ncanaries: {len(cs.planted)} planted, {len(cs.references)} references")
    for key, value in (cs.checks.model_dump(exclude_none=True) if cs.checks is not None else {}).items():
        click.echo(f"check {key}: {value}")
    for c in cs.canaries:
        click.echo(f"{c.id}\t{'planted' if c.planted else 'reference'}" + (f"\t{c.secret}" if show_secrets else ""))


@canaries.command("list-presets")
def canaries_list_presets() -> None:
    """The shipped canary presets."""
    for p in list_presets():
        click.echo(f"{p.name:12s} {p.space:40s} {p.description}")


@canaries.command("plant")
@click.argument("canary_set", type=click.Path(dir_okay=False))
@click.option(
    "--data", required=True, type=click.Path(dir_okay=False), help="JSONL, CSV or text file of private records."
)
@click.option("--field", default="text", show_default=True, help="Text field (JSONL) or column (CSV) to plant into.")
@click.option(
    "--format", "data_format", type=click.Choice(FORMATS), default=None,
    help="Data format (default: from the extension).",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--position", type=click.Choice(POSITIONS), default="append", show_default=True)
@click.option("--shards", type=click.IntRange(min=1), default=None, help="Split the records among this many teachers.")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Fraction of the teachers' shards each canary goes into (needs --shards; default all).")
@click.option("--shard-field", default="teacher", show_default=True, help="Column that records each record's teacher.")
@click.option("--seed", default=0, show_default=True, type=SEED)
def canaries_plant(
    canary_set: str, data: str, field: str, data_format: str | None, out: str, position: str, shards: int | None,
    fraction: float | None, shard_field: str, seed: int,
) -> None:
    """Plant a canary set into a copy of DATA (the input is never modified)."""
    planting = audit.plant(
        canary_set,
        data=data,
        field=field,
        out=out,
        position=position,
        seed=seed,  # type: ignore[arg-type]
        data_format=data_format,
        shards=shards,
        fraction=fraction,
        shard_field=shard_field,
    )
    click.echo(
        f"wrote {out}: {len(planting.insertions)} insertions into {planting.records_out} records; "
        f"planting record in {out}.planting.json"
    )
    if planting.template_already_in_data:
        click.echo(
            f"warning: the template's text already occurs in {planting.template_already_in_data} records of {data}",
            err=True,
        )


@main.command()
@click.option("--pipeline", required=True, type=click.Choice(pipeline_names()))
@click.option("--data", type=click.Path(dir_okay=False), help="JSONL file of (planted) private records.")
@click.option("--field", default="text", show_default=True)
@click.option("--label-field", default=None, help="Label field; examples are shown as 'Text: ...' / 'Class: ...'.")
@click.option("--label-map", multiple=True, metavar="FROM=TO", help="Rename a label, e.g. ham='not spam'.")
@click.option("--examples", type=int, default=None,
              help="Private examples the teacher sees (raw, instructions; default 8).")
@click.option("--temperature", type=float, default=None, help="Sampling temperature (0 = greedy).")
@click.option("--prompt-file", default=None, type=click.Path(dir_okay=False), help="For --pipeline prompt-file.")
@click.option("--command", "argv", default=None,
              help="For --pipeline command: the program and its arguments ({input} = data file).")
@click.option("--timeout", type=float, default=None,
              help="For --pipeline command: seconds before the program is killed.")
@click.option("-o", "--option", "extra", multiple=True, metavar="KEY=VALUE",
              help="Any pipeline option, e.g. -o teachers=8 -o n=4 -o aggregator=voting (examples pipeline).")
@click.option(
    "--eval-data", type=click.Path(dir_okay=False), help="Labelled held-out JSONL: adds the student's accuracy."
)
@click.option("--no-cache", is_flag=True, help="Run the pipeline even if a cached teaching output exists.")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@model_option
@claim_options
@click.option("--seed", default=0, show_default=True, type=SEED)
def teach(
    pipeline: str, data: str | None, field: str, label_field: str | None, label_map: tuple[str, ...],
    examples: int | None, temperature: float | None, prompt_file: str | None, argv: str | None, timeout: float | None,
    extra: tuple[str, ...], eval_data: str | None, no_cache: bool, out: str, model: str, model_options: tuple[str, ...],
    claim: PrivacyClaim | None, seed: int,
) -> None:
    """Run a teaching pipeline with a teacher model (--model); write the prompt to OUT (and OUT.teaching.json)."""
    options = parse_options(extra)
    if label_map:
        pairs = [m.partition("=") for m in label_map]
        if any(not sep for _, sep, _ in pairs):
            raise click.BadParameter("use FROM=TO", param_hint="--label-map")
        options["labels"] = {a: b for a, _, b in pairs}
    for key, value in (("examples", examples), ("temperature", temperature), ("path", prompt_file), ("argv", argv),
                       ("timeout", timeout)):
        if value is not None:
            options[key] = value
    from privacy_audit.audit_runs import teach as run_teach
    from privacy_audit.pipelines import configure

    output = run_teach(configure(pipeline, options), data=data, field=field, label_field=label_field, out=out,
                       model=model_spec(model, model_options), seed=seed, eval_data=eval_data,
                       use_cache=not no_cache, say=say, claim=claim)
    u = output.utility
    utility = "" if u is None else f"; student accuracy {u.accuracy:.3f} on {u.examples} examples"
    click.echo(f"wrote {out}: {len(output.prompt):,} characters from pipeline '{pipeline}'{utility}")


@main.command()
@click.option("--prompt", "prompts", required=True, multiple=True, type=click.Path(),
              help="Teaching prompt file; repeat it, or give a folder of *.txt files, to score several with one model "
                   "load (then --out is a folder: a report per prompt and summary.md).")
@click.option("--canaries", "canary_set", required=True, type=click.Path(dir_okay=False), help="Canary-set file.")
@click.option("--out", required=True, type=click.Path(), help="Report JSON to write (a folder for several prompts).")
@click.option("--auto", "mode", flag_value="auto", default=SCORING.mode == "auto",
              help="Exact up to --max-exact secrets (and the scorer's own budget), bounded beyond (the default).")
@click.option("--exact", "mode", flag_value="exact", help="Score every secret of the space: exact ranks.")
@click.option(
    "--bounded", "mode", flag_value="bounded", help="Certified rank intervals by best-first search, any space size."
)
@click.option("--sampled", "mode", flag_value="sampled",
              help="Rank among the references (with a Clopper-Pearson interval over the space).")
@click.option("--max-exact", default=SCORING.max_exact, show_default=True, type=int,
              help="Largest space scored in exact mode.")
@click.option("--include-secrets", is_flag=True, help="Put secrets and the prompt in the report (off: ids only).")
@click.option("--extraction/--no-extraction", default=SCORING.extraction, show_default=True,
              help="Greedy decoding and best-first guesses.")
@click.option("--search-budget", default=SCORING.search_budget, type=int,
              help="Token steps best-first search may spend (default: sized to the space and the planted canaries).")
@click.option("--chunk-tokens", default=None, type=int,
              help="Tree tokens per forward pass (default 512; the same as -m chunk_tokens=N); bounds memory.")
@click.option(
    "--data", type=click.Path(dir_okay=False), help="Planted data the pipeline ran on: adds membership attacks."
)
@click.option(
    "--held-out", type=click.Path(dir_okay=False),
    help="Records no teacher saw (default: the unused records of --data).",
)
@click.option("--eval-data", type=click.Path(dir_okay=False),
              help="Labelled held-out records: the scorer plays the student and the report holds its accuracy.")
@click.option("--field", default="text", show_default=True, help="The records' text field (--data, --eval-data).")
@click.option("--label-field", default=None, help="The records' label field (--eval-data: default 'label').")
@model_option
def score(
    prompts: tuple[str, ...], canary_set: str, out: str, mode: str, max_exact: int, include_secrets: bool,
    extraction: bool, search_budget: int | None, chunk_tokens: int | None, data: str | None, held_out: str | None,
    eval_data: str | None, field: str, label_field: str | None, model: str, model_options: tuple[str, ...],
) -> None:
    """Score canaries as continuations of teaching prompts with a scorer (--model); write reports, show a summary."""
    scoring = ScoringOptions.checked(mode=mode, max_exact=max_exact, include_secrets=include_secrets,
                                     extraction=extraction, search_budget=search_budget)
    scorer = model_spec(model, model_options, {} if chunk_tokens is None else {"chunk_tokens": chunk_tokens})
    if len(prompts) > 1 or os.path.isdir(prompts[0]):
        from privacy_audit.audit_runs import score_prompts

        if data is not None or held_out is not None:
            raise click.BadParameter("reconstruction (--data) scores one prompt at a time", param_hint="--data")
        verdict = load_thresholds(None)  # [tool.privacy-audit.gate] of ./pyproject.toml, else the chance rule
        for path, report in score_prompts(prompts=prompts, canaries=canary_set, out=out, model=scorer,
                                          scoring=scoring, progress=progress("scoring"), eval_data=eval_data,
                                          field=field, label_field=label_field, verdict=verdict):
            click.echo(scored_line(path, report))
        click.echo(f"wrote {os.path.join(out, 'summary.md')} (led by each report's verdict under the default gate)")
        return
    from privacy_audit.audit_runs import score as run_score

    report = run_score(prompt=prompts[0], canaries=canary_set, out=out, model=scorer, scoring=scoring, data=data,
                       held_out=held_out, field=field, label_field=label_field, eval_data=eval_data,
                       progress=progress("scoring"))
    click.echo(f"{render_markdown(report)}\nwrote {out}")
    if not report.run.prompt_chars:
        click.echo("note: the prompt is empty, so this scored the zero-shot case (canaries after the separator alone)",
                   err=True)


@main.command("gate", cls=RuleCommand)
@click.argument("report", type=click.Path(dir_okay=False))
@threshold_options
@click.option("--write", is_flag=True, help="Store the verdict in REPORT.")
def gate_command(report: str, gate_config: str | None, write: bool, **flags: Any) -> None:
    """Exit 0 when REPORT is within the thresholds, 1 with one line per failing rule otherwise."""
    outcome = audit.check_gate(report, thresholds(gate_config, flags), write=write)
    for skip in outcome.skipped:
        click.echo(f"skipped {report} [{skip.rule}]: {skip.reason}", err=True)
    for line in verdict_lines(outcome, clean(report)):
        click.echo(clean(line))
    if not outcome.passed:
        sys.exit(EXIT_GATE_FAILED)


@main.command("report", cls=RuleCommand)
@click.argument("reports", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--html", "html_out", type=click.Path(dir_okay=False), help="Self-contained HTML file to write.")
@click.option("--md", "md_out", type=click.Path(dir_okay=False), help="Markdown file to write (for PR comments).")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False), help="JUnit XML file to write.")
@threshold_options
def report_command(
    reports: tuple[str, ...], html_out: str | None, md_out: str | None, junit_out: str | None, gate_config: str | None,
    **flags: Any,
) -> None:
    """Render REPORTS as HTML, Markdown and/or JUnit XML; several reports are shown side by side."""
    rendered = audit.render_report(reports, html=html_out, markdown=md_out, junit=junit_out,
                                   thresholds=thresholds(gate_config, flags))
    written = ", ".join(p for p in (html_out, md_out, junit_out) if p)
    gates = [r.gate for r in rendered if r.gate is not None]
    verdict = "" if not gates else f" (gate {'passed' if all(g.passed for g in gates) else 'failed'})"
    click.echo(f"wrote {written}{verdict}")


@main.command("compare")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--tolerance", default=0.5, show_default=True, type=click.FloatRange(0, 10**9),
              help="How much worse a measure may get (in its own units) before it counts as a regression.")
def compare_command(old: str, new: str, tolerance: float) -> None:
    """Show what got worse or better from OLD to NEW; exit 1 on a regression past the tolerance."""
    result = audit.compare_reports(old, new, tolerance=tolerance)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for change in result.changes:
        click.echo(change.line())
    if result.regressed:
        sys.exit(EXIT_GATE_FAILED)


config_argument = click.argument("config", required=False, type=click.Path(dir_okay=False))
set_option = click.option("-s", "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
                          help="Override a config setting, e.g. -s pipeline.name=instructions -s model.spec=mock.")


@main.command("run")
@config_argument
@set_option
@click.option("--out", default=None, help="Output folder (overrides the config's out).")
@click.option("--model", default=None, help="Model spec (overrides model.spec).")
def run_command(config: str | None, overrides: tuple[str, ...], out: str | None, model: str | None) -> None:
    """All stages from one CONFIG (TOML; default [tool.privacy-audit] in ./pyproject.toml); exit 1 if its gate fails."""
    from privacy_audit.audit_runs import run_audits

    result = run_audits(
        load_config(config, overrides=overrides, values={"out": out, "model.spec": model}), say=say,
        progress=progress("scoring"),
    )
    click.echo(result.markdown())
    click.echo(result.wrote())
    for run in result.runs:
        if run.gate is not None:
            for line in verdict_lines(run.gate, clean(str(run.out_dir / "report.json"))):
                click.echo(clean(line))
    if not result.passed:
        sys.exit(EXIT_GATE_FAILED)


@main.command("secret-sharer")
@config_argument
@set_option
@click.option("--out", default=None, help="Output folder (overrides the config's out).")
@click.option("--model", default=None, help="Model spec (overrides model.spec).")
@click.option("--trials", type=click.IntRange(min=1), default=None, help="Trials T (overrides secret_sharer.trials).")
@click.option(
    "--executor", type=click.Choice(["local", "ray"]), default=None, help="Where trials run (Ray is optional)."
)
def secret_sharer_command(
    config: str | None, overrides: tuple[str, ...], out: str | None, model: str | None, trials: int | None,
    executor: str | None,
) -> None:
    """The paper's Secret Sharer protocol: T trials of one canary among N candidates; resumable."""
    values = {"out": out, "model.spec": model, "secret_sharer.trials": trials, "secret_sharer.executor": executor}
    from privacy_audit.secret_sharer import run_secret_sharer

    summary = run_secret_sharer(load_config(config, overrides=overrides, values=values), say=say)
    click.echo(render_trials_markdown(summary))
    click.echo(f"per-trial results, summary.json and rank-cdf.png are in {summary.folder}")
