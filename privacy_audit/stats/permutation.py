"""Exact permutation nulls for canaries ranked against one shared set of references.

In one report every planted canary is compared with the same references, so their ranks are not
independent trials. Under the null (the pipeline never saw the canaries) planted canaries and
references are exchangeable: every assignment of the "planted" labels to the observed scores is
equally likely. These functions give exact p-values under that null, conditioned on the observed
ties, with ties counted against the canary (a tie is never evidence of memorization).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite

# Up to this many DP cell updates (tie groups x (planted + 1) x statistic values kept) the rank-sum null
# is computed exactly (about 10^9 a few seconds); beyond, by Monte Carlo with the (b + 1) / (m + 1)
# p-value that keeps the test's size exact, and its Monte Carlo standard error recorded.
MAX_DP_CELLS = 1_000_000_000
MONTE_CARLO_PERMUTATIONS = 20_000


@dataclass(frozen=True)
class PValue:
    """A p-value with its log10 (which stays finite where the p-value underflows) and how it was computed."""

    p: float
    log10_p: float
    method: str
    monte_carlo_error: float | None = None


def from_fraction(numerator: int, denominator: int, method: str) -> PValue:
    """An exact p-value numerator / denominator of big integers, with a log10 that never underflows."""
    if numerator <= 0:
        return PValue(0.0, float("-inf"), method)
    log10_p = min(0.0, math.log10(numerator) - math.log10(denominator))
    return PValue(min(1.0, numerator / denominator) if log10_p > -300 else 10.0**log10_p, log10_p, method)


def conservative_ranks(*, canary_scores: np.ndarray, reference_scores: np.ndarray) -> np.ndarray:
    """Rank of each canary among the references: #{references scoring at least as high} (0 = above all).

    Ties count against the canary, so that equal scores never look like memorization.
    """
    canary = finite("canary_scores", canary_scores)
    refs = np.sort(finite("reference_scores", reference_scores))
    return len(refs) - np.searchsorted(refs, canary, side="left")


def _groups(planted: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Sizes of the groups of tied scores among all candidates, from the highest score down."""
    _, counts = np.unique(-np.concatenate([planted, refs]), return_counts=True)
    return counts


def rank_sum_p_value(*, planted_scores: np.ndarray, reference_scores: np.ndarray, rng: np.random.Generator) -> PValue:
    """P(sum of planted ranks <= observed) under random relabelling: the exact shared-reference null of
    the paper's mean rank (a one-sided Mann-Whitney test with ties counted against the canaries).

    Computed exactly (`_rank_sum_counts`) up to MAX_DP_CELLS; for larger designs by Monte Carlo
    permutations, with an exact-size p-value and its standard error in `monte_carlo_error`.
    """
    planted = finite("planted_scores", planted_scores)
    refs = finite("reference_scores", reference_scores)
    t, n = planted.size, refs.size
    if t == 0 or n == 0:
        raise InputError("the permutation null needs planted canaries and references")
    observed = int(conservative_ranks(canary_scores=planted, reference_scores=refs).sum())
    sizes = _groups(planted, refs)
    if rank_sum_cells(planted_scores=planted, reference_scores=refs) > MAX_DP_CELLS:
        return _monte_carlo_rank_sum(planted, refs, observed, rng)
    log_p = _log_rank_sum_cdf(sizes, t, n, observed)
    if log_p < -690 and observed == 0:  # the all-above event: exact in integers, so its log10 does not underflow
        return rank_zero_p_value(planted_scores=planted, reference_scores=refs)
    p = min(1.0, math.exp(log_p)) if log_p > -745 else 0.0
    return PValue(p, min(0.0, log_p / math.log(10)), "exact permutation")


def rank_sum_cells(*, planted_scores: np.ndarray, reference_scores: np.ndarray) -> int:
    """Cell updates the exact rank-sum null of these scores takes (`_log_rank_sum_cdf`)."""
    planted, refs = finite("planted_scores", planted_scores), finite("reference_scores", reference_scores)
    t = planted.size
    observed = int(conservative_ranks(canary_scores=planted, reference_scores=refs).sum())
    return len(_groups(planted, refs)) * (t + 1) * (observed + t * (t - 1) // 2 + 1)


def _log_rank_sum_cdf(sizes: np.ndarray, t: int, n: int, observed: int) -> float:
    """log P(W <= observed), W the sum of the t canaries' conservative ranks, over every way of labelling
    t of the tie groups' members as canaries (each equally likely).

    Candidates are taken from the highest score down. A group of s candidates after `seen` of them, j
    canaries among those, that holds k canaries adds k (seen - j + s - k) to W, in C(s, k) ways. Row j
    of the table stores W at column W + j (j - 1) / 2, which makes that step the same shift for every
    j, k (seen + s) - k (k + 1) / 2, so a group costs one array add per k. W never decreases, so
    columns past `observed` are dropped; counts are rescaled as they grow (the scale is kept in logs).
    """
    width = observed + t * (t - 1) // 2 + 1
    table = np.zeros((t + 1, width))
    table[0, 0] = 1.0
    log_scale, seen = 0.0, 0
    for s in (int(x) for x in sizes):
        if s == 1:  # the usual case, no tie: numpy reads the right-hand side whole before it adds in place
            if seen < width:
                table[1:, seen:] += table[:-1, : width - seen]
        else:
            new = table.copy()  # k = 0: every member of the group is a reference
            for k in range(1, min(s, t) + 1):
                shift = k * (seen + s) - k * (k + 1) // 2
                if shift < width:
                    new[k:, shift:] += math.comb(s, k) * table[: t + 1 - k, : width - shift]
            table = new
        seen += s
        top = table.max()
        if top > 1e200:
            table /= top
            log_scale += math.log(top)
    ways = float(table[t].sum())
    if ways <= 0:
        return -math.inf
    return math.log(ways) + log_scale - math.log(math.comb(t + n, t))


def _monte_carlo_rank_sum(planted: np.ndarray, refs: np.ndarray, observed: int, rng: np.random.Generator) -> PValue:
    """The rank-sum null by random relabellings: (b + 1) / (m + 1) keeps the test's size, and the
    standard error of that estimate says how far it may be from the exact p-value."""
    t = planted.size
    scores = np.concatenate([planted, refs])
    hits = 0
    for _ in range(MONTE_CARLO_PERMUTATIONS):
        perm = rng.permutation(scores)
        hits += int(conservative_ranks(canary_scores=perm[:t], reference_scores=perm[t:]).sum() <= observed)
    out = from_fraction(
        hits + 1, MONTE_CARLO_PERMUTATIONS + 1, f"Monte Carlo permutation ({MONTE_CARLO_PERMUTATIONS:,} draws)"
    )
    error = math.sqrt(out.p * (1 - out.p) / MONTE_CARLO_PERMUTATIONS)
    return PValue(out.p, out.log10_p, out.method, monte_carlo_error=error)


def rank_zero_p_value(*, planted_scores: np.ndarray, reference_scores: np.ndarray) -> PValue:
    """P(at least the observed number of planted canaries score above every reference) under random
    relabelling, exactly (integer arithmetic); ties with a reference do not count as above it.

    With no ties and v of T canaries above N references this is C(T, v) / C(T + N, v).
    """
    planted = finite("planted_scores", planted_scores)
    refs = finite("reference_scores", reference_scores)
    t, n = planted.size, refs.size
    if t == 0 or n == 0:
        raise InputError("the permutation null needs planted canaries and references")
    observed = int(np.sum(conservative_ranks(canary_scores=planted, reference_scores=refs) == 0))
    ways_at_least = 0
    used, remaining = 0, t + n
    for size in _groups(planted, refs):
        # this group holds a reference: exactly `used` canaries lie above every reference
        with_ref = math.comb(remaining, t - used) - (
            math.comb(remaining - size, t - used - size) if size <= t - used else 0
        )
        if used >= observed:
            ways_at_least += with_ref
        if size > t - used:
            break
        used, remaining = used + size, remaining - size
    return from_fraction(ways_at_least, math.comb(t + n, t), "exact permutation")


def none_in_top(*, population: int, drawn: int, top: int) -> float:
    """P(none of `drawn` items, taken uniformly without replacement from `population`, is among a fixed `top`
    of them): C(population - top, drawn) / C(population, drawn), exactly."""
    if not 0 <= drawn <= population or top < 0:
        raise InputError("need 0 <= drawn <= population and top >= 0")
    if top >= population:
        return 0.0 if drawn else 1.0
    return from_fraction(math.comb(population - top, drawn), math.comb(population, drawn), "exact").p


def hypergeometric_tail(*, population: int, marked: int, drawn: int, more_than: int) -> float:
    """P(more than `more_than` of `drawn` items, taken without replacement from `population`, are `marked` ones)."""
    if not 0 <= marked <= population or not 0 <= drawn <= population:
        raise InputError("need 0 <= marked, drawn <= population")
    ways = sum(
        math.comb(marked, x) * math.comb(population - marked, drawn - x)
        for x in range(more_than + 1, min(drawn, marked) + 1)
    )
    return from_fraction(ways, math.comb(population, drawn), "exact").p if ways else 0.0


def verbatim_count_p_value(planted_in_prompt: int, *, planted: int, in_prompt: int, space_size: int) -> PValue:
    """P(at least `planted_in_prompt` of `planted` canaries, drawn without replacement from the space, are among the
    `in_prompt` secrets a prompt fixed before the draw holds): the exact hypergeometric tail."""
    ways = sum(math.comb(in_prompt, x) * math.comb(space_size - in_prompt, planted - x)
               for x in range(planted_in_prompt, min(planted, in_prompt) + 1))
    method = "exact hypergeometric"
    return from_fraction(ways, math.comb(space_size, planted), method) if ways else PValue(0.0, float("-inf"), method)
