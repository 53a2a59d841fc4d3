"""Stage 3: likelihoods of canaries given a teaching prompt, and the exposure maths."""

from privacy_audit.scoring.exposure import exposure_from_rank, null_mean_exposure, rank_p_value, ranks_among
from privacy_audit.scoring.score import CanaryScore, ScoringResult, Summary, score_prompt

__all__ = [
    "CanaryScore",
    "ScoringResult",
    "Summary",
    "exposure_from_rank",
    "null_mean_exposure",
    "rank_p_value",
    "ranks_among",
    "score_prompt",
]
