"""Score a teaching prompt against a canary set: each canary's row of measurements, then statistics and a summary.

The model sees `prompt + separator + candidate`; a candidate's score is the sum of log2-probs of its tokens
that reach past the template prefix (the secret and any text after it). A mode's ranker (`rank.RANKERS`)
ranks the canaries; `canary_rows` builds one `CanaryScore` per canary from that; each entry of `MEASURES`
adds one family of per-canary figures to the rows; statistics and the summary are computed from the rows.
A new per-canary figure is a field of `CanaryScore` and one measure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from privacy_audit.canaries import Canary, CanarySet
from privacy_audit.models.base import LanguageModel
from privacy_audit.models.context import Context, ScoredContinuations
from privacy_audit.scoring.epsilon import epsilon_lower_bound, epsilon_randomized_inclusion
from privacy_audit.scoring.exposure import null_mean_exposure, rank_p_value
from privacy_audit.scoring.intervals import betting_mean_ci
from privacy_audit.scoring.leaks import substring_indel_distances
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.permutation import (
    PValue, conservative_ranks, rank_sum_p_value, rank_zero_p_value, verbatim_count_p_value,
)
from privacy_audit.scoring.rank import RANKERS, Progress, Ranking, check_mode, resolve_mode
from privacy_audit.scoring.stats import extrapolation_exposure, fit_skewnorm
from privacy_audit.scoring.types import (
    CanaryScore, PValueRecord, RunMode, ScoreCheck, ScoringResult, SkewnormFit, Statistics, Summary, TokenBoundary,
)

MIN_REFERENCES_FOR_FIT = 8
# Random secrets of the space whose canonical tokens are checked against the joint tokenization (with every canary).
BOUNDARY_SAMPLE = 256


@dataclass(frozen=True)
class ScoringRun:
    """One scoring in progress: what every measure may read (the context the model read, the canary set,
    the options, the mode's ranking, and a seeded generator)."""

    context: Context
    canary_set: CanarySet
    options: ScoringOptions
    ranking: Ranking
    rng: np.random.Generator
    prompt: str


Rows = tuple[CanaryScore, ...]
Measure = Callable[[Rows, ScoringRun], Rows]


def score_prompt(
    model: LanguageModel, prompt: str, canary_set: CanarySet, options: ScoringOptions = DEFAULT_SCORING, *,
    progress: Progress | None = None,
) -> ScoringResult:
    """Rank every canary with the mode's ranker, build its row, add every measure, then the statistics.

    With `options.extraction`, each planted canary also gets `greedy_extracted` (greedy decoding after the
    template prefix starts with its secret) and `guesses`, the number of most-likely-first guesses an
    attacker needs: its rank once it is exact or certified exactly (None otherwise).
    """
    mode = resolve_mode(canary_set, options, model.exact_budget)
    check_mode(canary_set, options.model_copy(update={"mode": mode}))
    context = model.open_context(prompt + options.separator)
    space = canary_set.secret_space
    sample = space.sample(min(BOUNDARY_SAMPLE, space.size), np.random.default_rng(canary_set.seed))
    context.check([c.text for c in canary_set.canaries] + [canary_set.fill(s) for s in sample])
    own = context([c.text for c in canary_set.canaries])
    ranking = RANKERS[mode](context, canary_set, own.totals(len(canary_set.prefix)), options, progress)
    run = ScoringRun(context, canary_set, options, ranking, np.random.default_rng(canary_set.seed), prompt)
    rows = canary_rows(canary_set, prompt, own, ranking, options)
    for measure in MEASURES:
        rows = measure(rows, run)
    # the seeded generator's draws, in a fixed order: intervals, fit, summary
    intervals = exposure_intervals(rows, run.rng)
    rows, fit, fit_note = with_extrapolation(rows, run)
    summary = summarise(rows, mode=mode, space_size=space.size, rng=run.rng, secrets_in_prompt=space.members_in(prompt))
    checks: tuple[ScoreCheck, ...] = ()
    if model.stability_tolerance is not None:
        checks += (stability(context, canary_set, own, model.stability_tolerance),)
    if model.precision_reference is not None and model.precision_tolerance is not None:
        reference = model.precision_reference.open_context(prompt + options.separator)
        checks += (precision(reference, canary_set, own, model.precision_tolerance, str(model.info().dtype)),)
    search = ranking.search
    if options.extraction and not context.can("greedy"):
        search += f"; greedy decoding not run: {context.owner} cannot decode greedily"
    return ScoringResult(
        mode=mode, separator=options.separator, search=search, canaries=rows, summary=summary,
        statistics=statistics(rows, run, intervals=intervals, fit=fit, fit_note=fit_note),
        boundary=TokenBoundary(**context.boundary.to_dict()), checks=checks,
    )


def precision(
    reference: Context, canary_set: CanarySet, first: ScoredContinuations, tolerance: float, dtype: str
) -> ScoreCheck:
    """Every canary rescored in float32 against its score in the lower precision the model computes in."""
    texts = [c.text for c in canary_set.canaries]
    again = reference(texts).totals(len(canary_set.prefix))
    diff = float(np.max(np.abs(again - first.totals(len(canary_set.prefix)))))
    note = f"each canary scored in {dtype} and rescored in float32"
    if diff > tolerance:
        note += ": the lower precision is off"
    return ScoreCheck(check="precision", compared=len(texts), max_difference_bits=diff, tolerance_bits=tolerance,
                      passed=diff <= tolerance, note=note)


def stability(context: Context, canary_set: CanarySet, first: ScoredContinuations, tolerance: float) -> ScoreCheck:
    """Every canary scored again, in reverse order and as another batch, against its first score: a served model
    whose scores depend on the order or the batch of its requests (a prefix-cache bug) is caught here."""
    texts = [c.text for c in canary_set.canaries]
    again = context(list(reversed(texts))).totals(len(canary_set.prefix))[::-1]
    diff = float(np.max(np.abs(again - first.totals(len(canary_set.prefix)))))
    note = "each canary scored twice, the second time in reverse order and another batch"
    return ScoreCheck(check="stability", compared=len(texts), max_difference_bits=diff, tolerance_bits=tolerance,
                      passed=diff <= tolerance, note=note if diff <= tolerance else note + ": the scores are unstable")


def canary_rows(
    canary_set: CanarySet, prompt: str, own: ScoredContinuations, ranking: Ranking, options: ScoringOptions
) -> Rows:
    """One row per canary: its scores, its rank, exposure and p-value among its pool, its rank interval over the
    space, whether it is verbatim in the prompt, and the secret only when asked for."""
    prefix = len(canary_set.prefix)
    normalised, tokens = own.means(prefix), own.token_counts(prefix)
    rows = []
    for i, c in enumerate(canary_set.canaries):
        rank, pool, span = ranking.ranks[i], ranking.pools[i], ranking.intervals[i]
        rows.append(
            CanaryScore(
                id=c.id, planted=c.planted, logprob_bits=float(ranking.logprobs[i]), tokens=int(tokens[i]),
                normalised_logprob_bits=float(normalised[i]), rank=rank, rank_pool=pool,
                space_size=canary_set.secret_space.size, exposure_bits=math.log2(pool) - math.log2(rank),
                p_value=float(rank_p_value(rank=rank, pool_size=pool)),
                in_prompt=all(part in prompt for part in canary_set.parts(c.secret)), guesses=span.guesses,
                secret=c.secret if options.include_secrets else None, rank_lower=span.lower, rank_upper=span.upper,
                exposure_bits_lower=span.exposure_lower, exposure_bits_upper=span.exposure_upper,
                exposure_method=span.method,
            )
        )
    return tuple(rows)


def with_greedy_extraction(rows: Rows, run: ScoringRun) -> Rows:
    """Each planted canary: does greedy decoding after the prompt and the template prefix produce its secret?"""
    if not run.options.extraction or not run.context.can("greedy"):
        return rows
    planted = [i for i, r in enumerate(rows) if r.planted]
    found = greedy_extracted(run.context, run.canary_set, [run.canary_set.canaries[i] for i in planted])
    out = list(rows)
    for i, ok in zip(planted, found):
        out[i] = rows[i].model_copy(update={"greedy_extracted": ok})
    return tuple(out)


def with_protocol_ranks(rows: Rows, run: ScoringRun) -> Rows:
    """The paper's rank of each planted canary among the references (length-normalised scores; 0 = above all)."""
    refs = np.array([r.normalised_logprob_bits for r in rows if not r.planted], dtype=np.float64)
    if refs.size == 0:
        return rows
    planted = [i for i, r in enumerate(rows) if r.planted]
    ranks = conservative_ranks(
        canary_scores=np.array([rows[i].normalised_logprob_bits for i in planted], dtype=np.float64),
        reference_scores=refs,
    )
    out = list(rows)
    for i, rank in zip(planted, ranks):
        out[i] = rows[i].model_copy(update={"protocol_rank": int(rank)})
    return tuple(out)


def with_verbatim_test(rows: Rows, run: ScoringRun) -> Rows:
    """Each planted canary's exact test of "it appears in the prompt": a never-planted secret does with probability
    (the space's members that occur in the prompt) / |S|, whatever the tokenizer or the scoring mode."""
    chance = run.canary_set.secret_space.chance_in(run.prompt)
    return tuple(
        r.model_copy(update={"verbatim_p_value": chance if r.in_prompt else 1.0}) if r.planted else r for r in rows
    )


def with_similarity(rows: Rows, run: ScoringRun) -> Rows:
    """Each canary's similarity to the prompt (1 - the fuzzy-leak distance of its text to the prompt's closest
    substring), the data-only test beside the scorer's: text that echoes a canary, even with edits, is closer to it
    than to the references. A planted canary's p-value is its exact rank among the references' similarities (the
    references are drawn from the same space, so under the null it is uniform among them; ties count against it)."""
    texts = [c.text for c in run.canary_set.canaries]
    similarity = [1.0 - d / len(t) for d, t in zip(substring_indel_distances(texts, run.prompt), texts)]
    refs = np.array([s for s, r in zip(similarity, rows) if not r.planted])
    out = []
    for row, s in zip(rows, similarity):
        update: dict[str, float] = {"similarity": s}
        if row.planted and refs.size:
            update["similarity_p_value"] = float((1 + np.sum(refs >= s)) / (refs.size + 1))
        out.append(row.model_copy(update=update))
    return tuple(out)


# The per-canary figures added after the rows are built, in order; a new figure is one more function here.
MEASURES: list[Measure] = [with_greedy_extraction, with_protocol_ranks, with_verbatim_test, with_similarity]


def with_extrapolation(rows: Rows, run: ScoringRun) -> tuple[Rows, SkewnormFit | None, str]:
    """A skew-normal fitted to the references' log-perplexities (with its calibrated test), and each canary's
    exposure under it; never in bounded mode, whose intervals replace it."""
    refs = np.array([-r.logprob_bits for r in rows if not r.planted])
    if not run.options.extrapolation or run.ranking.mode == "bounded":
        return rows, None, "not computed: turned off, or bounded mode, whose intervals replace it"
    if refs.size < MIN_REFERENCES_FOR_FIT or np.ptp(refs) == 0:
        return rows, None, f"not computed: needs at least {MIN_REFERENCES_FOR_FIT} references with distinct scores"
    fit = fit_skewnorm(refs, rng=run.rng)
    values = extrapolation_exposure(
        canary_log_perplexities=np.array([-r.logprob_bits for r in rows]), a=fit.a, loc=fit.loc, scale=fit.scale,
        max_bits=math.log2(run.canary_set.secret_space.size),
    )
    out = tuple(r.model_copy(update={"extrapolated_exposure_bits": float(v),
                                     "extrapolated_beyond_references": bool(-r.logprob_bits < refs.min())})
                for r, v in zip(rows, values))
    note = (
        "poor fit (calibrated Kolmogorov-Smirnov p < 0.05): do not rely on extrapolated exposure" if fit.poor_fit else
        "fit not rejected (calibrated Kolmogorov-Smirnov p >= 0.05); an estimate beside the rank-based exposure, "
        "not a bound, and an extrapolation wherever a canary lies beyond every reference"
    )
    if fit.references_fitted != refs.size:
        note += f"; fitted to a random {fit.references_fitted:,} of the {refs.size:,} references"
    return out, fit, note


Interval = tuple[float, float] | None


def exposure_intervals(rows: Rows, rng: np.random.Generator) -> tuple[Interval, Interval]:
    """Betting intervals of the planted canaries' and the references' mean exposure (bounded in [0, log2 pool])."""
    top = math.log2(max(r.rank_pool for r in rows))
    planted = np.array([r.exposure_bits for r in rows if r.planted])
    refs = np.array([r.exposure_bits for r in rows if not r.planted])
    planted_ci = betting_mean_ci(planted, low=0.0, high=top, rng=rng)
    return planted_ci, betting_mean_ci(refs, low=0.0, high=top, rng=rng) if refs.size else None


def statistics(rows: Rows, run: ScoringRun, *, intervals: tuple[Interval, Interval], fit: SkewnormFit | None,
               fit_note: str) -> Statistics:
    """The intervals, the extrapolation fit, and the epsilon bound of the design: randomized inclusion when
    each canary was planted by a coin, else the one-run bound on the planted canaries' known ranks."""
    size = run.canary_set.secret_space.size
    if run.canary_set.inclusion == "randomized":
        scores, planted = np.array([r.logprob_bits for r in rows]), np.array([r.planted for r in rows])
        epsilon = epsilon_randomized_inclusion(scores=scores, planted=planted)
    else:
        ranks = np.array([size if r.guesses is None else r.guesses for r in rows if r.planted])
        epsilon = epsilon_lower_bound(ranks=ranks, space_size=size, design="one_run")
    return Statistics(
        mean_exposure_planted_ci=intervals[0], mean_exposure_references_ci=intervals[1], extrapolation=fit,
        extrapolation_note=fit_note, epsilon=epsilon,
        interval_method="betting confidence interval for a bounded mean (Waudby-Smith and Ramdas), valid at every n",
        rank_interval_note=run.ranking.note, sampled_rank_lower_by_references_above=run.ranking.sampled_table,
    )


def greedy_extracted(context: Context, canary_set: CanarySet, canaries: Sequence[Canary]) -> list[bool]:
    """Does greedy decoding after the context and the template prefix produce each canary's secret?

    Decoding starts from the canary's own canonical tokens that end within the prefix (so a space the
    secret's first token absorbs is left for the model to produce), and must reproduce the text from
    there to the end of the extraction target.
    """
    tail = context.boundary.tail
    start = len(canary_set.prefix)
    ids, ends = context.tokenize([c.text for c in canaries])
    wanted: list[tuple[tuple[int, ...], str]] = []
    budget: dict[tuple[int, ...], int] = {}
    for canary, row, row_ends in zip(canaries, ids, ends):
        k = bisect.bisect_right(row_ends, start)
        begin = len(tail) + (row_ends[k - 1] if k else -len(tail))
        stop = len(tail) + start + len(canary_set.extraction_target(canary.secret))
        path = tuple(row[:k])
        wanted.append((path, (tail + canary.text)[begin:stop]))
        budget[path] = max(budget.get(path, 0), len(row) - k + 1)
    decoded = {path: context.greedy(path, max_new_tokens=n) for path, n in budget.items()}
    return [decoded[path].startswith(expected) for path, expected in wanted]


def summarise(
    scores: Rows, *, mode: RunMode, space_size: int, rng: np.random.Generator, secrets_in_prompt: int | None = None
) -> Summary:
    """Summary figures, with exact p-values under the shared-reference (permutation) null and, given how many
    secrets of the space the prompt holds, the exact verbatim count test."""
    planted_scores = [s for s in scores if s.planted]
    refs = [s for s in scores if not s.planted]
    planted = np.array([s.exposure_bits for s in planted_scores])
    pool = len(refs) + 1 if mode == "sampled" else space_size
    greedy = [s.greedy_extracted for s in planted_scores if s.greedy_extracted is not None]
    known = [s.guesses for s in planted_scores if s.guesses is not None]
    p_values, protocol = _shared_reference_tests(planted_scores, refs, rng) if refs else ({}, {})
    in_prompt = sum(1 for s in planted_scores if s.in_prompt)
    if secrets_in_prompt is not None:
        p_values["planted_in_prompt"] = _record(verbatim_count_p_value(in_prompt, planted=len(planted_scores),
                                                                    in_prompt=secrets_in_prompt, space_size=space_size))
    return Summary(
        **protocol, greedy_extracted=sum(greedy) if greedy else None, min_guesses_planted=min(known) if known else None,
        max_exposure_bits=float(planted.max()), mean_exposure_planted=float(planted.mean()),
        mean_exposure_references=float(np.mean([s.exposure_bits for s in refs])) if refs else None,
        null_mean_exposure_bits=null_mean_exposure(pool), max_possible_exposure_bits=math.log2(pool),
        min_rank_planted=min(s.rank for s in planted_scores), planted_in_prompt=in_prompt,
        secrets_in_prompt=secrets_in_prompt, planted_count=len(planted_scores), reference_count=len(refs),
        planted_vs_references_p_value=p_values["planted_vs_references"].p if refs else None, p_values=p_values,
    )


def _shared_reference_tests(
    planted: Sequence[CanaryScore], refs: Sequence[CanaryScore], rng: np.random.Generator
) -> tuple[dict[str, PValueRecord], dict[str, float | int]]:
    """Planted against references by the exact permutation null of their shared design: log-probabilities,
    the paper's mean rank and rank-0 count on length-normalised scores, and similarity to the prompt."""
    def scores(rows: Sequence[CanaryScore], normalised: bool) -> np.ndarray:
        return np.array([r.normalised_logprob_bits if normalised else r.logprob_bits for r in rows], dtype=np.float64)

    above = rank_sum_p_value(planted_scores=scores(planted, False), reference_scores=scores(refs, False), rng=rng)
    mean_rank = rank_sum_p_value(planted_scores=scores(planted, True), reference_scores=scores(refs, True), rng=rng)
    zero = rank_zero_p_value(planted_scores=scores(planted, True), reference_scores=scores(refs, True))
    ranks = np.array([r.protocol_rank for r in planted], dtype=np.int64)
    protocol: dict[str, float | int] = {
        "protocol_mean_rank": float(ranks.mean()), "protocol_null_mean_rank": len(refs) / 2,
        "protocol_mean_rank_p_value": mean_rank.p, "protocol_rank_zero_count": int(np.sum(ranks == 0)),
        "protocol_rank_zero_p_value": zero.p,
    }
    records = {
        "planted_vs_references": _record(above), "protocol_mean_rank": _record(mean_rank),
        "protocol_rank_zero": _record(zero),
    }
    if all(r.similarity is not None for r in (*planted, *refs)):
        similar = rank_sum_p_value(planted_scores=np.array([r.similarity for r in planted], dtype=np.float64),
                                   reference_scores=np.array([r.similarity for r in refs], dtype=np.float64), rng=rng)
        records["similarity"] = _record(similar)
    return records, protocol


def _record(p: PValue) -> PValueRecord:
    return PValueRecord(p=p.p, log10_p=p.log10_p, method=p.method, monte_carlo_error=p.monte_carlo_error)
