"""privacy-audit: measure how much private data leaks through LLM social learning.

Plant canaries in teachers' private data, run the teaching pipeline as a black box, and score how
likely each canary is as a continuation of the teaching prompt (Secret Sharer exposure).
Importing this package loads no torch or transformers.
"""

from privacy_audit.audit import build_report, compare_reports, make_canaries, plant, render_report, run_demo, score, teach
from privacy_audit.canaries.checks import design_checks
from privacy_audit.canaries.presets import Preset, list_presets, load_preset
from privacy_audit.canaries import (
    Canary,
    CanarySet,
    Planting,
    SecretSpace,
    generate_canary_set,
    load_canary_set,
    parse_space,
    plant_records,
    save_canary_set,
)
from privacy_audit.errors import InputError, ModelError, PipelineError, PrivacyAuditError, ReportError
from privacy_audit.gate import Thresholds, gate, load_thresholds
from privacy_audit.models import LanguageModel, MockModel, ScoredContinuations, load_model
from privacy_audit.pipelines import Record, TeachingOutput, Utility, pipeline, run_pipeline, student_accuracy
from privacy_audit.reports import SCHEMA_VERSION, AuditReport, GateOutcome, load_report, render_markdown, save_report
from privacy_audit.scoring import CanaryScore, exposure_from_rank, null_mean_exposure, rank_p_value, ranks_among, score_prompt

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "AuditReport",
    "Canary",
    "CanaryScore",
    "CanarySet",
    "GateOutcome",
    "InputError",
    "LanguageModel",
    "MockModel",
    "ModelError",
    "PipelineError",
    "Planting",
    "Preset",
    "PrivacyAuditError",
    "Record",
    "ReportError",
    "ScoredContinuations",
    "SecretSpace",
    "TeachingOutput",
    "Thresholds",
    "Utility",
    "build_report",
    "compare_reports",
    "design_checks",
    "exposure_from_rank",
    "gate",
    "generate_canary_set",
    "list_presets",
    "load_canary_set",
    "load_model",
    "load_preset",
    "load_report",
    "load_thresholds",
    "make_canaries",
    "null_mean_exposure",
    "parse_space",
    "pipeline",
    "plant",
    "plant_records",
    "rank_p_value",
    "ranks_among",
    "render_markdown",
    "render_report",
    "run_demo",
    "run_pipeline",
    "save_canary_set",
    "save_report",
    "score",
    "score_prompt",
    "student_accuracy",
    "teach",
]
