"""A figure is one registered object: a new per-canary figure and a new summary test, defined here and nowhere else,
appear in the JSON report, are checked by their own computation when the report is read, and are rendered in
Markdown; the chance rule's family follows from the registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from privacy_audit.errors import ReportError
from privacy_audit.scoring.figures import Evidence, canary_figure, summary_test, unregister
from privacy_audit.stats.permutation import PValue


@pytest.fixture
def registered():
    """A per-canary figure (exposure in nats) and a summary test (a planted canary beats the references' median),
    registered for one test and removed after it."""

    @canary_figure("exposure_nats", label="exposure (nats)", kind=float, low=0.0)
    def exposure_nats(evidence: Evidence) -> list[float]:
        return [r.exposure_bits * math.log(2) for r in evidence.rows]

    @summary_test("above_median", label="planted above the references' median",
                  render=lambda rows, summary, record: f"p = {record.p:.3g} ({record.method})")
    def above_median(evidence: Evidence, rng: np.random.Generator) -> PValue | None:
        refs = [r.logprob_bits for r in evidence.rows if not r.planted]
        if not refs:
            return None
        median = float(np.median(refs))
        hits = sum(r.logprob_bits > median for r in evidence.rows if r.planted)
        k = sum(r.planted for r in evidence.rows)
        p = sum(math.comb(k, j) for j in range(hits, k + 1)) / 2**k
        return PValue(p, math.log10(p), "binomial, one half")

    yield exposure_nats, above_median
    unregister(exposure_nats)
    unregister(above_median)


def test_a_new_figure_and_test_reach_the_report_its_check_and_its_markdown(registered, tmp_path):
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, load_report, render_markdown
    from privacy_audit import PlantOptions, plant, save_report, score, teach

    canaries = generate_canary_set(template="The code is {secret}", space="digits:3", count=3, references=20, seed=2)
    rows = [{"text": f"message {i}", "label": "ham"} for i in range(6)]
    report = score(teach(plant(canaries, rows, PlantOptions(seed=1)), "raw"), MockModel(), ScoringOptions(mode="exact"))
    path = tmp_path / "r.json"
    save_report(report, path)
    data = json.loads(path.read_text())
    assert all(c["exposure_nats"] == pytest.approx(c["exposure_bits"] * math.log(2)) for c in data["canaries"])
    assert data["summary"]["p_values"]["above_median"]["method"] == "binomial, one half"
    assert load_report(path).summary.p_values["above_median"].p == data["summary"]["p_values"]["above_median"]["p"]
    markdown = render_markdown(load_report(path))
    assert "| planted above the references' median | p = " in markdown and "exposure (nats)" in markdown

    tampered = json.loads(path.read_text())
    tampered["canaries"][0]["exposure_nats"] += 1.0
    (tmp_path / "t1.json").write_text(json.dumps(tampered))
    with pytest.raises(ReportError, match="exposure_nats"):
        load_report(tmp_path / "t1.json")
    tampered = json.loads(path.read_text())
    tampered["summary"]["p_values"]["above_median"]["p"] = 0.5
    (tmp_path / "t2.json").write_text(json.dumps(tampered))
    with pytest.raises(ReportError, match="above_median"):
        load_report(tmp_path / "t2.json")
    tampered = json.loads(path.read_text())
    del tampered["summary"]["p_values"]["above_median"]
    (tmp_path / "t3.json").write_text(json.dumps(tampered))
    with pytest.raises(ReportError, match="above_median"):
        load_report(tmp_path / "t3.json")


def test_the_chance_rule_counts_a_registered_test(registered):
    from privacy_audit import MockModel, PlantOptions, ScoringOptions, apply_gate, generate_canary_set, plant, score
    from privacy_audit import teach

    canaries = generate_canary_set(template="The code is {secret}", space="digits:3", count=3, references=20, seed=2)
    report = score(teach(plant(canaries, [{"text": "hello"}] * 4, PlantOptions(seed=1)), "zero-shot"), MockModel(),
                   ScoringOptions(mode="exact"))
    chance = next(r for r in apply_gate(report).rules if r.rule == "chance")
    planted = sum(c.planted for c in report.canaries)
    chance_tests = ("planted_vs_references", "similarity", "planted_in_prompt", "above_median")
    assert f"({planted + len(chance_tests)} " in chance.message


def test_an_unknown_figure_in_a_report_is_refused(tmp_path):
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, load_report, save_report
    from privacy_audit import PlantOptions, plant, score, teach

    canaries = generate_canary_set(template="The code is {secret}", space="digits:2", count=2, references=5, seed=2)
    report = score(teach(plant(canaries, [{"text": "hi"}] * 3, PlantOptions(seed=1)), "raw"), MockModel(),
                   ScoringOptions(mode="exact"))
    save_report(report, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    data["canaries"][0]["made_up"] = 1.0
    (tmp_path / "x.json").write_text(json.dumps(data))
    with pytest.raises(ReportError, match="made_up"):
        load_report(tmp_path / "x.json")
    data = json.loads((tmp_path / "r.json").read_text())
    data["summary"]["p_values"]["made_up"] = {"p": 0.5, "log10_p": math.log10(0.5), "method": "x"}
    (tmp_path / "y.json").write_text(json.dumps(data))
    with pytest.raises(ReportError, match="made_up"):
        load_report(tmp_path / "y.json")
