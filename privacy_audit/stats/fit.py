"""Extrapolated exposure (Carlini et al. 2019): a skew-normal fitted to the references, with a calibrated test.

Log-perplexities here are in bits and lower means more likely (the Secret Sharer convention).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite

SEQUENTIAL_BOOTSTRAP = "sequential parametric bootstrap, Besag-Clifford"


def interpolation_exposure(
    *, reference_log_perplexities: np.ndarray, canary_log_perplexities: np.ndarray
) -> np.ndarray:
    """TF Privacy's interpolation exposure, kept for comparison: log2 N - log2(1 + #{refs <= canary}).

    N is the number of references; a canary less likely than every reference gets a (small) negative value.
    """
    refs = np.sort(finite("reference_log_perplexities", reference_log_perplexities, min_size=1))
    canaries = finite("canary_log_perplexities", canary_log_perplexities)
    ranks = 1 + np.searchsorted(refs, canaries, side="right")
    return np.log2(len(refs)) - np.log2(ranks)


# A fit uses at most this many references (a uniform random subsample of more): each of the bootstrap's
# refits costs time in proportion, and a whole 10^4 space made the fit a third of a 4-digit score's time.
MAX_FIT_REFERENCES = 2000


def sequential_mc_p_value(observed: float, draw: Callable[[], float], *, samples: int, exceedances: int = 10
                          ) -> tuple[float, int]:
    """Besag and Clifford's (1991) sequential Monte Carlo p-value of `observed` (larger = more extreme) and the
    statistics drawn: draws under the null stop at the `exceedances`-th one at least as large (p = h / L after L
    draws), else after `samples` - 1 of them (p = (g + 1) / samples). Exactly valid, like the fixed test with
    `samples` - 1 draws, and an unremarkable statistic stops after about exceedances / p draws instead of all."""
    if samples < 2 or exceedances < 1:
        raise InputError("a sequential Monte Carlo test needs samples >= 2 and exceedances >= 1")
    at_least = 0
    for drawn in range(1, samples):
        at_least += draw() >= observed
        if at_least == exceedances:
            return exceedances / drawn, drawn
    return (at_least + 1) / samples, samples - 1


@dataclass(frozen=True)
class SkewnormFit:
    """A skew-normal's parameters, its Kolmogorov-Smirnov statistic and calibrated p-value (`poor_fit` below 5%),
    how many references it was fitted to and how many bootstrap samples were refitted (None in reports written before
they were recorded)."""

    a: float
    loc: float
    scale: float
    ks_statistic: float
    ks_p_value: float
    poor_fit: bool
    references_fitted: int | None = None
    bootstrap_refits: int | None = None
    calibration: str = SEQUENTIAL_BOOTSTRAP


def fit_skewnorm(
    reference_log_perplexities: np.ndarray, *, rng: np.random.Generator, bootstrap: int = 200,
    max_references: int = MAX_FIT_REFERENCES,
) -> SkewnormFit:
    """Fit scipy's skewnorm to the references (at least 8 of them; a random `max_references` of more) and test the fit.

    The Kolmogorov-Smirnov p-value is calibrated by a parametric bootstrap that refits every sample (as
    scipy.stats.goodness_of_fit does): with parameters fitted to the same data the plain KS p-value almost never
    rejects (the Lilliefors problem), and an extrapolation from a wrong fit can be off by 100+ bits. The bootstrap is
    sequential (`sequential_mc_p_value`): a fit far from rejection stops after a few dozen refits of `bootstrap`.
    """
    from scipy import stats  # loaded when needed: reading a report need not load it

    refs = finite("reference_log_perplexities", reference_log_perplexities, min_size=8)
    if refs.size > max_references:
        refs = rng.choice(refs, size=max_references, replace=False)
    if np.ptp(refs) == 0:
        raise InputError("all references have the same score; a distribution cannot be fitted")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        a, loc, scale = stats.skewnorm.fit(refs)
        observed = stats.ks_1samp(refs, stats.skewnorm(a, loc, scale).cdf).statistic

        def refit_statistic() -> float:
            sample = stats.skewnorm.rvs(a, loc, scale, size=refs.size, random_state=rng)
            fitted = stats.skewnorm.fit(sample, a, loc=loc, scale=scale)
            return float(stats.ks_1samp(sample, stats.skewnorm(*fitted).cdf).statistic)

        p_value, drawn = sequential_mc_p_value(observed, refit_statistic, samples=bootstrap + 1)
    return SkewnormFit(
        a=float(a), loc=float(loc), scale=float(scale), ks_statistic=float(observed), ks_p_value=float(p_value),
        poor_fit=bool(p_value < 0.05), references_fitted=int(refs.size), bootstrap_refits=drawn,
    )


def extrapolation_exposure(
    *, canary_log_perplexities: np.ndarray, a: float, loc: float, scale: float, max_bits: float | None = None
) -> np.ndarray:
    """Exposure = -log2 CDF(canary) under the fitted skew-normal, clipped to [0, max_bits] (Carlini et al. 2019)."""
    canaries = finite("canary_log_perplexities", canary_log_perplexities)
    if scale <= 0:
        raise InputError("scale must be positive")
    from scipy import stats  # loaded when needed: reading a report need not load it

    exposure = -stats.skewnorm.logcdf(canaries, a, loc=loc, scale=scale) / math.log(2)
    return np.clip(exposure, 0.0, np.inf if max_bits is None else max_bits)
