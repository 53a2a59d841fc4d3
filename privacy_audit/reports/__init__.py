"""Stage 4: the versioned report and its renderings."""

from privacy_audit.reports.markdown import render_comparison, render_markdown
from privacy_audit.reports.schema import (
    SCHEMA_VERSION, AuditReport, GateOutcome, RuleOutcome, RunSpec, SkippedRule, holds_secrets, load_report, migrate,
    save_report,
)

__all__ = [
    "SCHEMA_VERSION", "AuditReport", "GateOutcome", "RuleOutcome", "RunSpec", "SkippedRule", "holds_secrets",
    "load_report", "migrate", "render_comparison", "render_markdown", "save_report",
]
