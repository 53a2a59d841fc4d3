"""The differentially private examples pipeline: its noise calibrated by dp-accounting, its claim accounted and
recorded with mechanism, noise and ledger, audited by the gate like any claim; and the accounting itself."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit import MockModel, load_report, render_markdown
from privacy_audit.cli import main
from privacy_audit.gate import apply_gate
from privacy_audit.pipelines import Record, run_pipeline
from privacy_audit.pipelines.accounting import calibrate_gaussian, gaussian_epsilon

RECORDS = [Record(text=f"message {i}: call me about the order {100 + i}", label="spam" if i % 3 else "ham")
           for i in range(24)]


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("epsilon,delta,steps", [(1.0, 1e-5, 64), (4.0, 1e-6, 384), (8.0, 1e-5, 10)])
def test_the_calibrated_noise_is_the_least_that_keeps_the_target(epsilon, delta, steps):
    ledger = calibrate_gaussian(epsilon, delta, steps)
    assert ledger.epsilon <= epsilon * (1 + 1e-9) and ledger.steps == steps
    assert gaussian_epsilon(ledger.noise_multiplier * 0.99, steps, delta).epsilon > epsilon
    assert f"count={steps}" in ledger.ledger and "GaussianDpEvent" in ledger.ledger
    # more releases at the same noise spend more; more noise spends less
    assert gaussian_epsilon(ledger.noise_multiplier, 2 * steps, delta).epsilon > ledger.epsilon
    assert gaussian_epsilon(2 * ledger.noise_multiplier, steps, delta).epsilon < ledger.epsilon


def test_the_pipeline_writes_examples_and_accounts_its_claim():
    out = run_pipeline("dp-examples", RECORDS, model=MockModel(), seed=3,
                       options={"teachers": 4, "n": 3, "max_new_tokens": 10, "epsilon": 2.0, "delta": 1e-5})
    examples = out.prompt.split("\n\n")
    assert len(examples) == 3 and all(e.startswith("Text:") for e in examples)
    claim = out.claim
    assert claim is not None and claim.source == "accounted" and claim.delta == 1e-5
    again = gaussian_epsilon(claim.noise_multiplier, 3 * 10, 1e-5)
    assert claim.epsilon == pytest.approx(again.epsilon) and claim.epsilon <= 2.0 and claim.ledger == again.ledger
    assert "sqrt(2)" in claim.mechanism and "dp-accounting" in claim.accountant
    assert claim.mu == pytest.approx((3 * 10) ** 0.5 / claim.noise_multiplier)  # composed Gaussians: sqrt(k)/s
    # every teacher's turn names the records of its own shard only, and the shards are disjoint
    shards: dict[int, set[int]] = {}
    for a in out.artifacts:
        shards.setdefault(a.teacher, set()).update(a.records)
    assert sum(len(s) for s in shards.values()) == len(set().union(*shards.values()))
    same = run_pipeline("dp-examples", RECORDS, model=MockModel(), seed=3,
                        options={"teachers": 4, "n": 3, "max_new_tokens": 10, "epsilon": 2.0, "delta": 1e-5})
    assert same.prompt == out.prompt  # seeded noise
    plain = run_pipeline("dp-examples", RECORDS, model=MockModel(), seed=3,
                         options={"teachers": 4, "n": 3, "max_new_tokens": 10, "noise": False})
    assert plain.claim is None


def test_a_model_without_next_token_probabilities_is_refused_and_a_stated_claim_is_not_doubled(tmp_path):
    data = tmp_path / "data.jsonl"
    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:24]
    data.write_text("\n".join(lines) + "\n")
    words = run("teach", "--pipeline", "dp-examples", "--data", data, "--label-field", "label", "--model",
                "ngram", "-o", "teachers=4", "--out", tmp_path / "x.txt")
    assert words.exit_code == 2 and len(words.output.strip().splitlines()) == 1, words.output
    assert not (tmp_path / "x.txt").exists()
    doubled = run("teach", "--pipeline", "dp-examples", "--data", data, "--label-field", "label", "--model", "mock",
                  "-o", "teachers=4", "-o", "n=1", "-o", "max_new_tokens=4", "--claimed-epsilon", "1",
                  "--out", tmp_path / "y.txt")
    assert doubled.exit_code == 2 and "accounts its own privacy claim" in doubled.output


def test_an_accounted_claim_travels_into_the_report_and_the_gate_holds_it(tmp_path):
    data = tmp_path / "data.jsonl"
    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:32]
    data.write_text("\n".join(lines) + "\n")
    assert run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:3", "--count",
               "8", "--references", "40", "--seed", "2", "--out", tmp_path / "s.json").exit_code == 0
    assert run("canaries", "plant", tmp_path / "s.json", "--data", data, "--shards", "4", "--fraction", "0.25", "--out",
               tmp_path / "p.jsonl").exit_code == 0
    taught = run("teach", "--pipeline", "dp-examples", "--data", tmp_path / "p.jsonl", "--label-field", "label",
                 "--model", "mock", "-o", "teachers=4", "-o", "n=2", "-o", "max_new_tokens=8", "-o", "epsilon=1",
                 "--out", tmp_path / "t.txt")
    assert taught.exit_code == 0, taught.output
    sidecar = json.loads((tmp_path / "t.txt.teaching.json").read_text())
    assert sidecar["claim"]["source"] == "accounted" and sidecar["claim"]["noise_multiplier"] > 0
    scored = run("score", "--prompt", tmp_path / "t.txt", "--canaries", tmp_path / "s.json", "--model", "mock",
                 "--out", tmp_path / "r.json")
    assert scored.exit_code == 0, scored.output
    report = load_report(tmp_path / "r.json")
    assert report.run.claim is not None and report.run.claim.source == "accounted"
    rule = next(r for r in apply_gate(report).rules if r.rule == "max_epsilon")
    assert rule.passed and rule.false_alarm == pytest.approx(0.05)
    assert "accounted by the pipeline" in render_markdown(report) and np.isfinite(rule.value)
