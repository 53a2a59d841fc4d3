"""Secret Sharer trials summarised: the ranks' mean and rank-0 count with their exact independent-trials p-values
(`stats.protocol`), and the trials read as a membership test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from privacy_audit.scoring.types import PValueRecord, ProtocolSummary
from privacy_audit.stats.protocol import mean_rank_p_value, rank_zero_p_value, tpr_at_rank_fpr


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
