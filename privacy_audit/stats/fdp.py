"""The f-DP one-run audit of Mahloujifar, Melis and Chaudhuri (ICML 2025, "Auditing f-differential privacy in one
run") for the Gaussian trade-off curve: with each of m canaries planted by a fair coin and "planted" guessed for the k
likeliest, v of them right, the largest mu for which mu-GDP is rejected at level alpha, and mu as (epsilon, delta).

Under mu-GDP the trade-off curve is G_mu(x) = Phi(Phi^-1(1 - x) - mu); the audit bounds how many right guesses a
mechanism with that curve allows by walking the guesses from the last right one back (their `audit_rh_with_cap`):
start from r = alpha v / m and h = alpha (k - v) / m, and at each step i = v - 1, ..., 0 raise h to the least the
curve allows after r, r by i / (k - i) of that rise; the claim is rejected when r + h ends above k / m. The bound on
mu holds for any mechanism; its (epsilon, delta) reading assumes the mechanism's curve is Gaussian (on randomized
response that reading overstates epsilon, while mu stays below the truth), so it is compared with claims in the same
terms only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats.epsilon import right_guesses

ASSUMPTIONS = (
    "each canary planted by an independent fair coin; guesses 'planted' for the k most likely canaries, k on a fixed "
    "grid of powers of two, Bonferroni-corrected; the largest mu for which mu-GDP (the Gaussian trade-off curve) is "
    "rejected (Mahloujifar, Melis and Chaudhuri 2025); the epsilon beside it assumes a Gaussian mechanism"
)


@dataclass(frozen=True)
class GdpBound:
    """The largest mu the canaries reject at `confidence`, the guesses and right ones that gave it, and its reading
    as epsilon at `delta` for a Gaussian mechanism."""

    mu: float
    guesses: int | None
    correct: int | None
    canaries: int
    confidence: float
    delta: float
    epsilon_if_gaussian: float
    grid: tuple[int, ...]
    assumptions: str = ASSUMPTIONS


def _rejected(mu: float, correct: int, guesses: int, canaries: int, alpha: float) -> bool:
    """Whether `correct` right of `guesses` among `canaries` reject mu-GDP at level alpha."""
    from scipy.special import ndtr, ndtri  # loaded when needed: reading a report need not load it

    r, h = alpha * correct / canaries, alpha * (guesses - correct) / canaries
    for i in range(correct - 1, -1, -1):
        lowest = float(ndtr(ndtri(min(r, 1.0)) - mu)) if r > 0 else 0.0  # the least h the curve allows after r
        if lowest <= h:
            break  # neither moves again
        r, h = min(r + i / (guesses - i) * (lowest - h), 1.0), lowest
    return r + h > guesses / canaries


def _mu_bound(correct: int, guesses: int, canaries: int, alpha: float) -> float:
    """The largest mu rejected (0 when none): the rejected mu form an interval from 0."""
    if correct == 0 or not _rejected(1e-9, correct, guesses, canaries, alpha):
        return 0.0
    lo, hi = 1e-9, 64.0
    if _rejected(hi, correct, guesses, canaries, alpha):
        return hi
    for _ in range(45):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _rejected(mid, correct, guesses, canaries, alpha) else (lo, mid)
    return lo


def epsilon_of_mu(mu: float, delta: float) -> float:
    """The epsilon of a mu-GDP (Gaussian) mechanism at `delta`: the root of
    delta = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2) (Dong, Roth and Su 2022, Corollary 2.13)."""
    from scipy.optimize import brentq
    from scipy.special import ndtr

    if mu <= 0:
        return 0.0
    if not 0 < delta < 1:
        raise InputError("converting mu to epsilon needs 0 < delta < 1")

    def excess(eps: float) -> float:
        return float(ndtr(-eps / mu + mu / 2) - math.exp(eps) * ndtr(-eps / mu - mu / 2)) - delta

    if excess(0.0) <= 0:
        return 0.0
    hi = 1.0
    while hi < 512 and excess(hi) > 0:
        hi *= 2
    return float(brentq(excess, 0.0, hi, xtol=1e-9))


def gdp_randomized_inclusion(
    *, scores: np.ndarray, planted: np.ndarray, delta: float, confidence: float = 0.95,
    grid: tuple[int, ...] | None = None,
) -> GdpBound:
    """The one-run mu lower bound for randomized inclusion, from each canary's score (higher = more likely planted)
    and whether its coin planted it, with the guesses of `stats.epsilon.epsilon_randomized_inclusion`."""
    if not 0 < delta < 1:
        raise InputError("the Gaussian reading of mu needs 0 < delta < 1")
    guesses, m, grid, alpha = right_guesses(scores, planted, confidence, grid)
    best: tuple[float, int | None, int | None] = (0.0, None, None)
    for k, correct in guesses:
        mu = _mu_bound(correct, k, m, alpha)
        if mu > best[0]:
            best = (mu, k, correct)
    return GdpBound(mu=best[0], guesses=best[1], correct=best[2], canaries=m, confidence=confidence, delta=delta,
                    epsilon_if_gaussian=epsilon_of_mu(best[0], delta), grid=grid)
