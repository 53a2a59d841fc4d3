"""The gate's comparison: the chance rule's family is each canary's rank test and every registered summary test that
counts toward chance; without thresholds the chance rule alone runs."""

from __future__ import annotations

import math

from privacy_audit import MockModel, PlantOptions, ScoringOptions, generate_canary_set, plant, score, teach
from privacy_audit.gate.check import apply_gate, chance_rule
from privacy_audit.scoring.figures import summary_tests


def test_the_chance_rule_is_bonferroni_over_its_family():
    cs = generate_canary_set(template="The code is {secret}", space="digits:3", count=2, references=10, seed=3)
    report = score(teach(plant(cs, [{"text": "hello"}] * 3, PlantOptions(seed=1)), "zero-shot"), MockModel(),
                   ScoringOptions(mode="exact"))
    family = [c.p_value for c in report.canaries if c.planted]
    family += [t.of(report.summary).p for t in summary_tests().values() if t.chance and t.of(report.summary)]
    rule = chance_rule(report, alpha=0.01)
    assert math.isclose(rule.value, min(1.0, len(family) * min(family)))
    assert f"({len(family)} " in rule.message
    outcome = apply_gate(report)
    assert [r.rule for r in outcome.rules] == ["chance"] and outcome.thresholds["alpha"] == 0.01
