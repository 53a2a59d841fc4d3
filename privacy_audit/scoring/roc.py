"""ROC figures of membership inference, and the AUC's null: pure numpy, so reading and gating a report need no scipy."""

from __future__ import annotations

import math

import numpy as np

from privacy_audit.errors import InputError


def _finite(name: str, values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite")
    return arr


# Up to this many member x non-member pairs the AUC's null is counted exactly; beyond, its normal limit.
EXACT_AUC_PAIRS = 20_000


def auc_above_null(*, members: int, non_members: int, limit: float) -> float:
    """P(AUC > limit) when members and non-members are exchangeable (continuous scores): the exact
    Mann-Whitney null by the usual recurrence over (members, non-members), or its normal limit with a
    continuity correction for more than EXACT_AUC_PAIRS pairs."""
    m, n = members, non_members
    pairs = m * n
    cut = math.floor(limit * pairs + 1e-9)  # AUC > limit  <=>  U > cut
    if pairs > EXACT_AUC_PAIRS:
        z = (cut + 0.5 - pairs / 2) / math.sqrt(pairs * (m + n + 1) / 12)
        return 0.5 * math.erfc(z / math.sqrt(2))
    prev = np.zeros((n + 1, pairs + 1))
    prev[:, 0] = 1.0  # no members yet: U = 0 in one way
    for _ in range(m):  # one more member each round
        cur = np.zeros_like(prev)
        cur[0, 0] = 1.0
        for j in range(1, n + 1):  # the largest score is a non-member (U unchanged) or a member (beats all j)
            cur[j] = cur[j - 1]
            cur[j, j:] += prev[j, : pairs + 1 - j]
        prev = cur
    counts = prev[n]
    return float(counts[cut + 1 :].sum() / counts.sum())


def auc(*, member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    """The ROC AUC of "higher score = member": the fraction of member x non-member pairs the member wins, ties half."""
    pos = _finite("member_scores", member_scores)
    neg = np.sort(_finite("non_member_scores", non_member_scores))
    if pos.size == 0 or neg.size == 0:
        raise InputError("an AUC needs members and non-members")
    below = np.searchsorted(neg, pos, side="left")
    ties = np.searchsorted(neg, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (pos.size * neg.size))


def tpr_at_fpr(*, member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float = 0.01) -> float:
    """Largest true-positive rate of a rule "score >= t" over every threshold t with false-positive rate <= fpr.

    Every distinct score is a threshold (ROC points that sklearn's roc_curve would drop as collinear count).
    """
    pos = np.sort(np.asarray(member_scores, dtype=np.float64))
    neg = np.sort(np.asarray(non_member_scores, dtype=np.float64))
    thresholds = np.unique(np.concatenate([pos, neg, [np.inf]]))
    tprs = (pos.size - np.searchsorted(pos, thresholds, side="left")) / pos.size
    fprs = (neg.size - np.searchsorted(neg, thresholds, side="left")) / neg.size
    return float(np.max(tprs[fprs <= fpr + 1e-12]))
