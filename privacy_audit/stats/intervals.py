"""Confidence intervals that hold their level at the sample sizes reports use.

Exposures are bounded (0 to log2|S| bits), so the mean's interval is the betting interval of
Waudby-Smith and Ramdas (2024, "Estimating means of bounded random variables by betting", hedged
capital with predictable plug-in bets): its coverage holds at every sample size, by Ville's
inequality, with no normal approximation. (The percentile bootstrap it replaces covered 69-74% at
n = 3 and 87-89% at n = 10.) The AUC's interval is the exact binomial interval of the pairs of
distributions with the largest AUC variance, theta(1 - theta) / min(m, n) (Birnbaum and Klose 1957;
van Dantzig 1951), so it holds its level there and never collapses to a point under perfect
separation. (The Wilson-type score interval it replaces covered 91-92% at those distributions.)
"""

from __future__ import annotations

import math

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite

GRID = 4_000
# Below this many values an interval is not given ("too few to estimate"): a mean of one value has
# no spread to measure; from two on the betting interval's coverage holds (it is then just wide).
MIN_VALUES = 2


def betting_mean_ci(
    values: np.ndarray, *, low: float, high: float, rng: np.random.Generator, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Interval for the mean of values bounded in [low, high] with coverage >= `confidence` at any n.

    The bets are predictable (each uses only earlier values), so the values are taken in a random
    order drawn from `rng`. None for fewer than MIN_VALUES values.
    """
    x = finite("values", values)
    if not high > low or np.any(x < low - 1e-9) or np.any(x > high + 1e-9):
        raise InputError(f"values must be finite and within [{low}, {high}]")
    if not 0 < confidence < 1:
        raise InputError("confidence must lie in (0, 1)")
    if x.size < MIN_VALUES:
        return None
    alpha = 1 - confidence
    z = np.clip((rng.permutation(x) - low) / (high - low), 0.0, 1.0)
    n = z.size
    t = np.arange(1, n + 1)
    mu_hat = (0.5 + np.cumsum(z)) / (t + 1)
    sigma2 = (0.25 + np.cumsum((z - mu_hat) ** 2)) / (t + 1)
    sigma2_prev = np.concatenate([[0.25], sigma2[:-1]])
    lam = np.sqrt(2 * math.log(2 / alpha) / (n * sigma2_prev))
    m = (np.arange(GRID) + 0.5) / GRID
    lam_plus = np.minimum(lam[None, :], 0.5 / m[:, None])
    lam_minus = np.minimum(lam[None, :], 0.5 / (1 - m[:, None]))
    diff = z[None, :] - m[:, None]
    log_plus = np.sum(np.log1p(lam_plus * diff), axis=1)
    log_minus = np.sum(np.log1p(-lam_minus * diff), axis=1)
    capital = np.logaddexp(log_plus, log_minus) + math.log(0.5)
    inside = m[capital < math.log(1 / alpha)]
    if inside.size == 0:  # numerically everything rejected: the mean is pinned at the data's value
        centre = float(np.mean(z))
        lo_z, hi_z = centre, centre
    else:
        lo_z, hi_z = float(inside.min()) - 0.5 / GRID, float(inside.max()) + 0.5 / GRID
    lo_z, hi_z = max(0.0, min(lo_z, float(np.mean(z)))), min(1.0, max(hi_z, float(np.mean(z))))
    return low + lo_z * (high - low), low + hi_z * (high - low)


def auc_ci(auc: float, *, positives: int, negatives: int, confidence: float = 0.95) -> tuple[float, float] | None:
    """Interval for an AUC: Clopper-Pearson on k = min(m, n) trials with AUC * k successes.

    Where one class's every score lies above or below all of the other's (the pairs of distributions
    with the largest AUC variance, theta (1 - theta) / k), k * AUC is Binomial(k, theta), so the
    interval is the exact binomial one and covers with probability >= `confidence` at every theta;
    other distributions have less variance at the same theta. None with no positives or negatives.
    """
    from scipy import stats  # loaded when needed: reading a report need not load it

    if positives < 1 or negatives < 1:
        return None
    if not 0 <= auc <= 1:
        raise InputError("auc must lie in [0, 1]")
    k = min(positives, negatives)
    alpha = 1 - confidence
    hits = auc * k
    lower = 0.0 if hits <= 0 else float(stats.beta.ppf(alpha / 2, hits, k - hits + 1))
    upper = 1.0 if hits >= k else float(stats.beta.ppf(1 - alpha / 2, hits + 1, k - hits))
    return lower, upper
