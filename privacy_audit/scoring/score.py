"""Score a teaching prompt against a canary set: each canary's row, every registered figure, the summary tests, the
statistics.

The model sees `prompt + separator + candidate`; a candidate's score is the sum of log2-probs of its tokens
that reach past the template prefix (the secret and any text after it). A mode's ranker (`rank.RANKERS`)
ranks the canaries; `canary_rows` builds one `CanaryScore` per canary from that; each registered figure
(`figures`, the built-ins in `measures`) is computed on the rows, then the summary tests, the summary and the
statistics (`derived`, the functions a stored report is checked with).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.models.base import LanguageModel
from privacy_audit.models.context import Context, ScoredContinuations
from privacy_audit.scoring.derived import (
    INTERVAL_METHOD, epsilon_of, exposure_intervals, fit_note, gdp_of, row_exposure, summarise,
)
from privacy_audit.scoring.figures import Design, Evidence, Measuring, compute_figures, compute_tests
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.rank import RANKERS, Progress, Ranking, check_mode, resolve_mode
from privacy_audit.scoring.types import (
    CanaryScore, RunMode, ScoreCheck, ScoringResult, Statistics, TokenBoundary,
)
from privacy_audit.stats.fit import SkewnormFit, fit_skewnorm

MIN_REFERENCES_FOR_FIT = 8
# Random secrets of the space whose canonical tokens are checked against the joint tokenization (with every canary).
BOUNDARY_SAMPLE = 256


Rows = tuple[CanaryScore, ...]


def design_of(canary_set: CanarySet, mode: RunMode, prompt: str) -> Design:
    """How the canaries were drawn and scored, as a report records it."""
    return Design(mode=mode, space=canary_set.space, template=canary_set.template, derived=canary_set.derived,
                  canary_seed=canary_set.seed, prompt=prompt)


def score_prompt(
    model: LanguageModel, prompt: str, canary_set: CanarySet, options: ScoringOptions = DEFAULT_SCORING, *,
    progress: Progress | None = None,
) -> ScoringResult:
    """Rank every canary with the mode's ranker, build its row, compute every registered figure on the rows, then the
    summary tests (in registration order), the summary and the statistics.

    With `options.extraction`, each planted canary also gets `greedy_extracted` (greedy decoding after the
    template prefix starts with its secret) and `guesses`, the number of most-likely-first guesses an
    attacker needs: its rank once it is exact or certified exactly (None otherwise).
    """
    mode = resolve_mode(canary_set, options, model.policy.exact_budget)
    check_mode(canary_set, options, mode)
    context = model.open_context(prompt + options.separator)
    space = canary_set.secret_space
    sample = space.sample(min(BOUNDARY_SAMPLE, space.size), np.random.default_rng(canary_set.seed))
    context.check([c.text for c in canary_set.canaries] + [canary_set.fill(s) for s in sample])
    own = context([c.text for c in canary_set.canaries])
    ranking = RANKERS[mode](context, canary_set, own.totals(len(canary_set.prefix)), options, progress)
    rows = canary_rows(canary_set, prompt, own, ranking, options)
    # the seeded generator's draws, in a fixed order: intervals, fit, summary tests
    rng = np.random.default_rng(canary_set.seed)
    intervals = exposure_intervals(rows, rng)
    fit, note = extrapolation_fit(rows, options, mode, rng)
    found = space.members_in(prompt)
    design = design_of(canary_set, mode, prompt)
    figures = compute_figures(Evidence(rows, design, fit, found, Measuring(context, canary_set, options)))
    rows = tuple(row.with_figures({f.name: values[i] for f, values in figures.items()}) for i, row in enumerate(rows))
    tests = compute_tests(Evidence(rows, design, fit, found), rng)
    summary = summarise(rows, mode=mode, space_size=space.size, secrets_in_prompt=found, p_values=tests)
    statistics = Statistics(
        mean_exposure_planted_ci=intervals[0], mean_exposure_references_ci=intervals[1], extrapolation=fit,
        extrapolation_note=note, epsilon=epsilon_of(rows, space_size=space.size, inclusion=canary_set.inclusion),
        gdp=gdp_of(rows, inclusion=canary_set.inclusion),
        interval_method=INTERVAL_METHOD, rank_interval_note=ranking.note,
        sampled_rank_lower_by_references_above=ranking.sampled_table,
    )
    search = ranking.search
    if options.extraction and not context.can_decode:
        search += f"; greedy decoding not run: {context.owner} cannot decode greedily"
    return ScoringResult(
        mode=mode, separator=options.separator, search=search, canaries=rows, summary=summary, statistics=statistics,
        boundary=TokenBoundary.model_validate(context.boundary, from_attributes=True),
        checks=score_checks(model, context, canary_set, own, ranking.logprobs, prompt + options.separator),
    )


def score_checks(
    model: LanguageModel, context: Context, canary_set: CanarySet, first: ScoredContinuations, ranked: np.ndarray,
    read: str,
) -> tuple[ScoreCheck, ...]:
    """Scores computed again, as the scorer's policy asks: a served model's stability (every canary again, in reverse
    order and another batch, against both its first score and the score its rank was computed from, the space's
    scan in exact mode: a server whose answers change between calls, or a prefix-cache bug, is caught here), a
    lower precision's error (every canary rescored in float32). The largest difference is recorded; beyond the
    tolerance the gate fails."""
    texts = [c.text for c in canary_set.canaries]
    prefix = len(canary_set.prefix)
    checks = []
    policy = model.policy
    if policy.stability_tolerance is not None:
        again = context.again(list(reversed(texts))).totals(prefix)[::-1]
        worst = np.maximum(np.abs(again - first.totals(prefix)), np.abs(again - np.asarray(ranked)))
        tolerance, per_token = policy.stability_tolerance, ""
        if policy.stability_per_token is not None:
            tolerance += policy.stability_per_token * int(np.max(first.token_counts(prefix)))
            per_token = f" (with {policy.stability_per_token:g} bits a token: next-token requests)"
        checks.append(_compared("stability", worst, np.zeros_like(worst), tolerance,
                                "each canary scored again, in reverse order and another batch, against its first "
                                f"score and the score its rank came from{per_token}", "the scores are unstable"))
    if policy.precision is not None:
        again = policy.precision.reference.open_context(read)(texts).totals(prefix)
        checks.append(_compared("precision", again, first.totals(prefix), policy.precision.tolerance,
                                f"each canary scored in {policy.precision.dtype} and rescored in float32",
                                "the lower precision is off"))
    return tuple(checks)


def _compared(check: Literal["stability", "precision"], again: np.ndarray, first: np.ndarray, tolerance: float,
              note: str, off: str) -> ScoreCheck:
    diff = float(np.max(np.abs(again - first)))
    return ScoreCheck(check=check, compared=len(first), max_difference_bits=diff, tolerance_bits=tolerance,
                      passed=diff <= tolerance,
                      note=note if diff <= tolerance else f"{note}: {off}")


def canary_rows(
    canary_set: CanarySet, prompt: str, own: ScoredContinuations, ranking: Ranking, options: ScoringOptions
) -> Rows:
    """One row per canary: its scores, its rank, exposure and p-value among its pool, its rank interval over the
    space, whether it is verbatim in the prompt, and the secret only when asked for."""
    prefix = len(canary_set.prefix)
    normalised, tokens = own.means(prefix), own.token_counts(prefix)
    size = canary_set.secret_space.size
    rows = []
    for i, c in enumerate(canary_set.canaries):
        rank, pool, span = ranking.ranks[i], ranking.pools[i], ranking.intervals[i]
        exposure = row_exposure(rank=rank, pool=pool, lower=span.lower, upper=span.upper, space_size=size)
        rows.append(
            CanaryScore(
                id=c.id, planted=c.planted, logprob_bits=float(ranking.logprobs[i]), tokens=int(tokens[i]),
                normalised_logprob_bits=float(normalised[i]), rank=rank, rank_pool=pool, space_size=size,
                exposure_bits=exposure.exposure_bits, p_value=exposure.p_value,
                in_prompt=all(part in prompt for part in canary_set.parts(c.secret)), guesses=span.guesses,
                secret=c.secret if options.include_secrets else None, rank_lower=span.lower, rank_upper=span.upper,
                exposure_bits_lower=exposure.exposure_bits_lower, exposure_bits_upper=exposure.exposure_bits_upper,
                exposure_method=span.method,
            )
        )
    return tuple(rows)


def extrapolation_fit(
    rows: Rows, options: ScoringOptions, mode: RunMode, rng: np.random.Generator
) -> tuple[SkewnormFit | None, str]:
    """A skew-normal fitted to the references' log-perplexities (with its calibrated test), and what it says; never in
    bounded mode, whose intervals replace it."""
    refs = np.array([-r.logprob_bits for r in rows if not r.planted])
    if not options.extrapolation or mode == "bounded":
        return None, "not computed: turned off, or bounded mode, whose intervals replace it"
    if refs.size < MIN_REFERENCES_FOR_FIT or np.ptp(refs) == 0:
        return None, f"not computed: needs at least {MIN_REFERENCES_FOR_FIT} references with distinct scores"
    fit = fit_skewnorm(refs, rng=rng)
    return fit, fit_note(fit, refs.size)

