"""ROC figures of membership inference (AUC with its interval, TPR at low FPR, the curve) and the AUC's null."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite
from privacy_audit.stats.intervals import auc_ci


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
    pos = finite("member_scores", member_scores)
    neg = np.sort(finite("non_member_scores", non_member_scores))
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


def roc_points(*, member_scores: np.ndarray, non_member_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of "score >= t" at t = +inf and at every distinct score, highest first: scikit-learn's
    `roc_curve(..., drop_intermediate=False)`, from (0, 0) to (1, 1)."""
    pos = np.sort(finite("member_scores", member_scores, min_size=1))
    neg = np.sort(finite("non_member_scores", non_member_scores, min_size=1))
    thresholds = np.unique(np.concatenate([pos, neg]))[::-1]
    tpr = (pos.size - np.searchsorted(pos, thresholds, side="left")) / pos.size
    fpr = (neg.size - np.searchsorted(neg, thresholds, side="left")) / neg.size
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


@dataclass(frozen=True)
class RocSummary:
    """Membership inference by a score: members (private examples) vs held-out non-members."""

    auc: float
    auc_ci: tuple[float, float] | None
    tpr_at_1pct_fpr: float
    tpr_at_0_1pct_fpr: float
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]


def roc_summary(*, member_scores: np.ndarray, non_member_scores: np.ndarray) -> RocSummary:
    """ROC of 'higher score = member' over every threshold: AUC (ties half) with its Clopper-Pearson interval
    (`intervals.auc_ci`), and TPR at 1% and 0.1% FPR taken from all thresholds (ties included; with fewer than
    1,000 non-members, TPR at 0.1% FPR is the TPR with no false positive at all)."""
    pos = finite("member_scores", member_scores, min_size=1)
    neg = finite("non_member_scores", non_member_scores, min_size=1)
    area = auc(member_scores=pos, non_member_scores=neg)
    fpr, tpr = roc_points(member_scores=pos, non_member_scores=neg)
    return RocSummary(
        area, auc_ci(area, positives=pos.size, negatives=neg.size),
        tpr_at_fpr(member_scores=pos, non_member_scores=neg, fpr=0.01),
        tpr_at_fpr(member_scores=pos, non_member_scores=neg, fpr=0.001), tuple(map(float, fpr)), tuple(map(float, tpr)),
    )
