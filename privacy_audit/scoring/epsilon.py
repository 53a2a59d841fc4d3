"""Empirical epsilon lower bounds from canary ranks (hypothesis testing of DP). Pure numpy/scipy.

The test "rank <= r" has false-positive rate exactly r/|S| for a never-planted secret (its rank is
uniform over the space); (epsilon, delta)-DP caps how often a planted canary can pass it. Which
bound is valid depends on the design:
- `independent`: each canary an independent trial (one canary per run, `secret-sharer`):
  Clopper-Pearson on the true-positive rate, TPR <= e^eps FPR + delta.
- `one_run`: k canaries planted in the same run, no independence assumed: for any v of them,
  P(all v pass) <= q^v + delta (1 + q + ... + q^(v-1)) with q = e^eps r/|S| (DP applied to one
  canary at a time, the others held fixed), so P(at least v pass) <= C(k, v) times that.
Thresholds r come from a grid of powers of two fixed in advance, Bonferroni-corrected, so choosing
the best r does not inflate the bound.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import stats

from privacy_audit.errors import InputError
from privacy_audit.scoring.types import EpsilonBound

Design = Literal["independent", "one_run"]

ASSUMPTIONS: dict[str, str] = {
    "independent": (
        "each canary an independent trial (one canary per run); exact ranks over the whole space (a canary whose "
        "rank is unknown counts as rank |S|); one-sided Clopper-Pearson on the true-positive rate; thresholds on a "
        "fixed grid of powers of two, Bonferroni-corrected"
    ),
    "one_run": (
        "all canaries planted in one run, with no independence between them: P(at least v of k pass 'rank <= r') "
        "<= C(k, v) (q^v + delta (1 + ... + q^(v-1))), q = e^eps r/|S|; exact ranks over the whole space (unknown "
        "ranks count as |S|); thresholds on a fixed grid of powers of two, Bonferroni-corrected"
    ),
}


def clopper_pearson_lower(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound of a binomial proportion."""
    if successes == 0:
        return 0.0
    return float(stats.beta.ppf(1 - confidence, successes, trials - successes + 1))


def _one_run_epsilon(hits: int, k: int, fpr: float, delta: float, alpha: float) -> float:
    """Largest eps at which some v <= hits has C(k, v) (q^v + delta sum_{i<v} q^i) <= alpha, q = e^eps fpr."""
    best = 0.0
    for v in range(1, hits + 1):
        log_choose = math.lgamma(k + 1) - math.lgamma(v + 1) - math.lgamma(k - v + 1)

        def excess(q: float, v: int = v, log_choose: float = log_choose) -> float:
            tail = q**v + delta * sum(q**i for i in range(v))
            return log_choose + math.log(tail) - math.log(alpha) if tail > 0 else -math.inf

        if excess(0.0) >= 0:
            continue
        lo, hi = 0.0, 1.0
        if excess(hi) <= 0:
            q = hi
        else:
            for _ in range(200):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if excess(mid) <= 0 else (lo, mid)
            q = lo
        if q > 0:
            best = max(best, math.log(q / fpr))
    return best


def epsilon_lower_bound(
    *,
    ranks: np.ndarray,
    space_size: int,
    design: Design = "one_run",
    delta: float = 0.0,
    confidence: float = 0.95,
    grid: tuple[int, ...] | None = None,
) -> EpsilonBound:
    """Empirical epsilon lower bound from exact canary ranks (Jagielski et al. 2020; Nasr et al. 2021).

    `design` says what the canaries' ranks may be assumed to be: independent trials, or k canaries of
    one run with no independence (see the module docstring). The epsilon is certified at `confidence`.
    """
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or np.any(r < 1) or np.any(r > space_size):
        raise InputError(f"ranks must lie in [1, {space_size}]")
    if not 0 <= delta < 1 or not 0 < confidence < 1:
        raise InputError("need 0 <= delta < 1 and 0 < confidence < 1")
    if design not in ASSUMPTIONS:
        raise InputError(f"unknown design {design!r}; use {' or '.join(ASSUMPTIONS)}")
    if grid is None:
        grid = tuple(2**i for i in range(int(math.log2(max(space_size // 2, 1))) + 1))
    alpha = (1 - confidence) / len(grid)
    def bound(eps: float, threshold: int | None, hits: int, fpr: float) -> EpsilonBound:
        return EpsilonBound(
            epsilon=eps, threshold_rank=threshold, hits=hits, fpr=fpr, delta=delta, confidence=confidence, canaries=int(r.size),
            grid=tuple(grid), design=design, assumptions=ASSUMPTIONS[design],
            tpr_lower=clopper_pearson_lower(hits, int(r.size), 1 - alpha),
        )

    best = bound(0.0, None, 0, 0.0)
    for threshold in grid:
        hits = int(np.sum(r <= threshold))
        fpr = threshold / space_size
        if design == "independent":
            tpr_lo = clopper_pearson_lower(hits, int(r.size), 1 - alpha)
            eps = math.log((tpr_lo - delta) / fpr) if tpr_lo > delta else 0.0
        else:
            eps = _one_run_epsilon(hits, int(r.size), fpr, delta, alpha)
        if eps > best.epsilon:
            best = bound(eps, threshold, hits, fpr)
    return best
