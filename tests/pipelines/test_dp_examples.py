"""The differentially private examples pipeline: its noise calibrated by dp-accounting, its claim accounted and
recorded with mechanism, noise and ledger, audited by the gate like any claim; and the accounting itself."""

from __future__ import annotations

import json
from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit import (
    MockModel, PlantOptions, ScoringOptions, generate_canary_set, load_report, plant, render_markdown, score,
)
from privacy_audit.cli import main
from privacy_audit.gate import apply_gate
from privacy_audit.pipelines import Record, Teaching, run_pipeline
from privacy_audit.pipelines.accounting import calibrate_gaussian, gaussian_epsilon
from privacy_audit.pipelines.base import TeachingOutput
from privacy_audit.pipelines.dp_examples import Faults, dp_teach
from privacy_audit.pipelines.teaching import to_records

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


SMS = [json.loads(line) for line in
       (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()[:32]]
COPYIST = MockModel(order=8, alpha=1e-3)  # copies its few-shot examples closely


def audited(faults: Faults, seed: int, **options: object) -> tuple[TeachingOutput, dict[str, bool]]:
    """dp-examples at a claim of epsilon 0.1 (with `faults`) on 32 SMS records, 64 canaries planted by coins at the
    start of records in one of 4 shards each, scored by the copying mock; each claim rule's verdict."""
    canaries = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=32, references=32,
                                   seed=seed, randomized=True)
    planted = plant(canaries, SMS, PlantOptions(label_field="label", shards=4, fraction=0.25, seed=seed,
                                                 position="prepend"))
    records = to_records(planted.rows, field="text", label_field="label", shard_field="teacher")
    settings = {"teachers": 4, "n": 24, "n_gen": 4, "epsilon": 0.1, "delta": 1e-5, "noise": True, "vocab": 256,
                "max_new_tokens": 24, "labels": None} | options  # vocab 256: the mock's whole vocabulary
    out = dp_teach(records, model=COPYIST, seed=seed, faults=faults, **settings)  # type: ignore[arg-type]
    report = score(Teaching(out, planted, tuple(records)), COPYIST, ScoringOptions(mode="sampled", extraction=False),
                   membership=False)
    return out, {r.rule: r.passed for r in apply_gate(report).rules if r.rule in ("max_mu", "max_epsilon")}


def test_the_kept_mechanism_passes_its_claim_and_too_little_noise_is_caught_through_the_pipeline():
    kept = [audited(Faults(), seed)[1] for seed in range(4)]
    assert all(set(v) == {"max_mu", "max_epsilon"} for v in kept)
    # each rule's false alarm is 5%: 3 or more of 4 runs would happen with chance 0.05%
    assert sum(not v["max_mu"] for v in kept) <= 2 and sum(not v["max_epsilon"] for v in kept) <= 2
    for seed in range(3):
        out, verdict = audited(Faults(noise_factor=1e6), seed)  # the noise a millionth of the accounted
        assert not verdict["max_mu"], out.prompt  # the copied canaries refute mu
        assert out.claim is not None and out.claim.epsilon <= 0.1 and out.options["faults"]["noise_factor"] == 1e6


def test_each_fault_does_what_it_names_and_keeps_the_claim():
    correct, _ = audited(Faults(), 0, n=3)
    for faults in (Faults(noise_factor=4.0), Faults(weight=1e6, noise_factor=1e3), Faults(sees_all=True)):
        out, _ = audited(faults, 0, n=3)
        assert out.claim == correct.claim  # a broken implementation still claims what the kept one accounts
        turns = [a for a in out.artifacts if a.teacher == 0]
        others = {i for a in out.artifacts if a.teacher != 0 for i in a.records}
        assert bool(others & {i for a in turns for i in a.records}) == faults.sees_all
        if faults.weight > 1:  # teacher 0 alone decides: each example begins one of its own
            for a in turns:
                assert any(example.startswith(out.prompt.split("\n\n")[a.round][:14])
                           for example in a.private.split("\n\n")), (out.prompt, a.private)
