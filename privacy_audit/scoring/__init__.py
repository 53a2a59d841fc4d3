"""Stage 3: likelihoods of canaries given a teaching prompt, each canary's figures, the summary tests and statistics.

Names load on first use, so the CLI's start-up imports none of the scoring engine; the built-in figures and
summary tests register here, before any report row is read or made.
"""

from __future__ import annotations

import importlib
from typing import Any

from privacy_audit.scoring import measures as _measures  # noqa: F401  (registers the built-in figures and tests)

_EXPORTS = {
    "CanaryScore": "privacy_audit.scoring.types", "ScoringOptions": "privacy_audit.scoring.options",
    "ScoringResult": "privacy_audit.scoring.types", "Summary": "privacy_audit.scoring.types",
    "canary_figure": "privacy_audit.scoring.figures", "summary_test": "privacy_audit.scoring.figures",
    "score_prompt": "privacy_audit.scoring.score", "membership_attack": "privacy_audit.scoring.membership",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'privacy_audit.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
