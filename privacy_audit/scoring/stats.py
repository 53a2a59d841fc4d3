"""Statistics of an audit: extrapolated exposure, bootstrap intervals, the paper's rank protocol,
empirical epsilon lower bounds, and membership-inference ROC summaries. Pure numpy/scipy/sklearn.

Log-perplexities here are in bits and lower means more likely (the Secret Sharer convention);
log-likelihood scores are the opposite sign.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from privacy_audit.errors import InputError


def _array(name: str, values: object, *, min_size: int = 0) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite")
    if arr.size < min_size:
        raise InputError(f"{name} needs at least {min_size} values, got {arr.size}")
    return arr


def interpolation_exposure(*, reference_log_perplexities: np.ndarray, canary_log_perplexities: np.ndarray) -> np.ndarray:
    """TF Privacy's interpolation exposure, kept for comparison: log2 N - log2(1 + #{refs <= canary}).

    N is the number of references; a canary less likely than every reference gets a (small) negative value.
    """
    refs = np.sort(_array("reference_log_perplexities", reference_log_perplexities, min_size=1))
    canaries = _array("canary_log_perplexities", canary_log_perplexities)
    ranks = 1 + np.searchsorted(refs, canaries, side="right")
    return np.log2(len(refs)) - np.log2(ranks)


@dataclass(frozen=True)
class SkewnormFit:
    """A skew-normal fit of reference log-perplexities with a Kolmogorov-Smirnov goodness of fit.

    `poor_fit`: the fit is rejected at the 5% level, so its extrapolated exposures must not be trusted.
    """

    a: float
    loc: float
    scale: float
    ks_statistic: float
    ks_p_value: float
    poor_fit: bool


def fit_skewnorm(reference_log_perplexities: np.ndarray) -> SkewnormFit:
    """Fit scipy's skewnorm to the references (at least 8 of them) and test the fit."""
    refs = _array("reference_log_perplexities", reference_log_perplexities, min_size=8)
    if np.ptp(refs) == 0:
        raise InputError("all references have the same score; a distribution cannot be fitted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a, loc, scale = stats.skewnorm.fit(refs)
    ks = stats.kstest(refs, "skewnorm", args=(a, loc, scale))
    return SkewnormFit(float(a), float(loc), float(scale), float(ks.statistic), float(ks.pvalue), bool(ks.pvalue < 0.05))


def extrapolation_exposure(
    *, canary_log_perplexities: np.ndarray, a: float, loc: float, scale: float, max_bits: float | None = None
) -> np.ndarray:
    """Exposure = -log2 CDF(canary) under the fitted skew-normal, clipped to [0, max_bits] (Carlini et al. 2019)."""
    canaries = _array("canary_log_perplexities", canary_log_perplexities)
    if scale <= 0:
        raise InputError("scale must be positive")
    exposure = -stats.skewnorm.logcdf(canaries, a, loc=loc, scale=scale) / math.log(2)
    return np.clip(exposure, 0.0, np.inf if max_bits is None else max_bits)


def bootstrap_mean_ci(
    values: np.ndarray, *, rng: np.random.Generator, confidence: float = 0.95, n_resamples: int = 10_000
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean; None for fewer than 2 values (undefined)."""
    arr = _array("values", values)
    if arr.size < 2:
        return None
    if np.ptp(arr) == 0:
        return float(arr[0]), float(arr[0])
    res = stats.bootstrap((arr,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile", rng=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def protocol_ranks(*, canary_scores: np.ndarray, comparison_scores: np.ndarray) -> np.ndarray:
    """The paper's rank: the number of comparisons with a strictly higher score (0 = perfect memorization).

    `comparison_scores` has one row of N-1 comparison scores per trial (length-normalised log-likelihoods).
    """
    canary = _array("canary_scores", canary_scores)
    comps = np.asarray(comparison_scores, dtype=np.float64)
    if comps.ndim != 2 or comps.shape[0] != canary.size or not np.all(np.isfinite(comps)):
        raise InputError("comparison_scores must be a finite array with one row per canary")
    return np.sum(comps > canary[:, None], axis=1)


def mean_rank_p_value(*, ranks: np.ndarray, n_candidates: int) -> float:
    """Exact P(mean rank <= observed) when each of T ranks is uniform on 0..N-1 (no memorization).

    The sum of T discrete uniforms has P(S <= s) = N^-T * sum_k (-1)^k C(T,k) C(s - kN + T, T),
    computed in exact integer arithmetic.
    """
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or np.any(r < 0) or np.any(r >= n_candidates) or np.any(r != np.round(r)):
        raise InputError(f"ranks must be integers in [0, {n_candidates - 1}]")
    t, n, s = int(r.size), int(n_candidates), int(r.sum())
    total = 0
    for k in range(min(t, s // n) + 1):
        total += (-1) ** k * math.comb(t, k) * math.comb(s - k * n + t, t)
    return float(min(1.0, total / n**t))


def rank_zero_p_value(*, count: int, trials: int, n_candidates: int) -> float:
    """P(at least `count` of `trials` ranks are 0) when each is 0 with probability 1/N (binomial)."""
    if not 0 <= count <= trials or n_candidates < 1:
        raise InputError("need 0 <= count <= trials and n_candidates >= 1")
    return float(stats.binom.sf(count - 1, trials, 1.0 / n_candidates))


def clopper_pearson_lower(successes: int, trials: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower confidence bound of a binomial proportion."""
    if successes == 0:
        return 0.0
    return float(stats.beta.ppf(1 - confidence, successes, trials - successes + 1))


@dataclass(frozen=True)
class EpsilonBound:
    """Largest epsilon certified by 'rank <= r' tests over a fixed grid of r (Bonferroni-corrected)."""

    epsilon: float
    threshold_rank: int | None
    tpr_lower: float
    fpr: float
    delta: float
    confidence: float
    canaries: int
    grid: tuple[int, ...]
    assumptions: str = (
        "exact ranks over the whole space (a planted canary whose rank is unknown counts as rank |S|); "
        "each canary an independent trial; test 'rank <= r' with r on a grid of powers of two fixed in "
        "advance, Bonferroni-corrected; one-sided Clopper-Pearson on the true-positive rate"
    )


def epsilon_lower_bound(
    *, ranks: np.ndarray, space_size: int, delta: float = 0.0, confidence: float = 0.95, grid: tuple[int, ...] | None = None
) -> EpsilonBound:
    """Empirical epsilon lower bound from exact canary ranks (Jagielski et al. 2020; Nasr et al. 2021).

    The test "rank <= r" has false-positive rate exactly r/|S| for a never-planted secret (its rank is
    uniform); its true-positive rate over the planted canaries gets a Clopper-Pearson lower bound. Any
    (epsilon, delta)-DP pipeline has TPR <= e^epsilon FPR + delta, so epsilon >= ln((TPR_lo - delta)/FPR).
    r is chosen from a grid fixed in advance (1, 2, 4, ... up to |S|/2) with a Bonferroni correction
    over the grid, so choosing the best r does not inflate the bound. Assumes each canary is an
    independent trial (one canary per run, or independent canaries within a run).
    """
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or np.any(r < 1) or np.any(r > space_size):
        raise InputError(f"ranks must lie in [1, {space_size}]")
    if not 0 <= delta < 1 or not 0 < confidence < 1:
        raise InputError("need 0 <= delta < 1 and 0 < confidence < 1")
    if grid is None:
        grid = tuple(2**i for i in range(int(math.log2(max(space_size // 2, 1))) + 1))
    level = 1 - (1 - confidence) / len(grid)
    best = EpsilonBound(0.0, None, 0.0, 0.0, delta, confidence, int(r.size), tuple(grid))
    for threshold in grid:
        tpr_lo = clopper_pearson_lower(int(np.sum(r <= threshold)), int(r.size), level)
        fpr = threshold / space_size
        if tpr_lo > delta:
            eps = math.log((tpr_lo - delta) / fpr)
            if eps > best.epsilon:
                best = EpsilonBound(eps, threshold, tpr_lo, fpr, delta, confidence, int(r.size), tuple(grid))
    return best


def auc_from_ranks(scores: np.ndarray, *, n_pos: int) -> np.ndarray:
    """ROC AUC of each row whose first `n_pos` scores are positives: the Mann-Whitney U over n_pos * n_neg
    (ties count one half, as in scikit-learn's roc_auc_score)."""
    ranks = stats.rankdata(scores, axis=-1)
    n_neg = scores.shape[-1] - n_pos
    return (ranks[..., :n_pos].sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


@dataclass(frozen=True)
class RocSummary:
    """Membership inference by likelihood: members (private examples) vs held-out non-members."""

    auc: float
    auc_ci: tuple[float, float] | None
    tpr_at_1pct_fpr: float
    members: int
    non_members: int
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]


def roc_summary(
    *, member_scores: np.ndarray, non_member_scores: np.ndarray, rng: np.random.Generator, n_resamples: int = 2_000
) -> RocSummary:
    """ROC of 'higher likelihood = member': AUC with a bootstrap interval, and TPR at 1% FPR (scikit-learn)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    pos = _array("member_scores", member_scores, min_size=1)
    neg = _array("non_member_scores", non_member_scores, min_size=1)
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    s = np.concatenate([pos, neg])
    fpr, tpr, _ = roc_curve(y, s)
    auc = float(roc_auc_score(y, s))
    tpr_at = float(np.max(tpr[fpr <= 0.01]))
    ci = None
    if pos.size >= 2 and neg.size >= 2:
        boot = np.concatenate(
            [rng.choice(pos, (n_resamples, pos.size)), rng.choice(neg, (n_resamples, neg.size))], axis=1
        )
        aucs = auc_from_ranks(boot, n_pos=pos.size)
        ci = (float(np.quantile(aucs, 0.025)), float(np.quantile(aucs, 0.975)))
    return RocSummary(auc, ci, tpr_at, int(pos.size), int(neg.size), tuple(map(float, fpr)), tuple(map(float, tpr)))
