"""Stage 3: likelihoods of canaries given a teaching prompt, and the exposure maths.

Names load on first use, so reading a report (which imports only `scoring.types`) never imports scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CanaryScore": "privacy_audit.scoring.types", "ScoringOptions": "privacy_audit.scoring.options",
    "ScoringResult": "privacy_audit.scoring.types", "Summary": "privacy_audit.scoring.types",
    "exposure_from_rank": "privacy_audit.scoring.exposure", "null_mean_exposure": "privacy_audit.scoring.exposure",
    "rank_p_value": "privacy_audit.scoring.exposure", "ranks_among": "privacy_audit.scoring.exposure",
    "score_prompt": "privacy_audit.scoring.score",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'privacy_audit.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
