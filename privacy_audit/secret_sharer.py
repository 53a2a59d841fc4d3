"""The paper's Secret Sharer protocol (Mohtashami et al. 2023, §5): T independent trials of the audit chain, resumable.

Per trial: draw one canary and N-1 comparisons from the space, plant the canary into every teacher's
data, teach, and rank the canary among the comparisons by length-normalised log-likelihood given the
teaching prompt (ties against the canary; 0 = above them all). Each trial is written as it finishes
(atomically) under a folder named by the config's hash, so an interrupted run resumes where it
stopped and a changed config never mixes with old trials. The maths is `scoring.protocol`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from privacy_audit._io import all_or_nothing, atomic_write, guard_outputs, make_folder, write_json
from privacy_audit.canaries import Row, generate_canary_set, parse_space
from privacy_audit.chain import build_report, run_chain
from privacy_audit.config import AuditConfig
from privacy_audit.errors import InputError, PipelineError
from privacy_audit.gate.check import chance_rule
from privacy_audit.models import LanguageModel
from privacy_audit.models.ngram import NgramModel
from privacy_audit.reports.plots import png, rank_cdf_plot
from privacy_audit.reports.trials import (
    TrialResult, TrialSummary, load_trial, rank_and_ties, render_trials_markdown,
)
from privacy_audit.scoring.measures import protocol_rank, similarity
from privacy_audit.scoring.membership import attack_scores, membership
from privacy_audit.scoring.options import ScoringOptions
from privacy_audit.scoring.protocol import summarise_trials
from privacy_audit.scoring.types import ProtocolSummary, Reconstruction

Say = Callable[[str], None]
# A trial needs the canary's protocol rank only: ranked among the comparisons, nothing extracted or extrapolated.
TRIAL_SCORING = ScoringOptions(mode="sampled", extraction=False, extrapolation=False, include_secrets=True)
# The default gate's level: each trial records its chance p-value, and the summary counts the trials failing at it.
CHANCE_ALPHA = 0.01


def trial_seed(seed: int, trial: int) -> int:
    """An independent 32-bit seed per trial, from numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, trial]).generate_state(1)[0])


Design = tuple[str, str, dict[str, tuple[str, ...]]]


Models = tuple[LanguageModel, LanguageModel]


def run_trial(
    cfg: AuditConfig, trial: int, models: Models, rows: Sequence[Row], design: Design
) -> TrialResult:
    """One trial through the audit chain; deterministic given the config, the trial number, the (teacher, scorer),
    the records and the canaries' (template, space, derived fields), all read once per run."""
    template, space, derived = design
    seed = trial_seed(cfg.secret_sharer.seed, trial)
    n = cfg.secret_sharer.candidates
    canary_set = generate_canary_set(
        template=template, space=space, count=1, references=n - 1, seed=seed, derived=derived
    )
    result = run_chain(
        rows, canary_set, teacher=models[0], scorer=models[1], plant_options=cfg.data.plant_options(seed),
        teach_options=cfg.pipeline.teach_options(seed=seed), scoring=TRIAL_SCORING, membership=False,
    )
    canary, *comparisons = result.report.canaries
    texts = [c.text for c in canary_set.canaries]  # the canary first, as the report's rows
    attacks, not_run = attack_scores(models[1], result.teaching.prompt + TRIAL_SCORING.separator, texts)
    scores = [c.normalised_logprob_bits for c in comparisons]
    rank = protocol_rank.of(canary)
    if (
        not canary.planted
        or not isinstance(rank, int)
        or canary.secret is None
        or canary.normalised_logprob_bits is None
        or any(x is None for x in scores)
    ):
        raise PipelineError("a trial's report lacks the planted canary's protocol rank or a length-normalised score")
    prompt = result.teaching.prompt
    similarities = tuple(float(s) for s in map(similarity.of, comparisons) if s is not None)
    ngram: tuple[float, ...] | None = None
    data_only_chance = None
    if not isinstance(models[1], NgramModel):  # a model scores: rank the same prompt data-only too, side by side
        data_only = build_report(result.teaching.output, canary_set, data_only_scorer(), TRIAL_SCORING)
        ngram = tuple(float(c.normalised_logprob_bits) for c in data_only.canaries
                      if c.normalised_logprob_bits is not None)
        if len(ngram) != n:
            raise PipelineError("the data-only n-gram scorer left a candidate without a length-normalised score")
        data_only_chance = chance_rule(data_only, alpha=CHANCE_ALPHA).value
    return TrialResult(
        trial=trial, seed=seed, rank=rank, candidates=n, canary_secret=canary.secret,
        canary_score=canary.normalised_logprob_bits, comparison_scores=tuple(float(x) for x in scores if x is not None),
        prompt_sha256=hashlib.sha256(prompt.encode("utf-8")).hexdigest(), prompt_chars=len(prompt),
        canary_in_prompt=canary.in_prompt, canary_similarity=similarity.of(canary),
        comparison_similarities=similarities if len(similarities) == len(comparisons) else None,
        chance_p_value=chance_rule(result.report, alpha=CHANCE_ALPHA).value,
        canary_ngram_score=ngram[0] if ngram else None, comparison_ngram_scores=ngram[1:] if ngram else None,
        data_only_chance_p_value=data_only_chance,
        attack_scores={name: tuple(map(float, v)) for name, v in attacks.items()}, attacks_not_run=not_run,
    )


def data_only_scorer() -> NgramModel:
    """The data-only scorer every trial of a model scorer is also ranked by: the `ngram` backend's defaults."""
    return NgramModel()


@lru_cache(maxsize=2)
def _worker_inputs(config_json: str) -> tuple[AuditConfig, Models, list[Row], Design]:
    cfg = AuditConfig.model_validate_json(config_json)
    return cfg, cfg.load_models(), cfg.read_pool(), cfg.template_and_space()


def _ray_trial(config_json: str, trial: int) -> TrialResult:
    """A trial in a Ray worker: the model, the records and the canary design are loaded once per worker process."""
    cfg, models, rows, design = _worker_inputs(config_json)
    return run_trial(cfg, trial, models, rows, design)


def secret_sharer_dir(cfg: AuditConfig) -> Path:
    """The run's folder, keyed on everything a trial's result depends on: not on T or the executor,
    so asking for more trials later extends the same run."""
    same = cfg.model_copy(update={"secret_sharer": cfg.secret_sharer.model_copy(
        update={"trials": 0, "executor": "local", "ray_address": None})})
    sections = ("canaries", "data", "pipeline", "model", "secret_sharer") + tuple(
        name for name in ("teacher", "scorer") if getattr(cfg, name) is not None)
    return Path(cfg.out) / f"secret-sharer-{same.digest(*sections)[:12]}"


def run_secret_sharer(cfg: AuditConfig, *, say: Say = lambda _m: None) -> TrialSummary:
    """All trials (resuming finished ones), then the summary with exact p-values, plots and raw data."""
    ss = cfg.secret_sharer
    if ss.trials < 1 or ss.candidates < 2:
        raise InputError("secret_sharer needs trials >= 1 and candidates >= 2")
    if cfg.pipelines is not None:
        raise InputError("secret-sharer runs one pipeline: give [pipeline], not [[pipelines]] (one run per pipeline)")
    design = cfg.template_and_space()
    template, space, _ = design
    if parse_space(space).size < ss.candidates:
        raise InputError(f"space {space} holds fewer than {ss.candidates} candidates")
    rows = cfg.read_pool()
    folder = secret_sharer_dir(cfg)
    make_folder(folder / "trials")
    guard_outputs(
        cfg.input_files(), [folder / name for name in ("config.json", "summary.json", "summary.md", "rank-cdf.png")]
    )
    write_json(folder / "config.json", cfg.model_dump(mode="json"))
    results = finished_trials(cfg, folder, design, say)
    todo = [t for t in range(ss.trials) if t not in results]
    say(f"{len(results)} of {ss.trials} trials already done in {folder}; running {len(todo)}")

    def save(result: TrialResult) -> None:
        write_json(folder / "trials" / trial_name(result.trial), result.model_dump(mode="json"), private=True)
        results[result.trial] = result
        say(f"trial {result.trial}: rank {result.rank} of {ss.candidates - 1} comparisons")

    if todo and ss.executor == "local":
        models = cfg.load_models()
        for t in todo:
            save(run_trial(cfg, t, models, rows, design))
    elif todo:
        _run_on_ray(cfg, todo, save)
    summary = summarise_run(cfg, [results[t] for t in range(ss.trials)], design, folder)
    protocol = summary.protocol
    with all_or_nothing():
        write_json(folder / "summary.json", summary.model_dump(mode="json"))
        atomic_write(folder / "summary.md", render_trials_markdown(summary))
        atomic_write(
            folder / "rank-cdf.png", png(rank_cdf_plot(ranks=list(protocol.ranks), n_candidates=ss.candidates))
        )
    return summary


def summarise_run(cfg: AuditConfig, trials: Sequence[TrialResult], design: Design, folder: Path) -> TrialSummary:
    """The run's summary: the protocol's figures by score, by the data-only measures where every trial recorded
    them, and how many trials fail the default gate on each."""
    ss = cfg.secret_sharer
    template, space, _ = design
    ranks = [t.rank for t in trials]
    in_prompt = [t.canary_in_prompt for t in trials]
    chance = [t.chance_p_value for t in trials]
    data_only_chance = [t.data_only_chance_p_value for t in trials]

    def by(measure: Literal["ngram", "similarity"]) -> ProtocolSummary | None:
        """The trials ranked by a data-only measure, where every trial recorded it."""
        pairs = [r for r in (t.ranked(measure) for t in trials) if r is not None]
        if len(pairs) < len(trials):
            return None
        return summarise_trials([r for r, _ in pairs], candidates=ss.candidates, in_prompt=in_prompt,
                                ties=[k for _, k in pairs])

    protocol = summarise_trials(ranks, candidates=ss.candidates, in_prompt=in_prompt,
                                ties=[rank_and_ties(t.canary_score, t.comparison_scores)[1] for t in trials])
    by_ngram = by("ngram")
    return TrialSummary(
        protocol=protocol, similarity=by("similarity"), ngram=by_ngram,
        data_only_model=None if by_ngram is None else data_only_scorer().name,
        chance_alpha=CHANCE_ALPHA,
        chance_failures=_failures(chance), data_only_chance_failures=_failures(data_only_chance),
        membership=_membership(cfg, trials, design),
        pipeline=cfg.pipeline.name, model=cfg.scorer_model.spec, template=template, space=space,
        folder=str(folder), teacher=cfg.teacher_model.spec,
    )


def _membership(cfg: AuditConfig, trials: Sequence[TrialResult], design: Design) -> Reconstruction | None:
    """The trials as one membership test per attack: every trial's canary (members) against its comparisons, and
    the blind control on the same candidates' texts; None where a trial did not record the attacks."""
    scores = [t.attack_scores for t in trials]
    if any(s is None for s in scores) or len({tuple(s) for s in scores if s is not None}) != 1:
        return None
    template, space, derived = design
    n = cfg.secret_sharer.candidates
    texts = [[c.text for c in generate_canary_set(template=template, space=space, count=1, references=n - 1,
                                                  seed=t.seed, derived=derived).canaries] for t in trials]
    names = list(scores[0] or {})
    pooled = {name: np.array([s[name][0] for s in scores if s is not None]
                             + [x for s in scores if s is not None for x in s[name][1:]]) for name in names}
    ordered = [t[0] for t in texts] + [x for t in texts for x in t[1:]]
    return membership(pooled, trials[0].attacks_not_run, ordered, len(trials), seed=cfg.secret_sharer.seed)


def _failures(p_values: Sequence[float | None]) -> int | None:
    """How many trials fail the gate at CHANCE_ALPHA (None when a trial did not record its p-value)."""
    return None if None in p_values else sum(p is not None and p <= CHANCE_ALPHA for p in p_values)


TRIAL_FILE = re.compile(r"trial-(\d{5})\.json")


def trial_name(trial: int) -> str:
    return f"trial-{trial:05d}.json"


def finished_trials(cfg: AuditConfig, folder: Path, design: Design, say: Say) -> dict[int, TrialResult]:
    """The trials of this run already in `folder`, each checked against the run's config and its own index
    before it counts. Stray files are named and ignored; a trial file that does not belong to this run
    (edited, or copied from another) is moved to `rejected/` and its trial runs again."""
    found: dict[int, TrialResult] = {}
    for path in sorted((folder / "trials").iterdir()):
        if path.name.startswith(".trial-") and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)  # half-written by a run that was killed; its trial reruns
            continue
        match = TRIAL_FILE.fullmatch(path.name)
        if match is None or not path.is_file():
            say(f"ignored {path}: not a trial file of this run (trial-NNNNN.json)")
            continue
        trial = int(match.group(1))
        if trial >= cfg.secret_sharer.trials:
            continue
        problem = _trial_problem(cfg, path, trial, design)
        if problem is None:
            found[trial] = load_trial(path)
            continue
        make_folder(folder / "rejected")
        os.replace(path, folder / "rejected" / path.name)
        say(f"{path} does not belong to this run ({problem}); moved to {folder / 'rejected'}, trial {trial} runs again")
    return found


def _trial_problem(cfg: AuditConfig, path: Path, trial: int, design: Design) -> str | None:
    """Why a trial file is not trial `trial` of this run (None when it is): its index, seed, number of
    candidates, canary and rank must be the ones the run's config gives."""
    try:
        result = load_trial(path)
    except InputError as exc:
        return str(exc)
    n = cfg.secret_sharer.candidates
    seed = trial_seed(cfg.secret_sharer.seed, trial)
    if result.trial != trial:
        return f"it records trial {result.trial}"
    if result.seed != seed:
        return "its seed is not this run's seed for that trial"
    if result.candidates != n or any(
        scores is not None and len(scores) != n - 1
        for scores in (result.comparison_scores, result.comparison_similarities, result.comparison_ngram_scores)
    ) or any(len(scores) != n for scores in (result.attack_scores or {}).values()):
        return f"it ranks among {result.candidates} candidates, not {n}"
    template, space, derived = design
    canary = generate_canary_set(
        template=template, space=space, count=1, references=n - 1, seed=seed, derived=derived
    ).canaries[0]
    if result.canary_secret != canary.secret:
        return "its canary is not the one this run draws for that trial"
    if result.rank != rank_and_ties(result.canary_score, result.comparison_scores)[0]:
        return "its rank does not follow from its scores"
    return None


def _run_on_ray(cfg: AuditConfig, todo: Sequence[int], save: Callable[[TrialResult], None]) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("executor 'ray' needs Ray: pip install 'ray>=2.9' (or use executor = \"local\")") from None
    started = not ray.is_initialized()
    if started:
        env = {
            "HF_HUB_OFFLINE": "1",
            **(
                {"PRIVACY_AUDIT_CACHE": os.environ["PRIVACY_AUDIT_CACHE"]}
                if "PRIVACY_AUDIT_CACHE" in os.environ
                else {}
            ),
        }
        ray.init(
            address=cfg.secret_sharer.ray_address, include_dashboard=False, log_to_driver=False,
            runtime_env={"env_vars": env},
        )
    try:
        remote = ray.remote(_ray_trial)
        config_json = cfg.model_dump_json(context={"whole": True})  # the workers need the credentials
        pending = [remote.remote(config_json, t) for t in todo]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            save(ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()
