"""Stage 2: teaching pipelines, registered by name; every one is a black box to the scorer."""

from privacy_audit.pipelines import builtin as _builtin  # noqa: F401  (registers the built-ins)
from privacy_audit.pipelines import command as _command  # noqa: F401
from privacy_audit.pipelines import dp_examples as _dp_examples  # noqa: F401
from privacy_audit.pipelines import examples as _examples  # noqa: F401
from privacy_audit.pipelines.base import (
    PrivacyClaim, Record, RoundArtifact, TeacherArtifact, TeachingOutput, configure, describe, format_example, pipeline,
    pipeline_names, run_pipeline, teaching_path,
)
from privacy_audit.pipelines.builtin import INSTRUCTION_PROMPT
from privacy_audit.pipelines.teaching import (
    TeachOptions, Teaching, teach, teach_records, to_records, versions, with_claim,
)
from privacy_audit.pipelines.utility import Utility, student_accuracy

__all__ = [
    "INSTRUCTION_PROMPT", "PrivacyClaim", "Record", "RoundArtifact", "TeachOptions", "TeacherArtifact", "Teaching",
    "TeachingOutput", "Utility", "configure", "describe", "format_example", "pipeline", "pipeline_names",
    "run_pipeline", "student_accuracy", "teach", "teach_records", "teaching_path", "to_records", "versions",
    "with_claim",
]
