"""Exact permutation nulls for canaries ranked against one shared set of references. Pure numpy/scipy.

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

# Above this many DP cells (groups x planted x statistic values) the rank-sum null is drawn by
# Monte Carlo instead, with the (b + 1) / (m + 1) p-value that keeps the test's size exact.
MAX_DP_CELLS = 300_000_000
MONTE_CARLO_PERMUTATIONS = 20_000


@dataclass(frozen=True)
class PValue:
    """A p-value with its log10 (which stays finite where the p-value underflows) and how it was computed."""

    p: float
    log10_p: float
    method: str


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
    canary = _finite("canary_scores", canary_scores)
    refs = np.sort(_finite("reference_scores", reference_scores))
    return len(refs) - np.searchsorted(refs, canary, side="left")


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite")
    return arr


def _groups(planted: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Sizes of the groups of tied scores among all candidates, from the highest score down."""
    _, counts = np.unique(-np.concatenate([planted, refs]), return_counts=True)
    return counts


def rank_sum_p_value(*, planted_scores: np.ndarray, reference_scores: np.ndarray, rng: np.random.Generator) -> PValue:
    """P(sum of planted ranks <= observed) under random relabelling: the exact shared-reference null of
    the paper's mean rank (a one-sided Mann-Whitney test with ties counted against the canaries).

    Computed exactly by dynamic programming over the tie groups (hypergeometric steps); for very large
    sets, by Monte Carlo permutations with an exact-size p-value.
    """
    planted = _finite("planted_scores", planted_scores)
    refs = _finite("reference_scores", reference_scores)
    t, n = planted.size, refs.size
    if t == 0 or n == 0:
        raise InputError("the permutation null needs planted canaries and references")
    observed = int(conservative_ranks(canary_scores=planted, reference_scores=refs).sum())
    sizes = _groups(planted, refs)
    if len(sizes) * (t + 1) * (t * n + 1) > MAX_DP_CELLS:
        scores = np.concatenate([planted, refs])
        hits = 0
        for _ in range(MONTE_CARLO_PERMUTATIONS):
            perm = rng.permutation(scores)
            stat = conservative_ranks(canary_scores=perm[:t], reference_scores=perm[t:]).sum()
            hits += stat <= observed
        return from_fraction(int(hits) + 1, MONTE_CARLO_PERMUTATIONS + 1, f"Monte Carlo permutation ({MONTE_CARLO_PERMUTATIONS:,} draws)")
    dist = np.zeros((t + 1, t * n + 1))
    dist[0, 0] = 1.0
    seen = 0
    for size in sizes:
        new = np.zeros_like(dist)
        remaining = t + n - seen
        for j in range(t + 1):
            if not dist[j].any():
                continue
            refs_above = seen - j
            for k in range(max(0, size - (n - refs_above)), min(size, t - j) + 1):
                prob = _hypergeom_pmf(k, remaining, t - j, size)
                if prob == 0:
                    continue
                w = k * (refs_above + size - k)
                new[j + k, w:] += prob * dist[j, : dist.shape[1] - w]
        dist = new
        seen += size
    p = float(min(1.0, dist[t, : observed + 1].sum()))
    if p < 1e-300 and observed == 0:  # the all-above event: exact in integers, so its log10 does not underflow
        return rank_zero_p_value(planted_scores=planted, reference_scores=refs)
    return PValue(p, float(np.log10(p)) if p > 0 else float("-inf"), "exact permutation")


def _hypergeom_pmf(k: int, total: int, marked: int, draws: int) -> float:
    """P(k marked among `draws` drawn without replacement from `total` holding `marked`) (scipy's hypergeom.pmf, without its per-call cost)."""
    if k < 0 or k > marked or draws - k > total - marked:
        return 0.0
    return math.exp(_log_comb(marked, k) + _log_comb(total - marked, draws - k) - _log_comb(total, draws))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def rank_zero_p_value(*, planted_scores: np.ndarray, reference_scores: np.ndarray) -> PValue:
    """P(at least the observed number of planted canaries score above every reference) under random
    relabelling, exactly (integer arithmetic); ties with a reference do not count as above it.

    With no ties and v of T canaries above N references this is C(T, v) / C(T + N, v).
    """
    planted = _finite("planted_scores", planted_scores)
    refs = _finite("reference_scores", reference_scores)
    t, n = planted.size, refs.size
    if t == 0 or n == 0:
        raise InputError("the permutation null needs planted canaries and references")
    observed = int(np.sum(conservative_ranks(canary_scores=planted, reference_scores=refs) == 0))
    ways_at_least = 0
    used, remaining = 0, t + n
    for size in _groups(planted, refs):
        # this group holds a reference: exactly `used` canaries lie above every reference
        with_ref = math.comb(remaining, t - used) - (math.comb(remaining - size, t - used - size) if size <= t - used else 0)
        if used >= observed:
            ways_at_least += with_ref
        if size > t - used:
            break
        used, remaining = used + size, remaining - size
    return from_fraction(ways_at_least, math.comb(t + n, t), "exact permutation")
