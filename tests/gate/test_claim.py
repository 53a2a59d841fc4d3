"""A teacher's stated privacy claim travels with its prompt into the report, and the gate holds the audited epsilon
lower bound to it: through the CLI (teach --claimed-epsilon), a run config, and the API."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit import MockModel, generate_canary_set, load_report, render_markdown
from privacy_audit.chain import build_report
from privacy_audit.cli import main
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.pipelines import PrivacyClaim, TeachingOutput
from privacy_audit.stats.epsilon import epsilon_randomized_inclusion
from privacy_audit.stats.fdp import gdp_randomized_inclusion


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def copying_report(claim: PrivacyClaim | None, *, randomized: bool = True, count: int = 48):
    """Canaries copied verbatim into the prompt by a teacher that claims `claim`."""
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=count, references=0,
                             seed=5, randomized=randomized)
    prompt = "".join(f"The secret code is {c.secret}.\n" for c in cs.planted)
    teaching = TeachingOutput(prompt=prompt, pipeline="raw", options={}, seed=0, model=None, claim=claim)
    return build_report(teaching, cs, MockModel())


def test_a_broken_claim_fails_the_gate_and_a_kept_one_passes():
    broken = apply_gate(copying_report(PrivacyClaim(epsilon=0.1)))
    rule = next(r for r in broken.rules if r.rule == "max_epsilon")
    assert not rule.passed and rule.value > 0.1 and rule.false_alarm == pytest.approx(0.05)
    assert "claimed (0.1, 0), stated" in rule.message
    kept = next(r for r in apply_gate(copying_report(PrivacyClaim(epsilon=8.0))).rules if r.rule == "max_epsilon")
    assert kept.passed
    assert not any(r.rule == "max_epsilon" for r in apply_gate(copying_report(None)).rules)  # no claim, no rule
    # a flag overrides the claim, and works without one
    explicit = apply_gate(copying_report(PrivacyClaim(epsilon=8.0)), Thresholds(max_epsilon=0.1))
    assert not next(r for r in explicit.rules if r.rule == "max_epsilon").passed


def test_a_claim_with_delta_is_audited_at_its_delta_or_skipped_with_the_reason():
    fixed = copying_report(PrivacyClaim(epsilon=0.1, delta=1e-5), randomized=False, count=8)
    rule = next(r for r in apply_gate(fixed).rules if r.rule == "max_epsilon")
    assert "one_run bound at delta = 1e-05" in rule.message and not rule.passed
    # randomized inclusion at delta > 0: Steinke et al.'s Theorem 5.2 (the tail plus 2 m delta times its slope)
    randomized = next(r for r in apply_gate(copying_report(PrivacyClaim(epsilon=1.0, delta=1e-5))).rules
                      if r.rule == "max_epsilon")
    assert "randomized_inclusion bound at delta = 1e-05" in randomized.message and not randomized.passed
    assert "| claimed privacy of the teacher | epsilon 1 at delta = 1e-05 (stated" in render_markdown(
        copying_report(PrivacyClaim(epsilon=1.0, delta=1e-5)))


def test_teach_records_the_claim_and_the_gate_holds_the_report_to_it(tmp_path):
    data = tmp_path / "data.jsonl"
    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:24]
    data.write_text("\n".join(lines) + "\n")
    assert run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:4", "--count",
               "48", "--references", "0", "--randomized-inclusion", "--seed", "2", "--out", tmp_path / "s.json"
               ).exit_code == 0
    assert run("canaries", "plant", tmp_path / "s.json", "--data", data, "--out", tmp_path / "p.jsonl").exit_code == 0
    taught = run("teach", "--pipeline", "raw", "--data", tmp_path / "p.jsonl", "--examples", "24", "--out",
                 tmp_path / "t.txt", "--claimed-epsilon", "0.05")
    assert taught.exit_code == 0, taught.output
    sidecar = json.loads((tmp_path / "t.txt.teaching.json").read_text())
    assert sidecar["claim"] == {"epsilon": 0.05, "delta": 0.0, "source": "stated", "mechanism": None,
                                "noise_multiplier": None, "accountant": None, "ledger": None, "mu": None}
    scored = run("score", "--prompt", tmp_path / "t.txt", "--canaries", tmp_path / "s.json", "--model", "mock",
                 "--out", tmp_path / "r.json")
    assert scored.exit_code == 0, scored.output
    assert load_report(tmp_path / "r.json").run.claim == PrivacyClaim(epsilon=0.05)
    gate = run("gate", tmp_path / "r.json")
    assert gate.exit_code == 1 and "[max_epsilon] report: audited epsilon lower bound" in gate.output
    assert "above the limit of 0.05" in gate.output
    bad_flags = ((["--claimed-delta", "0.1"], "needs --claimed-epsilon"), (["--claimed-epsilon", "0"], "0<x<=100"),
                 (["--claimed-epsilon", "1", "--claimed-delta", "1"], "0<=x<1"))
    for bad, words in bad_flags:
        out = run("teach", "--pipeline", "raw", "--data", tmp_path / "p.jsonl", "--out", tmp_path / "x.txt", *bad)
        assert out.exit_code == 2 and words in out.output and not (tmp_path / "x.txt").exists()


def test_a_run_config_states_the_claim(tmp_path):
    from privacy_audit.config import load_config

    config = tmp_path / "audit.toml"
    canaries = '[canaries]\ntemplate = "code {secret}"\nspace = "digits:3"\n'
    config.write_text(canaries + '[pipeline]\nname = "raw"\nclaim = { epsilon = 2.0, delta = 1e-6 }\n')
    cfg = load_config(config)
    assert cfg.pipeline.teach_options().claim == PrivacyClaim(epsilon=2.0, delta=1e-6)
    config.write_text(canaries + '[pipeline]\nname = "raw"\nclaim = { epsilon = -2.0 }\n')
    with pytest.raises(Exception, match="claim"):
        load_config(config)


def test_a_claim_in_gaussian_dp_is_held_to_the_f_dp_bound_mu_against_mu():
    broken = apply_gate(copying_report(PrivacyClaim(epsilon=8.0, delta=1e-5, mu=0.1)))
    rule = next(r for r in broken.rules if r.rule == "max_mu")
    assert not rule.passed and rule.value > 0.1 and rule.false_alarm == pytest.approx(0.05)
    assert "f-DP bound" in rule.message and "claimed mu 0.1" in rule.message
    report = copying_report(PrivacyClaim(epsilon=8.0, delta=1e-5, mu=64.0))
    assert next(r for r in apply_gate(report).rules if r.rule == "max_mu").passed
    assert report.statistics.gdp is not None and "f-DP (Gaussian) mu lower bound" in render_markdown(report)
    assert not any(r.rule == "max_mu" for r in apply_gate(copying_report(PrivacyClaim(epsilon=8.0))).rules)
    fixed = apply_gate(copying_report(None, randomized=False, count=8), Thresholds(max_mu=1.0)).skipped
    assert [s.rule for s in fixed] == ["max_mu"] and "planted by coins" in fixed[0].reason


def test_each_claim_rule_says_what_a_total_leak_of_its_canaries_would_certify():
    """A copying teacher is a total leak, so the bound it certifies is the most these canaries can: the rule says so,
    and where that cannot exceed the claim it says the audit cannot fail (plant more)."""
    for claim, cannot in ((PrivacyClaim(epsilon=0.1, delta=1e-5, mu=0.02), False),
                          (PrivacyClaim(epsilon=8.0, delta=1e-5, mu=3.0), True)):
        report = copying_report(claim)
        planted = np.array([c.planted for c in report.canaries])
        most = {"max_epsilon": epsilon_randomized_inclusion(scores=planted.astype(float), planted=planted,
                                                            delta=1e-5).epsilon,
                "max_mu": gdp_randomized_inclusion(scores=planted.astype(float), planted=planted, delta=1e-5).mu}
        rules = [r for r in apply_gate(report).rules if r.rule in most]
        assert {r.rule for r in rules} == set(most)
        for rule in rules:
            assert rule.value == pytest.approx(most[rule.rule])  # the copier leaks all there is to leak
            assert f"a total leak of these canaries would certify {most[rule.rule]:.3g}" in rule.message
            assert ("cannot fail this rule: plant more" in rule.message) == cannot, rule.message
