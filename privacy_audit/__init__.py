"""privacy-audit: measure how much private data leaks through LLM social learning.

Plant canaries in teachers' private data, run the teaching pipeline as a black box, and score how
likely each canary is as a continuation of the teaching prompt (Secret Sharer exposure).
Importing this package loads no torch or transformers.
"""

import importlib
from typing import Any

# Public names by stage, each with the module it lives in: imported on first use, so `import privacy_audit` (and the
# CLI's start-up) loads only what a command needs, and never torch. The stages chain: a canary set is planted
# (`plant` -> `Planted`), taught from (`teach` -> `Teaching`), scored into a report (`score` -> `AuditReport`), and
# gated (`apply_gate` -> `GateOutcome`); `run_chain` is those steps in a row, `run_audits` a whole config.
_STAGES = {
    "privacy_audit.canaries": ("CanarySet", "PlantOptions", "Planted", "generate_canary_set", "load_canary_set",
                               "plant"),
    "privacy_audit.models": ("LanguageModel", "MockModel", "ModelSpec", "load_model"),
    "privacy_audit.pipelines": ("Teaching", "pipeline", "teach"),
    "privacy_audit.scoring": ("ScoringOptions", "canary_figure", "score_prompt", "summary_test"),
    "privacy_audit.reports": ("AuditReport", "load_report", "render_markdown", "save_report"),
    "privacy_audit.gate": ("Thresholds", "apply_gate", "rule"),
    "privacy_audit.chain": ("run_chain", "score"),
    "privacy_audit.config": ("load_config",),
    "privacy_audit.audit_runs": ("run_audits",),
    "privacy_audit.errors": ("PrivacyAuditError",),
}
_EXPORTS = {name: module for module, names in _STAGES.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privacy_audit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.2.0"

__all__ = sorted(_EXPORTS)
