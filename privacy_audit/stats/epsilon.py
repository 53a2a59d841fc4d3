"""Empirical epsilon lower bounds from canary ranks (hypothesis testing of DP).

The test "rank <= r" has false-positive rate r/|S| for a never-planted secret (its rank is uniform over
the space); (epsilon, delta)-DP caps how often a planted canary can pass it. With k canaries drawn
together for one run, the secret DP compares a canary with is drawn from the |S| - k + 1 secrets the
other canaries leave, so the one-run bound uses r / (|S| - k + 1). Which
bound is valid depends on the design:
- `independent`: each canary an independent trial (one canary per run, `secret-sharer`):
  Clopper-Pearson on the true-positive rate, TPR <= e^eps FPR + delta.
- `one_run`: k canaries planted in the same run, no independence assumed: for any v of them,
  P(all v pass) <= q^v + delta (1 + q + ... + q^(v-1)) with q = e^eps r/(|S| - k + 1) (DP applied to one
  canary at a time, the others held fixed), so P(at least v pass) <= C(k, v) times that.
- `randomized_inclusion`: each of m canaries planted by its own fair coin (Steinke, Nasr and
  Jagielski 2023, "Privacy auditing with one (1) training run"): guessing "planted" for the k most
  likely canaries, the number of right guesses is stochastically dominated by Binomial(k,
  e^eps / (1 + e^eps)) under eps-DP, whatever the dependence between canaries (their Theorem 3.1); at
  delta > 0 the tail gains 2 m delta times its largest slope (their Theorem 5.2).
Thresholds r (or guess counts k) come from a grid of powers of two fixed in advance,
Bonferroni-corrected, so choosing the best one does not inflate the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite

Design = Literal["independent", "one_run"]

ASSUMPTIONS: dict[str, str] = {
    "independent": (
        "each canary an independent trial (one canary per run); exact ranks over the whole space (a canary whose "
        "rank is unknown counts as rank |S|); one-sided Clopper-Pearson on the true-positive rate; thresholds on a "
        "fixed grid of powers of two, Bonferroni-corrected"
    ),
    "randomized_inclusion": (
        "each canary planted by an independent fair coin, recorded in the canary set; guesses 'planted' for the k most "
        "likely canaries, k on a fixed grid of powers of two, Bonferroni-corrected; right guesses dominated by "
        "Binomial(k, e^eps / (1 + e^eps)) under eps-DP (Steinke, Nasr and Jagielski 2023, Theorem 3.1), plus "
        "2 m delta times the tail's largest slope at delta > 0 (their Theorem 5.2)"
    ),
    "one_run": (
        "all canaries planted in one run, with no independence between them: P(at least v of k pass 'rank <= r') "
        "<= C(k, v) (q^v + delta (1 + ... + q^(v-1))), q = e^eps r/(|S| - k + 1); exact ranks over the whole space "
        "(unknown "
        "ranks count as |S|); thresholds on a fixed grid of powers of two, Bonferroni-corrected"
    ),
}


@dataclass(frozen=True)
class EpsilonBound:
    """Largest epsilon the canaries' ranks certify at `confidence`: the threshold (or guess count) that gave it,
    its hits, false-positive rate and the TPR's lower bound, with the bound's design and assumptions."""

    epsilon: float
    threshold_rank: int | None
    hits: int | None
    fpr: float
    delta: float
    confidence: float
    canaries: int
    grid: tuple[int, ...]
    design: str
    assumptions: str
    tpr_lower: float | None = None


def clopper_pearson_lower(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound of a binomial proportion."""
    from scipy import stats  # loaded when needed: reading a report need not load it

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
    *, ranks: np.ndarray, space_size: int, design: Design = "one_run", delta: float = 0.0, confidence: float = 0.95,
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
            epsilon=eps, threshold_rank=threshold, hits=hits, fpr=fpr, delta=delta, confidence=confidence,
            canaries=int(r.size), grid=tuple(grid), design=design, assumptions=ASSUMPTIONS[design],
            tpr_lower=clopper_pearson_lower(hits, int(r.size), 1 - alpha),
        )

    best = bound(0.0, None, 0, 0.0)
    # A never-planted secret of one run is drawn from the space less the other k - 1 canaries, so it passes
    # "rank <= r" with probability at most r / (|S| - k + 1); with one canary a run that is r / |S|.
    pool = space_size - (int(r.size) - 1 if design == "one_run" else 0)
    for threshold in grid:
        hits = int(np.sum(r <= threshold))
        fpr = min(1.0, threshold / pool)
        if design == "independent":
            tpr_lo = clopper_pearson_lower(hits, int(r.size), 1 - alpha)
            eps = math.log((tpr_lo - delta) / fpr) if tpr_lo > delta else 0.0
        else:
            eps = _one_run_epsilon(hits, int(r.size), fpr, delta, alpha)
        if eps > best.epsilon:
            best = bound(eps, threshold, hits, fpr)
    return best


def _inclusion_p_value(correct: int, guesses: int, canaries: int, eps: float, delta: float) -> float:
    """P(at least `correct` of `guesses` right) under (eps, delta)-DP with randomized inclusion of `canaries`
    (Steinke, Nasr and Jagielski 2023, Theorem 5.2): beta + 2 m delta max_i (P[W >= v - i] - beta) / i, with
    W ~ Binomial(guesses, e^eps / (1 + e^eps)) and beta = P[W >= v]."""
    from scipy import stats  # loaded when needed: reading a report need not load it

    q = 1.0 / (1.0 + math.exp(-eps))
    beta = float(stats.binom.sf(correct - 1, guesses, q))
    if delta == 0 or correct == 0:
        return beta
    i = np.arange(1, correct + 1)
    spread = float(np.max((stats.binom.sf(correct - i - 1, guesses, q) - beta) / i, initial=0.0))
    return min(1.0, beta + spread * delta * 2 * canaries)


def _binomial_epsilon(correct: int, guesses: int, alpha: float, *, delta: float = 0.0, canaries: int = 0) -> float:
    """Largest eps whose randomized-inclusion p-value at `correct` of `guesses` is at most alpha (0 when none)."""
    if correct == 0 or _inclusion_p_value(correct, guesses, canaries, 0.0, delta) > alpha:
        return 0.0
    lo, hi = 0.0, 50.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _inclusion_p_value(correct, guesses, canaries, mid, delta) <= alpha else (lo, mid)
    return lo


def right_guesses(
    scores: np.ndarray, planted: np.ndarray, confidence: float, grid: tuple[int, ...] | None,
) -> tuple[list[tuple[int, int]], int, tuple[int, ...], float]:
    """The guesses of a randomized-inclusion audit: for each k on the grid (default: powers of two up to the number
    of canaries m), k and how many of the k highest scores were planted (ties broken against the guess); with m, the
    grid and the Bonferroni-corrected alpha."""
    s = finite("scores", scores, min_size=1)
    z = np.asarray(planted, dtype=bool).reshape(-1)
    if s.size != z.size:
        raise InputError("scores and planted flags must be of the same length")
    if not 0 < confidence < 1:
        raise InputError("confidence must lie in (0, 1)")
    m = s.size
    grid = tuple(2**i for i in range(int(math.log2(m)) + 1)) if grid is None else tuple(grid)
    order = np.lexsort((z, -s))  # highest score first; among ties, unplanted first (against the guess)
    return [(k, int(z[order[:k]].sum())) for k in grid], m, grid, (1 - confidence) / len(grid)


def epsilon_randomized_inclusion(
    *, scores: np.ndarray, planted: np.ndarray, confidence: float = 0.95, grid: tuple[int, ...] | None = None,
    delta: float = 0.0,
) -> EpsilonBound:
    """The one-run epsilon lower bound for randomized inclusion, from each canary's score (higher = more
    likely planted, e.g. its log-probability) and whether its coin planted it.

    For each k on the grid, guess "planted" for the k highest scores (ties broken against the guess),
    count the right guesses, and certify the largest eps whose p-value at that count (the binomial tail, plus
    the delta term at delta > 0) is below alpha / |grid|.
    """
    guesses, m, grid, alpha = right_guesses(scores, planted, confidence, grid)
    design = "randomized_inclusion"
    if not 0 <= delta < 1:
        raise InputError("delta must lie in [0, 1)")
    best = EpsilonBound(
        epsilon=0.0, threshold_rank=None, hits=0, fpr=0.5, delta=delta, confidence=confidence, canaries=m,
        grid=tuple(grid), design=design, assumptions=ASSUMPTIONS[design],
    )
    for k, correct in guesses:
        eps = _binomial_epsilon(correct, k, alpha, delta=delta, canaries=m)
        if eps > best.epsilon:
            best = replace(best, epsilon=eps, threshold_rank=k, hits=correct, tpr_lower=correct / k)
    return best
