"""Rank intervals in spaces too large to score whole: certified from a best-first search's probability mass, or sampled.

Ranks follow `exposure.ranks_among`: 1 + the number of other secrets at least as likely. Certified
bounds use only the model's own probabilities: a secret found by the search more likely than a canary
raises its lower bound; every secret not found lies under a frontier node (or a dropped one) whose
log-probability bounds the total probability of its completions, so at most min(size, mass / p)
of them can be at least as likely as a canary of probability p. Sampled bounds come from the
references, a uniform sample of the space: a Clopper-Pearson interval for the fraction of the space
above the canary (conservative for sampling without replacement).
"""

from __future__ import annotations

import math

import numpy as np

from privacy_audit.errors import InputError

TIE_TOLERANCE_BITS = 1e-4
# The confidence of sampled rank intervals (Clopper-Pearson from the references).
CONFIDENCE = 0.95
# Sums of whole counts are exact in floats below 2^53; beyond, they are rounded up by this relative margin.
FLOAT_MARGIN = 1e-9
# Dropped nodes are bounded this many at a time (memory: canaries x block x 8 bytes per temporary).
DROP_BLOCK = 1 << 15


def certified_ranks(
    *, logprobs: np.ndarray, found: np.ndarray, frontier: np.ndarray, frontier_sizes: np.ndarray, dropped: np.ndarray,
    space_size: int, found_self: np.ndarray, frontier_depths: np.ndarray | None = None,
) -> tuple[list[int], list[int], list[bool]]:
    """(lower, upper, passed) rank of each log-prob given a search's state; `passed`: no open or dropped
    node can hold a secret at least as likely (the search went past it), so `upper` is its rank with
    ties within the 1e-4-bit tolerance counted against it, as every rank here counts ties.

    `found`: log-probs of the secrets the search completed; `frontier`, `frontier_sizes`, `frontier_depths`: each
    open node's log-prob, how many secrets lie under it and the longest chain of them nested in each other (one
    text a prefix of the next: not disjoint events; by Mirsky's theorem they split into that many sets of
    disjoint ones, each holding at most mass / p secrets of probability p or more; 1 by default); `dropped[i]`: the
    bound already accumulated for canary i from nodes dropped to cap memory; `found_self[i]`: whether canary i is
    among `found`.
    """
    depths = np.ones(len(frontier)) if frontier_depths is None else np.asarray(frontier_depths, dtype=np.float64)
    lp = np.asarray(logprobs, dtype=np.float64)
    found = np.sort(np.asarray(found, dtype=np.float64))
    above = len(found) - np.searchsorted(found, lp + TIE_TOLERANCE_BITS, side="right")
    at_least = (
        len(found)
        - np.searchsorted(found, lp - TIE_TOLERANCE_BITS, side="left")
        - np.asarray(found_self, dtype=np.int64)
    )
    lower, upper, passed = [], [], []
    for i, x in enumerate(lp):
        hidden = float(dropped[i])
        if len(frontier):
            within = depths * np.floor(np.exp2(frontier - x + TIE_TOLERANCE_BITS))
            hidden += float(np.sum(np.minimum(frontier_sizes, within)))
        if not found_self[i]:
            hidden = max(0.0, hidden - 1)  # the canary itself lies under some open or dropped node, counted there
        lo = 1 + int(above[i])
        hi = 1 + int(at_least[i]) + (int(hidden) if hidden < 2.0**53 else math.ceil(hidden * (1 + FLOAT_MARGIN)))
        lower.append(min(lo, space_size))
        upper.append(max(min(hi, space_size), lower[-1]))
        passed.append(hidden == 0)
    return lower, upper, passed


def dropped_bound(
    logprobs: np.ndarray, node_logprobs: np.ndarray, node_sizes: np.ndarray, node_depths: np.ndarray | None = None,
) -> np.ndarray:
    """For each canary, how many secrets under the given (dropped) nodes can be at least as likely as it (nesting
    depths as in `certified_ranks`; the nodes taken in blocks, so a drop of millions of nodes needs a few MB, not
    canaries x nodes x 8 bytes)."""
    lp = np.asarray(logprobs, dtype=np.float64)[:, None]
    depths = np.ones(len(node_logprobs)) if node_depths is None else np.asarray(node_depths, dtype=np.float64)
    out = np.zeros(len(lp))
    for at in range(0, len(node_logprobs), DROP_BLOCK):
        block = slice(at, at + DROP_BLOCK)
        within = depths[None, block] * np.floor(np.exp2(node_logprobs[None, block] - lp + TIE_TOLERANCE_BITS))
        out += np.minimum(node_sizes[None, block], within).sum(axis=1)
    return out


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for a binomial proportion with k successes in n trials."""
    if not 0 <= k <= n or n < 1 or not 0 < confidence < 1:
        raise InputError("need 0 <= k <= n, n >= 1 and 0 < confidence < 1")
    from scipy import stats  # loaded when needed: reading a report need not load it

    tail = (1 - confidence) / 2
    lo = 0.0 if k == 0 else float(stats.beta.ppf(tail, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - tail, k + 1, n - k))
    return lo, hi


def sampled_rank_bounds(*, above: int, sample: int, population: int, known_above: int, space_size: int,
                        confidence: float) -> tuple[int, int]:
    """Rank interval of a canary from `above` of `sample` uniformly drawn secrets (out of `population`)
    being at least as likely as it, plus `known_above` secrets outside the population known to be."""
    lo, hi = clopper_pearson(above, sample, confidence)
    low = 1 + known_above + max(above, math.floor(lo * population))
    high = 1 + known_above + min(population - (sample - above), math.ceil(hi * population))
    return min(low, space_size), min(max(high, low), space_size)


def sampled_lower_table(*, sample: int, population: int, space_size: int, confidence: float) -> tuple[int, ...]:
    """The sampled lower rank bound for each count of references above (0..sample), with nothing else known:
    the gate reads it to compute the false-alarm probability of a rule on the conservative end."""
    return tuple(
        sampled_rank_bounds(above=k, sample=sample, population=population, known_above=0, space_size=space_size,
                            confidence=confidence)[0]
        for k in range(sample + 1)
    )


def exposure_bounds(lower: int, upper: int, space_size: int) -> tuple[float, float]:
    """(lower, upper) exposure in bits of a rank interval: log2|S| - log2(rank) at each end."""
    bits = math.log2(space_size)
    return bits - math.log2(upper), bits - math.log2(lower)
