"""The CI gate: rules registered once, each with its threshold's type and range, the data it needs, its
statistic and its false-alarm probability; the gate only compares a checked report with thresholds.

Thresholds come from CLI flags (made from the registry), a TOML file (a `[gate]` table, or top-level
keys), or `[tool.privacy-audit.gate]` in pyproject.toml; `overrides` give single canaries their own
limits for the per-canary rules. The chance rule always runs. A new rule is one decorated function
(`rule`): its flag, config key, JUnit case and "skipped" line follow from the registration.
"""

from __future__ import annotations

from privacy_audit.gate import rules as _rules  # noqa: F401  (registers the built-in rules)
from privacy_audit.gate.check import apply_gate, chance_rule, verdict_lines
from privacy_audit.gate.registry import (
    RULES, SETTINGS, Measurement, Rule, Setting, Thresholds, load_thresholds, rule, thresholds_from_mapping,
)

__all__ = [
    "RULES", "SETTINGS", "Measurement", "Rule", "Setting", "Thresholds", "apply_gate", "chance_rule", "load_thresholds",
    "rule", "thresholds_from_mapping", "verdict_lines",
]
