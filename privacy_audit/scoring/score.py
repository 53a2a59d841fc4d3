"""Score a teaching prompt against a canary set: log-probs of each candidate, ranks, exposure, p-values.

The model sees `prompt + separator + candidate`; a candidate's score is the sum of log2-probs of its
tokens that reach past the template prefix (the secret and any text after it), DESIGN.md §4.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import numpy as np

from privacy_audit.canaries import Canary, CanarySet
from privacy_audit.errors import InputError
from privacy_audit.models.base import Context, LanguageModel
from privacy_audit.scoring.epsilon import epsilon_lower_bound, epsilon_randomized_inclusion
from privacy_audit.scoring.exposure import null_mean_exposure, rank_p_value, ranks_among
from privacy_audit.scoring.intervals import betting_mean_ci
from privacy_audit.scoring.options import DEFAULT_SCORING, ScoringOptions
from privacy_audit.scoring.permutation import PValue, conservative_ranks, rank_sum_p_value, rank_zero_p_value
from privacy_audit.scoring.bounded import CONFIDENCE, Interval, default_budget, intervals, search_space
from privacy_audit.scoring.stats import extrapolation_exposure, fit_skewnorm
from privacy_audit.scoring.types import (
    CanaryScore,
    Mode,
    PValueRecord,
    ScoringResult,
    SkewnormFit,
    Statistics,
    Summary,
    TokenBoundary,
)

MIN_REFERENCES_FOR_FIT = 8
# Candidates scored per call in exact mode: about 20 calls a space (so progress moves), 2,500 to 50,000 each.
EXACT_CHUNKS = 20
# Random secrets of the space whose canonical tokens are checked against the joint tokenization (with every canary).
BOUNDARY_SAMPLE = 256


def resolve_mode(canary_set: CanarySet, options: ScoringOptions) -> Mode:
    """`auto` is exact scoring up to the exact-mode limit and bounded mode beyond it."""
    if options.mode != "auto":
        return options.mode
    return "exact" if canary_set.secret_space.size <= options.max_exact else "bounded"


def check_mode(canary_set: CanarySet, options: ScoringOptions) -> None:
    """Pre-flight: exact mode needs a space small enough to score whole; sampled mode needs references."""
    space = canary_set.secret_space
    if options.mode == "exact" and space.size > options.max_exact:
        raise InputError(
            f"space {space.spec} holds {space.size:,} secrets, more than the exact-mode limit of {options.max_exact:,}; "
            "use bounded mode (--bounded, the default beyond the limit) or raise --max-exact"
        )
    if options.mode == "sampled" and not canary_set.references:
        raise InputError("sampled mode needs references in the canary set; generate it with --references N")


def score_prompt(
    model: LanguageModel,
    prompt: str,
    canary_set: CanarySet,
    options: ScoringOptions = DEFAULT_SCORING,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ScoringResult:
    """Exact mode ranks each candidate against the whole space; bounded mode certifies rank intervals
    over it by best-first search; sampled mode ranks against the references. Every canary gets an
    interval of its rank over the whole space (`bounded.intervals`).

    With `options.extraction`, each planted canary also gets `greedy_extracted` (greedy decoding after the
    template prefix starts with its secret) and `guesses`, the number of most-likely-first guesses
    an attacker needs: its rank once it is exact or certified exactly (None otherwise).
    """
    space, mode = canary_set.secret_space, resolve_mode(canary_set, options)
    check_mode(canary_set, options.model_copy(update={"mode": mode}))
    context = model.open_context(prompt + options.separator)
    prefix_chars = len(canary_set.prefix)
    sample = space.sample(min(BOUNDARY_SAMPLE, space.size), np.random.default_rng(canary_set.seed))
    context.check([c.text for c in canary_set.canaries] + [canary_set.fill(s) for s in sample])
    own = context([c.text for c in canary_set.canaries])
    logprobs, normalised = own.totals(prefix_chars), own.means(prefix_chars)
    is_planted = np.array([c.planted for c in canary_set.canaries])
    logprobs, ranks, pools, spans, table, search_note = _rank(context, canary_set, logprobs, is_planted, mode, options, progress)
    tokens = own.token_counts(prefix_chars)
    guesses: list[int | None] = [s.guesses for s in spans]
    greedy: list[bool | None] = [None] * len(logprobs)
    if options.extraction:
        planted = [i for i, c in enumerate(canary_set.canaries) if c.planted]
        for i, ok in zip(planted, greedy_extracted(context, canary_set, [canary_set.canaries[i] for i in planted])):
            greedy[i] = ok
    exposures = np.array([math.log2(p) - math.log2(r) for p, r in zip(pools, ranks)])
    protocol = _protocol_ranks(normalised, is_planted)
    rng = np.random.default_rng(canary_set.seed)
    statistics, extrapolated = _statistics(
        logprobs, exposures, is_planted, guesses, space.size, max(pools), randomized=canary_set.inclusion == "randomized",
        extrapolation=options.extrapolation and mode != "bounded", rng=rng,
    )
    statistics = statistics.model_copy(update={
        "sampled_rank_lower_by_references_above": table,
        "rank_interval_note": _interval_note(mode, spans),
    })
    scores = _scores(
        canary_set, prompt, options, logprobs=logprobs, normalised=normalised, tokens=tokens, ranks=ranks, pools=pools,
        exposures=exposures, guesses=guesses, greedy=greedy, extrapolated=extrapolated, protocol=protocol, spans=spans,
    )
    summary = summarise(scores, mode=mode, space_size=space.size, rng=rng)
    return ScoringResult(
        mode=mode, separator=options.separator, search=search_note, canaries=scores, summary=summary, statistics=statistics,
        boundary=TokenBoundary(**context.boundary.to_dict()),
    )


def _scores(
    canary_set: CanarySet, prompt: str, options: ScoringOptions, *, logprobs: np.ndarray, normalised: np.ndarray,
    tokens: np.ndarray, ranks: list[int], pools: list[int], exposures: np.ndarray, guesses: list[int | None],
    greedy: list[bool | None], extrapolated: list[tuple[float | None, bool | None]], protocol: list[int | None],
    spans: list[Interval],
) -> tuple[CanaryScore, ...]:
    """One row per canary: every measurement, its rank interval, and the secret only when asked for."""
    space = canary_set.secret_space
    return tuple(
        CanaryScore(
            id=c.id, planted=c.planted, logprob_bits=float(logprobs[i]), tokens=int(tokens[i]),
            rank=int(ranks[i]), rank_pool=int(pools[i]), space_size=space.size, exposure_bits=float(exposures[i]),
            p_value=float(rank_p_value(rank=int(ranks[i]), pool_size=int(pools[i]))),
            in_prompt=all(part in prompt for part in canary_set.parts(c.secret)), guesses=guesses[i], greedy_extracted=greedy[i],
            extrapolated_exposure_bits=extrapolated[i][0], extrapolated_beyond_references=extrapolated[i][1],
            normalised_logprob_bits=float(normalised[i]), protocol_rank=protocol[i], secret=c.secret if options.include_secrets else None,
            rank_lower=spans[i].lower, rank_upper=spans[i].upper, exposure_bits_lower=spans[i].exposure_lower,
            exposure_bits_upper=spans[i].exposure_upper, exposure_method=spans[i].method,
        )
        for i, c in enumerate(canary_set.canaries)
    )


def _rank(
    context: Context, canary_set: CanarySet, logprobs: np.ndarray, is_planted: np.ndarray, mode: Mode, options: ScoringOptions,
    progress: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, list[int], list[int], list[Interval], tuple[int, ...] | None, str]:
    """(log-probs, ranks, pools, rank intervals, sampled-bound table, search note) of the mode.

    Ranks are among the whole space (exact; bounded: the certified upper end) or among the references
    (sampled: a planted canary joins the pool; ties count against it).
    """
    space = canary_set.secret_space
    exact: list[int] | None = None
    if mode == "exact":
        logprobs, exact = _exact_ranks(context, canary_set, progress)
    search, note = None, "exact ranks over the whole space" if mode == "exact" and options.extraction else "not run"
    if mode == "bounded" or (mode == "sampled" and options.extraction):
        budget = options.search_budget if options.search_budget is not None else default_budget(canary_set)
        search, note = search_space(context, canary_set, logprobs, is_planted, budget=budget, progress=progress)
    spans, table = intervals(canary_set, logprobs, is_planted, exact_ranks=exact, search=search)
    if mode == "sampled":
        ref_lp = logprobs[~is_planted]
        ranks = [int(r) for r in ranks_among(pool_logprobs=ref_lp, logprobs=logprobs, include_self=False) + is_planted]
        return logprobs, ranks, [len(ref_lp) + 1 if p else len(ref_lp) for p in is_planted], spans, table, note
    ranks = exact if exact is not None else [s.upper for s in spans]
    return logprobs, ranks, [space.size] * len(ranks), spans, table, note


def _exact_ranks(
    context: Context, canary_set: CanarySet, progress: Callable[[int, int], None] | None
) -> tuple[np.ndarray, list[int]]:
    """(log-probs, ranks) against the whole space; the space's own scores are used for the canaries, so each
    is ranked on exactly the numbers it is ranked against."""
    space = canary_set.secret_space
    space_lp = _score_space(context, canary_set, progress)
    logprobs = space_lp[[space.index(c.secret) for c in canary_set.canaries]]
    return logprobs, [int(r) for r in ranks_among(pool_logprobs=space_lp, logprobs=logprobs, include_self=False)]


def _interval_note(mode: Mode, spans: list[Interval]) -> str:
    """How the rank intervals were obtained, for the report."""
    if mode == "exact":
        return "exact: every secret of the space scored"
    methods = sorted({s.method for s in spans})
    return (f"{', '.join(methods)}: certified intervals follow from the model's own probabilities (best-first search); "
            f"sampled ones are Clopper-Pearson intervals from the references at {CONFIDENCE:.0%} confidence")


def _score_space(context: Context, canary_set: CanarySet, progress: Callable[[int, int], None] | None) -> np.ndarray:
    """Log2-probability of every secret of the space in its template, in chunks."""
    space = canary_set.secret_space
    space_lp = np.empty(space.size, dtype=np.float64)
    chunk = min(50_000, max(2_500, space.size // EXACT_CHUNKS))
    for start in range(0, space.size, chunk):
        stop = min(start + chunk, space.size)
        space_lp[start:stop] = context([canary_set.fill(s) for s in space.enumerate(start, stop)]).totals(len(canary_set.prefix))
        if progress is not None:
            progress(stop, space.size)
    return space_lp


def _protocol_ranks(normalised: np.ndarray, is_planted: np.ndarray) -> list[int | None]:
    """The paper's rank of each planted canary among the references (length-normalised scores)."""
    out: list[int | None] = [None] * len(normalised)
    if is_planted.all():
        return out
    ranks = conservative_ranks(canary_scores=normalised[is_planted], reference_scores=normalised[~is_planted])
    for i, r in zip(np.flatnonzero(is_planted), ranks):
        out[int(i)] = int(r)
    return out


def _statistics(
    logprobs: np.ndarray,
    exposures: np.ndarray,
    is_planted: np.ndarray,
    guesses: list[int | None],
    space_size: int,
    pool: int,
    *,
    randomized: bool,
    extrapolation: bool,
    rng: np.random.Generator,
) -> tuple[Statistics, list[tuple[float | None, bool | None]]]:
    """Betting intervals of the mean exposures, extrapolated exposure from a skew-normal fit of the
    references (with its calibrated fit test), and the epsilon bound of the design: randomized
    inclusion when each canary was planted by a coin, else the one-run bound."""
    top = math.log2(pool)
    planted_ci = betting_mean_ci(exposures[is_planted], low=0.0, high=top, rng=rng)
    refs_ci = betting_mean_ci(exposures[~is_planted], low=0.0, high=top, rng=rng) if np.any(~is_planted) else None
    extrapolated: list[tuple[float | None, bool | None]] = [(None, None)] * len(logprobs)
    fit: SkewnormFit | None = None
    refs = -logprobs[~is_planted]
    if not extrapolation:
        note = "not computed: turned off, or bounded mode, whose intervals replace it"
    elif refs.size >= MIN_REFERENCES_FOR_FIT and np.ptp(refs) > 0:
        fit = fit_skewnorm(refs, rng=rng)
        values = extrapolation_exposure(
            canary_log_perplexities=-logprobs, a=fit.a, loc=fit.loc, scale=fit.scale, max_bits=math.log2(space_size)
        )
        extrapolated = [(float(v), bool(-lp < refs.min())) for v, lp in zip(values, logprobs)]
        note = (
            "poor fit (calibrated Kolmogorov-Smirnov p < 0.05): do not rely on extrapolated exposure"
            if fit.poor_fit else
            "fit not rejected (calibrated Kolmogorov-Smirnov p >= 0.05); an estimate beside the rank-based exposure, "
            "not a bound, and an extrapolation wherever a canary lies beyond every reference"
        ) + (f"; fitted to a random {fit.references_fitted:,} of the {refs.size:,} references" if fit.references_fitted != refs.size else "")
    else:
        note = f"not computed: needs at least {MIN_REFERENCES_FOR_FIT} references with distinct scores"
    if randomized:
        epsilon = epsilon_randomized_inclusion(scores=logprobs, planted=is_planted)
    else:
        planted_ranks = np.array([space_size if g is None else g for g, p in zip(guesses, is_planted) if p])
        epsilon = epsilon_lower_bound(ranks=planted_ranks, space_size=space_size, design="one_run")
    statistics = Statistics(
        mean_exposure_planted_ci=planted_ci, mean_exposure_references_ci=refs_ci, extrapolation=fit, extrapolation_note=note,
        epsilon=epsilon,
        interval_method="betting confidence interval for a bounded mean (Waudby-Smith and Ramdas), valid at every n",
    )
    return statistics, extrapolated


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


def summarise(scores: tuple[CanaryScore, ...], *, mode: Mode, space_size: int, rng: np.random.Generator) -> Summary:
    """Summary figures, with exact p-values under the shared-reference (permutation) null."""
    planted_scores = [s for s in scores if s.planted]
    refs = [s for s in scores if not s.planted]
    planted = np.array([s.exposure_bits for s in planted_scores])
    pool = len(refs) + 1 if mode == "sampled" else space_size
    p_values: dict[str, PValueRecord] = {}
    protocol: dict[str, float | int | None] = {}
    if refs and planted_scores:
        lp_planted = np.array([s.logprob_bits for s in planted_scores])
        lp_refs = np.array([s.logprob_bits for s in refs])
        p_values["planted_vs_references"] = _record(rank_sum_p_value(planted_scores=lp_planted, reference_scores=lp_refs, rng=rng))
        norm_planted = np.array([s.normalised_logprob_bits for s in planted_scores], dtype=np.float64)
        norm_refs = np.array([s.normalised_logprob_bits for s in refs], dtype=np.float64)
        mean_rank = rank_sum_p_value(planted_scores=norm_planted, reference_scores=norm_refs, rng=rng)
        zero = rank_zero_p_value(planted_scores=norm_planted, reference_scores=norm_refs)
        p_values["protocol_mean_rank"] = _record(mean_rank)
        p_values["protocol_rank_zero"] = _record(zero)
        pp = np.array([s.protocol_rank for s in planted_scores], dtype=np.int64)
        protocol = {
            "protocol_mean_rank": float(pp.mean()),
            "protocol_null_mean_rank": len(refs) / 2,
            "protocol_mean_rank_p_value": mean_rank.p,
            "protocol_rank_zero_count": int(np.sum(pp == 0)),
            "protocol_rank_zero_p_value": zero.p,
        }
    greedy = [s.greedy_extracted for s in planted_scores if s.greedy_extracted is not None]
    known = [s.guesses for s in planted_scores if s.guesses is not None]
    return Summary(
        **protocol,
        greedy_extracted=sum(greedy) if greedy else None,
        min_guesses_planted=min(known) if known else None,
        max_exposure_bits=float(planted.max()),
        mean_exposure_planted=float(planted.mean()),
        mean_exposure_references=float(np.mean([s.exposure_bits for s in refs])) if refs else None,
        null_mean_exposure_bits=null_mean_exposure(pool),
        max_possible_exposure_bits=math.log2(pool),
        min_rank_planted=min(s.rank for s in planted_scores),
        planted_in_prompt=sum(1 for s in planted_scores if s.in_prompt),
        planted_count=len(planted_scores),
        reference_count=len(refs),
        planted_vs_references_p_value=p_values["planted_vs_references"].p if "planted_vs_references" in p_values else None,
        p_values=p_values,
    )


def _record(p: PValue) -> PValueRecord:
    return PValueRecord(p=p.p, log10_p=p.log10_p, method=p.method, monte_carlo_error=p.monte_carlo_error)
