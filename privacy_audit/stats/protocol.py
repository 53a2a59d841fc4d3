"""The paper's Secret Sharer protocol for independent trials: exact nulls of the mean rank and the rank-0 count.

Each trial ranks one planted canary among N-1 fresh comparisons (ties against the canary), so under no
memorization the T ranks are independent and uniform on 0..N-1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from privacy_audit.errors import InputError
from privacy_audit.stats.permutation import PValue, from_fraction


def mean_rank_p_value(*, ranks: np.ndarray, n_candidates: int) -> PValue:
    """Exact P(mean rank <= observed) when each of T independent ranks is uniform on 0..N-1 (no memorization).

    The sum of T discrete uniforms has P(S <= s) = N^-T * sum_k (-1)^k C(T,k) C(s - kN + T, T),
    computed in exact integer arithmetic. For independent trials only (`secret-sharer`); canaries
    ranked against one shared reference set need `permutation.rank_sum_p_value`.
    """
    r = np.asarray(ranks)
    if r.ndim != 1 or r.size == 0 or np.any(r < 0) or np.any(r >= n_candidates) or np.any(r != np.round(r)):
        raise InputError(f"ranks must be integers in [0, {n_candidates - 1}]")
    t, n, s = int(r.size), int(n_candidates), int(r.sum())
    total = 0
    for k in range(min(t, s // n) + 1):
        total += (-1) ** k * math.comb(t, k) * math.comb(s - k * n + t, t)
    return from_fraction(total, n**t, "exact, independent trials (sum of uniforms)")


def rank_zero_p_value(*, count: int, trials: int, n_candidates: int) -> PValue:
    """P(at least `count` of `trials` independent ranks are 0) when each is 0 with probability 1/N (binomial)."""
    if not 0 <= count <= trials or n_candidates < 1:
        raise InputError("need 0 <= count <= trials and n_candidates >= 1")
    tail = stats.binom.logpmf(np.arange(count, trials + 1), trials, 1.0 / n_candidates)
    log_sf = min(0.0, float(logsumexp(tail))) if count else 0.0
    return PValue(float(np.exp(log_sf)), min(0.0, log_sf / math.log(10)), "exact, independent trials (binomial)")


def tpr_at_rank_fpr(ranks: np.ndarray, *, candidates: int, fpr: float) -> float | None:
    """The fraction of trials whose canary ranks below k = floor(fpr N): under no memorization a rank is uniform
    on 0..N-1, so the rule "rank < k" flags a never-planted candidate with probability k / N <= fpr, exactly.
    None when N is too small for any k >= 1."""
    k = math.floor(fpr * candidates + 1e-9)
    return float(np.mean(np.asarray(ranks) < k)) if k >= 1 else None
