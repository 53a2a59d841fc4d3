"""Statistics of an audit: extrapolated exposure and membership-inference ROC summaries. Pure numpy/scipy/sklearn.

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
from privacy_audit.scoring.intervals import auc_ci
from privacy_audit.scoring.roc import tpr_at_fpr
from privacy_audit.scoring.types import SkewnormFit


def _array(name: str, values: object, *, min_size: int = 0) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite")
    if arr.size < min_size:
        raise InputError(f"{name} needs at least {min_size} values, got {arr.size}")
    return arr


def interpolation_exposure(
    *, reference_log_perplexities: np.ndarray, canary_log_perplexities: np.ndarray
) -> np.ndarray:
    """TF Privacy's interpolation exposure, kept for comparison: log2 N - log2(1 + #{refs <= canary}).

    N is the number of references; a canary less likely than every reference gets a (small) negative value.
    """
    refs = np.sort(_array("reference_log_perplexities", reference_log_perplexities, min_size=1))
    canaries = _array("canary_log_perplexities", canary_log_perplexities)
    ranks = 1 + np.searchsorted(refs, canaries, side="right")
    return np.log2(len(refs)) - np.log2(ranks)


# A fit uses at most this many references (a uniform random subsample of more): each of the bootstrap's
# refits costs time in proportion, and a whole 10^4 space made the fit a third of a 4-digit score's time.
MAX_FIT_REFERENCES = 2000


def fit_skewnorm(
    reference_log_perplexities: np.ndarray, *, rng: np.random.Generator, bootstrap: int = 200,
    max_references: int = MAX_FIT_REFERENCES,
) -> SkewnormFit:
    """Fit scipy's skewnorm to the references (at least 8 of them; a random `max_references` of more) and test the fit.

    The Kolmogorov-Smirnov p-value is calibrated by a parametric bootstrap that refits every sample
    (scipy.stats.goodness_of_fit): with parameters fitted to the same data the plain KS p-value almost
    never rejects (the Lilliefors problem), and an extrapolation from a wrong fit can be off by 100+ bits.
    """
    refs = _array("reference_log_perplexities", reference_log_perplexities, min_size=8)
    if refs.size > max_references:
        refs = rng.choice(refs, size=max_references, replace=False)
    if np.ptp(refs) == 0:
        raise InputError("all references have the same score; a distribution cannot be fitted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a, loc, scale = stats.skewnorm.fit(refs)
        test = stats.goodness_of_fit(
            stats.skewnorm, refs, statistic="ks", n_mc_samples=bootstrap, rng=rng,
            guessed_params={"a": a, "loc": loc, "scale": scale},
        )
    return SkewnormFit(
        a=float(a), loc=float(loc), scale=float(scale), ks_statistic=float(test.statistic),
        ks_p_value=float(test.pvalue), poor_fit=bool(test.pvalue < 0.05), references_fitted=int(refs.size),
    )


def extrapolation_exposure(
    *, canary_log_perplexities: np.ndarray, a: float, loc: float, scale: float, max_bits: float | None = None
) -> np.ndarray:
    """Exposure = -log2 CDF(canary) under the fitted skew-normal, clipped to [0, max_bits] (Carlini et al. 2019)."""
    canaries = _array("canary_log_perplexities", canary_log_perplexities)
    if scale <= 0:
        raise InputError("scale must be positive")
    exposure = -stats.skewnorm.logcdf(canaries, a, loc=loc, scale=scale) / math.log(2)
    return np.clip(exposure, 0.0, np.inf if max_bits is None else max_bits)


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


def roc_summary(*, member_scores: np.ndarray, non_member_scores: np.ndarray) -> RocSummary:
    """ROC of 'higher likelihood = member' over every threshold: AUC with its Clopper-Pearson interval
    (`intervals.auc_ci`), and TPR at 1% FPR taken from all thresholds (ties included)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    pos = _array("member_scores", member_scores, min_size=1)
    neg = _array("non_member_scores", non_member_scores, min_size=1)
    y = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    s = np.concatenate([pos, neg])
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    auc = float(roc_auc_score(y, s))
    return RocSummary(
        auc, auc_ci(auc, positives=pos.size, negatives=neg.size),
        tpr_at_fpr(member_scores=pos, non_member_scores=neg, fpr=0.01), int(pos.size), int(neg.size),
        tuple(map(float, fpr)), tuple(map(float, tpr)),
    )
