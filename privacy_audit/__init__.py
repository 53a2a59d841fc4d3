"""privacy-audit: measure how much private data leaks through LLM social learning.

Plant canaries in teachers' private data, run the teaching pipeline as a black box, and score how
likely each canary is as a continuation of the teaching prompt (Secret Sharer exposure).
Importing this package loads no torch or transformers.
"""

import importlib
from typing import Any

# Public names and the module each lives in: imported on first use, so `import privacy_audit` (and
# the CLI's start-up) loads only what a command needs, and never torch.
_EXPORTS = {
    "ChainResult": "privacy_audit.chain", "make_report": "privacy_audit.chain", "to_records": "privacy_audit.chain",
    "ScoringResult": "privacy_audit.scoring", "Comparison": "privacy_audit.reports.compare",
    "compare": "privacy_audit.reports.compare", "RuleOutcome": "privacy_audit.reports",
    "SkippedRule": "privacy_audit.reports", "ModelInfo": "privacy_audit.models", "Context": "privacy_audit.models",
    "ContextBackend": "privacy_audit.models", "rule": "privacy_audit.gate", "Measurement": "privacy_audit.gate",
    "reconstruction": "privacy_audit.scoring.reconstruction", "check_report": "privacy_audit.reports.validate",
    "Summary": "privacy_audit.scoring", "RunSpec": "privacy_audit.reports", "Statistics": "privacy_audit.scoring.types",
    "AuditConfig": "privacy_audit.config", "AuditReport": "privacy_audit.reports", "Canary": "privacy_audit.canaries",
    "CanaryScore": "privacy_audit.scoring", "CanarySet": "privacy_audit.canaries", "Completion": "privacy_audit.models",
    "GateOutcome": "privacy_audit.reports", "InputError": "privacy_audit.errors",
    "LanguageModel": "privacy_audit.models", "MockModel": "privacy_audit.models", "ModelError": "privacy_audit.errors",
    "PipelineError": "privacy_audit.errors", "PlantOptions": "privacy_audit.chain",
    "Planting": "privacy_audit.canaries", "Preset": "privacy_audit.canaries.presets",
    "PrivacyAuditError": "privacy_audit.errors", "Record": "privacy_audit.pipelines",
    "ReportError": "privacy_audit.errors", "SCHEMA_VERSION": "privacy_audit.reports",
    "ScoredContinuations": "privacy_audit.models", "ScoringOptions": "privacy_audit.scoring.options",
    "TeachOptions": "privacy_audit.chain", "SecretSpace": "privacy_audit.canaries",
    "TeachingOutput": "privacy_audit.pipelines", "Thresholds": "privacy_audit.gate",
    "Utility": "privacy_audit.pipelines", "build_report": "privacy_audit.chain",
    "compare_reports": "privacy_audit.audit", "design_checks": "privacy_audit.canaries.checks",
    "exposure_from_rank": "privacy_audit.scoring", "apply_gate": "privacy_audit.gate",
    "generate_canary_set": "privacy_audit.canaries", "list_presets": "privacy_audit.canaries.presets",
    "load_canary_set": "privacy_audit.canaries", "load_config": "privacy_audit.config",
    "load_model": "privacy_audit.models", "load_preset": "privacy_audit.canaries.presets",
    "load_report": "privacy_audit.reports", "load_thresholds": "privacy_audit.gate",
    "make_canaries": "privacy_audit.audit", "null_mean_exposure": "privacy_audit.scoring",
    "parse_space": "privacy_audit.canaries", "pipeline": "privacy_audit.pipelines", "plant": "privacy_audit.audit",
    "plant_records": "privacy_audit.canaries", "rank_p_value": "privacy_audit.scoring",
    "ranks_among": "privacy_audit.scoring", "render_markdown": "privacy_audit.reports",
    "render_report": "privacy_audit.audit", "run_demo": "privacy_audit.demo", "run_chain": "privacy_audit.chain",
    "run_audit": "privacy_audit.audit_runs", "run_audits": "privacy_audit.audit_runs",
    "run_secret_sharer": "privacy_audit.secret_sharer",
    "run_pipeline": "privacy_audit.pipelines", "save_canary_set": "privacy_audit.canaries",
    "save_report": "privacy_audit.reports", "score": "privacy_audit.audit_runs",
    "score_prompt": "privacy_audit.scoring",
    "student_accuracy": "privacy_audit.pipelines", "teach": "privacy_audit.audit_runs",
}


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
