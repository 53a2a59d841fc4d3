"""Reconstruction likelihood (membership inference): are the teacher's private examples more likely,
given the teaching prompt, than held-out examples from the same data that no teacher saw?"""

from __future__ import annotations

from collections.abc import Sequence

from privacy_audit.errors import InputError
from privacy_audit.models.base import LanguageModel
from privacy_audit.stats.roc import roc_summary
from privacy_audit.scoring.types import Reconstruction


def reconstruction(
    model: LanguageModel, context: str, *, members: Sequence[str], non_members: Sequence[str]
) -> Reconstruction:
    """Score every example as a continuation of `context` (mean log2-prob per token) and summarise the ROC."""
    if not members or not non_members:
        raise InputError("reconstruction needs private (member) and held-out (non-member) examples")
    scored = model.open_context(context)(list(members) + list(non_members)).means(0)
    pos, neg = scored[: len(members)], scored[len(members) :]
    roc = roc_summary(member_scores=pos, non_member_scores=neg)
    return Reconstruction(
        member_scores=tuple(map(float, pos)), non_member_scores=tuple(map(float, neg)), auc=roc.auc,
        auc_ci=roc.auc_ci, tpr_at_1pct_fpr=roc.tpr_at_1pct_fpr, fpr=roc.fpr, tpr=roc.tpr,
        tpr_at_0_1pct_fpr=roc.tpr_at_0_1pct_fpr,
    )
