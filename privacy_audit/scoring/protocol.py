"""The paper's Secret Sharer protocol for independent trials: exact nulls of the mean rank and the rank-0 count.

Each trial ranks one planted canary among N-1 fresh comparisons (ties against the canary), so under no
memorization the T ranks are independent and uniform on 0..N-1. Pure numpy/scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.special import logsumexp

from privacy_audit.errors import InputError
from privacy_audit.scoring.permutation import PValue, from_fraction
from privacy_audit.scoring.types import PValueRecord, ProtocolSummary


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


def summarise_trials(
    ranks: Sequence[int], *, candidates: int, in_prompt: Sequence[bool], ties: Sequence[int] | None = None
) -> ProtocolSummary:
    """Mean rank and rank-0 count of T independent trials with exact p-values against (N-1)/2 and T/N, and the
    trials read as a membership test (AUC, TPR at 1% and 0.1% FPR).

    Ranks count ties against the canary, which keeps the p-values and TPRs valid; the AUC counts each of a
    trial's `ties` (comparisons scoring exactly the canary's score) as half, the usual convention, so that a
    measure that cannot tell most candidates apart (a data-only one, on a prompt without the secret) reads 1/2."""
    r = np.asarray(ranks, dtype=np.int64)
    tied = np.zeros_like(r) if ties is None else np.asarray(ties, dtype=np.int64)
    zeros = int(np.sum(r == 0))
    mean_p = mean_rank_p_value(ranks=r, n_candidates=candidates)
    zero_p = rank_zero_p_value(count=zeros, trials=len(r), n_candidates=candidates)
    return ProtocolSummary(
        trials=len(r), candidates=candidates, ranks=tuple(int(x) for x in r), mean_rank=float(r.mean()),
        null_mean_rank=(candidates - 1) / 2,
        mean_rank_p=PValueRecord(p=mean_p.p, log10_p=mean_p.log10_p, method=mean_p.method), rank_zero_count=zeros,
        null_rank_zero_count=len(r) / candidates,
        rank_zero_p=PValueRecord(p=zero_p.p, log10_p=zero_p.log10_p, method=zero_p.method),
        canary_in_prompt=int(sum(bool(x) for x in in_prompt)),
        auc=float(1.0 - (r - tied / 2).mean() / (candidates - 1)) if candidates > 1 else None,
        tpr_at_1pct_fpr=tpr_at_rank_fpr(r, candidates=candidates, fpr=0.01),
        tpr_at_0_1pct_fpr=tpr_at_rank_fpr(r, candidates=candidates, fpr=0.001),
    )
