"""Stage 4: the versioned report, its check when read, and its renderings."""

from privacy_audit.reports.markdown import render_comparison, render_markdown
from privacy_audit.reports.schema import (
    SCHEMA_VERSION, AuditReport, GateOutcome, RuleOutcome, RunSpec, SkippedRule, holds_secrets, migrate, save_report,
)
from privacy_audit.reports.validate import check_report, load_report

__all__ = [
    "SCHEMA_VERSION", "AuditReport", "GateOutcome", "RuleOutcome", "RunSpec", "SkippedRule", "check_report",
    "holds_secrets", "load_report", "migrate", "render_comparison", "render_markdown", "save_report",
]
