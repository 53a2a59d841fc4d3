"""Config-driven runs: one full audit (`run`) and the paper's Secret Sharer protocol (`secret-sharer`).

Secret Sharer (Mohtashami et al. 2023, §5): per trial, draw one canary and N-1 comparisons from the
space, plant the canary into every teacher's data, run the pipeline, score all N by length-normalised
log-likelihood given the teaching prompt, and record the canary's rank (comparisons scoring higher,
0..N-1). Every trial is written as it finishes (atomically) under a folder named by the config's hash,
so an interrupted run resumes where it stopped and a changed config never mixes with old trials.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from privacy_audit import audit
from privacy_audit._io import atomic_write, dump_jsonl, make_folder, read_json, write_json
from privacy_audit.canaries import generate_canary_set, parse_space, plant_records, save_canary_set
from privacy_audit.canaries.plant import detect_format, read_table
from privacy_audit.canaries.presets import load_preset
from privacy_audit.config import AuditConfig
from privacy_audit.errors import InputError
from privacy_audit.gate import gate, thresholds_from_mapping
from privacy_audit.models import LanguageModel, load_model
from privacy_audit.pipelines import Record, run_pipeline
from privacy_audit.reports import AuditReport, GateOutcome, render_markdown, save_report
from privacy_audit.reports.html import render_html
from privacy_audit.reports.plots import png, rank_cdf_plot
from privacy_audit.reports.text import format_p
from privacy_audit.scoring.score import DEFAULT_SEPARATOR
from privacy_audit.scoring.stats import mean_rank_p_value, protocol_ranks, rank_zero_p_value

Say = Callable[[str], None]


def _model(cfg: AuditConfig) -> LanguageModel:
    options = {} if cfg.model.chunk_tokens is None else {"chunk_tokens": cfg.model.chunk_tokens}
    return load_model(cfg.model.spec, **options)


def _pool(cfg: AuditConfig) -> list[dict[str, Any]]:
    """The private records: all of them, or a seeded sample of `limit`."""
    path = cfg.resolve(cfg.data.path)
    fmt = detect_format(path, cfg.data.format)
    rows, _ = read_table(path, cfg.data.field, fmt)
    if cfg.data.limit is not None:
        if not 1 <= cfg.data.limit <= len(rows):
            raise InputError(f"data.limit must be between 1 and the {len(rows)} records of {path}")
        rng = np.random.default_rng(cfg.pipeline.seed)
        rows = [rows[int(i)] for i in sorted(rng.choice(len(rows), cfg.data.limit, replace=False))]
    return rows


def _template_and_space(cfg: AuditConfig) -> tuple[str, str, dict[str, tuple[str, ...]]]:
    c = cfg.canaries
    if c.preset is not None:
        if c.template is not None or c.space is not None:
            raise InputError("config [canaries]: give preset, or template with space, not both")
        p = load_preset(c.preset)
        return p.template, p.space, p.derived
    if c.template is None or c.space is None:
        raise InputError("config [canaries] needs preset, or template and space")
    return c.template, c.space, {}


@dataclass(frozen=True)
class RunResult:
    report: AuditReport
    gate: GateOutcome | None
    out_dir: Path


def run_audit(cfg: AuditConfig, *, say: Say = lambda _m: None) -> RunResult:
    """canaries -> plant -> teach -> score -> report (JSON, Markdown, HTML) -> gate, into cfg.out."""
    out = Path(cfg.out)
    make_folder(out)
    template, space, derived = _template_and_space(cfg)
    thresholds = thresholds_from_mapping(cfg.gate, source="config [gate]") if cfg.gate else None
    rows = _pool(cfg)
    c = cfg.canaries
    canary_set = generate_canary_set(template=template, space=space, count=c.count, references=c.references, seed=c.seed,
                                     repetitions=c.repetitions, derived=derived, preset=c.preset)
    save_canary_set(canary_set, out / "canaries.json")
    planted, _ = plant_records(rows, canary_set, field=cfg.data.field, position=cfg.data.position, seed=c.seed,
                               shards=cfg.data.shards, fraction=cfg.data.fraction)
    atomic_write(out / "planted.jsonl", dump_jsonl(planted), private=True)
    say(f"planted {len(canary_set.planted)} canaries into {len(rows)} records")
    model = _model(cfg)
    teaching = audit.teach(
        cfg.pipeline.name, data=out / "planted.jsonl", field=cfg.data.field, label_field=cfg.data.label_field,
        out=out / "prompt.txt", model=model, seed=cfg.pipeline.seed, options=cfg.pipeline.options,
        eval_data=cfg.resolve(cfg.data.eval_path) if cfg.data.eval_path else None, say=say,
    )
    members = non_members = None
    if cfg.scoring.membership and cfg.data.label_field is not None:
        try:
            members, non_members = audit.membership_split(teaching, data=out / "planted.jsonl", held_out=None,
                                                          field=cfg.data.field, label_field=cfg.data.label_field)
        except InputError:
            say("no held-out records (the teacher saw them all): reconstruction likelihood skipped")
    say(f"scoring with {model.name} ...")
    s = cfg.scoring
    report = audit.build_report(teaching, canary_set, model, mode=s.mode, max_exact=s.max_exact, include_secrets=s.include_secrets,
                                extraction=s.extraction, search_budget=s.search_budget, members=members, non_members=non_members)
    outcome = gate(report, thresholds) if thresholds is not None else None
    if outcome is not None:
        report = report.model_copy(update={"gate": outcome})
    save_report(report, out / "report.json")
    atomic_write(out / "report.md", render_markdown(report))
    atomic_write(out / "report.html", render_html(report))
    return RunResult(report, outcome, out)


def trial_seed(seed: int, trial: int) -> int:
    """An independent 32-bit seed per trial, from numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, trial]).generate_state(1)[0])


def run_trial(cfg: AuditConfig, trial: int, model: LanguageModel) -> dict[str, Any]:
    """One Secret Sharer trial; deterministic given the config, the trial number and the model."""
    template, space, derived = _template_and_space(cfg)
    seed = trial_seed(cfg.secret_sharer.seed, trial)
    n = cfg.secret_sharer.candidates
    cs = generate_canary_set(template=template, space=space, count=1, references=n - 1, seed=seed, derived=derived)
    rows = _pool(cfg)
    teachers = cfg.data.shards
    planted, _ = plant_records(rows, cs, field=cfg.data.field, position=cfg.data.position, seed=seed, shards=teachers, fraction=1.0)
    label = cfg.data.label_field
    records = [Record(text=r[cfg.data.field], label=None if label is None else str(r[label]),
                      teacher=r.get("teacher") if teachers else None) for r in planted]
    teaching = run_pipeline(cfg.pipeline.name, records, model=model, seed=seed, options=cfg.pipeline.options)
    scores = model.open_context(teaching.prompt + DEFAULT_SEPARATOR)([c.text for c in cs.canaries]).means(len(cs.prefix))
    rank = int(protocol_ranks(canary_scores=scores[:1], comparison_scores=scores[None, 1:])[0])
    return {
        "trial": trial, "seed": seed, "rank": rank, "candidates": n, "canary_secret": cs.canaries[0].secret,
        "canary_score": float(scores[0]), "comparison_scores": [float(x) for x in scores[1:]],
        "prompt_sha256": hashlib.sha256(teaching.prompt.encode("utf-8")).hexdigest(), "prompt_chars": len(teaching.prompt),
        "canary_in_prompt": cs.canaries[0].secret in teaching.prompt,
    }


@lru_cache(maxsize=2)
def _worker_model(config_json: str) -> LanguageModel:
    return _model(AuditConfig.model_validate_json(config_json))


def _ray_trial(config_json: str, trial: int) -> dict[str, Any]:
    """A trial in a Ray worker: the model is loaded once per worker process."""
    return run_trial(AuditConfig.model_validate_json(config_json), trial, _worker_model(config_json))


def secret_sharer_dir(cfg: AuditConfig) -> Path:
    """The run's folder, keyed on everything a trial's result depends on: not on T or the executor,
    so asking for more trials later extends the same run."""
    same = cfg.model_copy(update={"secret_sharer": cfg.secret_sharer.model_copy(
        update={"trials": 0, "executor": "local", "ray_address": None})})
    return Path(cfg.out) / f"secret-sharer-{same.digest('canaries', 'data', 'pipeline', 'model', 'secret_sharer')[:12]}"


def run_secret_sharer(cfg: AuditConfig, *, say: Say = lambda _m: None) -> dict[str, Any]:
    """All trials (resuming finished ones), then the summary with exact p-values, plots and raw data."""
    ss = cfg.secret_sharer
    if ss.trials < 1 or ss.candidates < 2:
        raise InputError("secret_sharer needs trials >= 1 and candidates >= 2")
    template, space, _ = _template_and_space(cfg)
    if parse_space(space).size < ss.candidates:
        raise InputError(f"space {space} holds fewer than {ss.candidates} candidates")
    folder = secret_sharer_dir(cfg)
    make_folder(folder / "trials")
    write_json(folder / "config.json", cfg.model_dump(mode="json"))
    for stale in (folder / "trials").glob(".trial-*.tmp"):
        stale.unlink(missing_ok=True)  # half-written by a run that was killed; its trial reruns
    done = {int(p.stem.split("-")[1]) for p in (folder / "trials").glob("trial-*.json")} & set(range(ss.trials))
    todo = [t for t in range(ss.trials) if t not in done]
    say(f"{len(done)} of {ss.trials} trials already done in {folder}; running {len(todo)}")

    def save(result: dict[str, Any]) -> None:
        write_json(folder / "trials" / f"trial-{result['trial']:05d}.json", result, private=True)
        say(f"trial {result['trial']}: rank {result['rank']} of {ss.candidates - 1} comparisons")

    if todo and ss.executor == "local":
        model = _model(cfg)
        for t in todo:
            save(run_trial(cfg, t, model))
    elif todo:
        _run_on_ray(cfg, todo, save)
    results = [read_json(folder / "trials" / f"trial-{t:05d}.json") for t in range(ss.trials)]
    summary = summarise_trials(results, candidates=ss.candidates)
    summary.update({"pipeline": cfg.pipeline.name, "model": cfg.model.spec, "template": template, "space": space,
                    "folder": str(folder)})
    write_json(folder / "summary.json", summary)
    atomic_write(folder / "summary.md", render_trials_markdown(summary))
    atomic_write(folder / "rank-cdf.png", png(rank_cdf_plot(ranks=[r["rank"] for r in results], n_candidates=ss.candidates)))
    return summary


def _run_on_ray(cfg: AuditConfig, todo: Sequence[int], save: Callable[[dict[str, Any]], None]) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("executor 'ray' needs Ray: pip install 'ray>=2.9' (or use executor = \"local\")") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=cfg.secret_sharer.ray_address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", **({"PRIVACY_AUDIT_CACHE": os.environ["PRIVACY_AUDIT_CACHE"]}
                                                                      if "PRIVACY_AUDIT_CACHE" in os.environ else {})}})
    try:
        remote = ray.remote(_ray_trial)
        config_json = cfg.model_dump_json()
        pending = [remote.remote(config_json, t) for t in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            save(ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()


def summarise_trials(results: Sequence[dict[str, Any]], *, candidates: int) -> dict[str, Any]:
    """Mean rank and rank-0 count with exact p-values (independent trials), against the null (N-1)/2 and T/N."""
    ranks = np.array([r["rank"] for r in results], dtype=np.int64)
    zeros = int(np.sum(ranks == 0))
    mean_p = mean_rank_p_value(ranks=ranks, n_candidates=candidates)
    zero_p = rank_zero_p_value(count=zeros, trials=len(ranks), n_candidates=candidates)
    return {
        "trials": len(ranks), "candidates": candidates, "ranks": ranks.tolist(),
        "mean_rank": float(ranks.mean()), "null_mean_rank": (candidates - 1) / 2,
        "mean_rank_p_value": mean_p.p, "mean_rank_log10_p": mean_p.log10_p, "mean_rank_null": mean_p.method,
        "rank_zero_count": zeros, "null_rank_zero_count": len(ranks) / candidates,
        "rank_zero_p_value": zero_p.p, "rank_zero_log10_p": zero_p.log10_p, "rank_zero_null": zero_p.method,
        "canary_in_prompt": int(sum(bool(r["canary_in_prompt"]) for r in results)),
    }


def render_trials_markdown(summary: dict[str, Any]) -> str:
    return (
        f"## Secret Sharer: {summary['pipeline']} ({summary['trials']} trials, N = {summary['candidates']})\n\n"
        "| measure | value | null |\n|---|---|---|\n"
        f"| mean rank | {summary['mean_rank']:.1f} | {summary['null_mean_rank']:.1f} |\n"
        f"| p-value (mean rank this low or lower) | {format_p(summary['mean_rank_p_value'], summary['mean_rank_log10_p'])} | |\n"
        f"| rank-0 count | {summary['rank_zero_count']} | {summary['null_rank_zero_count']:.2f} |\n"
        f"| p-value (this many rank 0 or more) | {format_p(summary['rank_zero_p_value'], summary['rank_zero_log10_p'])} | |\n"
        f"| trials whose prompt holds the secret verbatim | {summary['canary_in_prompt']} | |\n"
    )
