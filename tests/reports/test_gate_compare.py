"""Gate rules and compare on hand-made reports: each rule passes and fails."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit import MockModel, generate_canary_set, save_report
from privacy_audit.chain import build_report
from privacy_audit.cli import main
from privacy_audit.errors import InputError
from privacy_audit.gate import Thresholds, apply_gate, load_thresholds
from privacy_audit.pipelines import TeachingOutput
from privacy_audit.reports.compare import compare
from privacy_audit.scoring.leaks import LeakReport, LeakRow
from privacy_audit.scoring.membership import roc_of
from privacy_audit.scoring.types import NotRun, Reconstruction


def two_by_two() -> Reconstruction:
    """Membership by the loss alone on two members and two non-members (AUC 0.75), the other attacks not run."""
    loss = roc_of("loss", np.array([1.0, 2.0, 0.0, 1.5]), 2)
    return Reconstruction(attacks=(loss,), blind=None, not_run=tuple(
        NotRun(name=n, reason="hand-made report") for n in ("calibrated", "zlib", "min_k_plus_plus")))


@pytest.fixture(scope="module")
def base():
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    prompt = f"The secret code is {cs.planted[0].secret}.\n" * 3
    teaching = TeachingOutput(prompt=prompt, pipeline="raw", options={}, seed=0, model=None)
    report = build_report(teaching, cs, MockModel())
    leaks = LeakReport(
        units=4,
        verbatim_copies=1,
        verbatim_rate=0.25,
        mean_distance=0.3625,
        min_distance=0.0,
        rows=tuple(
            LeakRow(teacher=0, unit=i, chars=10, distance=d, verbatim=d == 0)
            for i, d in enumerate([0.0, 0.05, 0.5, 0.9])
        ),
    )
    return report.model_copy(update={"leaks": leaks, "reconstruction": two_by_two()})


# The base report copies a canary, so the chance rule fails at the default alpha: these tests look at other rules.
LENIENT = 1e-9

RULES = [
    # (threshold that passes, threshold that fails)
    ({"max_exposure_bits": 10.0}, {"max_exposure_bits": 5.0}),
    ({"max_exposure_fraction": 1.0}, {"max_exposure_fraction": 0.5}),
    ({"max_greedy_extracted": 1}, {"max_greedy_extracted": 0}),
    ({"min_guesses": 1}, {"min_guesses": 5}),
    ({"max_rank_zero": 2}, {"max_rank_zero": 0}),
    ({"min_mean_rank_p_value": 0.0}, {"min_mean_rank_p_value": 0.99}),
    ({"max_verbatim": 1}, {"max_verbatim": 0}),
    ({"max_verbatim_rate": 0.25}, {"max_verbatim_rate": 0.1}),
    ({"max_fuzzy_fraction": 0.5}, {"max_fuzzy_fraction": 0.4}),
    ({"max_auc": 0.8}, {"max_auc": 0.7}),
]


@pytest.mark.parametrize("ok, bad", RULES, ids=[next(iter(r[0])) for r in RULES])
def test_each_rule_passes_and_fails(base, ok, bad):
    assert base.summary.greedy_extracted == 1 and base.summary.protocol_rank_zero_count >= 1
    good = apply_gate(base, Thresholds(**ok, alpha=LENIENT))
    assert good.passed and good.rules, good
    failed = apply_gate(base, Thresholds(**bad, alpha=LENIENT))
    assert not failed.passed and failed.failures
    assert all(f.count("\n") == 0 for f in failed.failures)


def test_per_canary_override(base):
    first = next(c for c in base.canaries if c.planted)
    strict = apply_gate(base, Thresholds(max_exposure_bits=1.0, alpha=LENIENT,
                                   overrides={c.id: {"max_exposure_bits": 20.0} for c in base.canaries if c.planted}))
    assert strict.passed
    one = apply_gate(
        base, Thresholds(max_exposure_bits=20.0, alpha=LENIENT, overrides={first.id: {"max_exposure_bits": 0.0}})
    )
    assert first.exposure_bits > 0 and [r.subject for r in one.rules if not r.passed] == [first.id]
    with pytest.raises(InputError, match="not planted"):
        apply_gate(base, Thresholds(max_exposure_bits=1.0, overrides={"ref-00": {"max_exposure_bits": 1.0}}))


def test_rules_without_data_are_reported_as_skipped(base):
    bare = base.model_copy(update={"reconstruction": None})
    outcome = apply_gate(bare, Thresholds(max_auc=0.5, alpha=LENIENT))
    assert (
        outcome.passed
        and outcome.skipped
        and "--data" in outcome.skipped[0].reason
        and outcome.skipped[0].rule == "max_auc"
    )


def test_thresholds_from_toml_and_pyproject(tmp_path):
    (tmp_path / "gate.toml").write_text(
        "[gate]\nmax_exposure_bits = 3\n[gate.overrides.canary-0]\nmax_exposure_bits = 6\n"
    )
    t = load_thresholds(tmp_path / "gate.toml")
    assert t.max_exposure_bits == 3 and t.overrides == {"canary-0": {"max_exposure_bits": 6}}
    (tmp_path / "pyproject.toml").write_text('[tool.privacy-audit.gate]\nmax_auc = 0.6\n')
    assert load_thresholds(search_from=tmp_path).max_auc == 0.6
    assert load_thresholds(tmp_path / "pyproject.toml").max_auc == 0.6
    assert load_thresholds(tmp_path / "pyproject.toml").merged(max_auc=0.9, max_exposure_bits=None).max_auc == 0.9
    (tmp_path / "bad.toml").write_text("max_exposur = 3\n")
    with pytest.raises(InputError, match="unknown gate setting max_exposur"):
        load_thresholds(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("max_auc = \n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_thresholds(tmp_path / "broken.toml")


def test_gate_cli_with_config_and_write(tmp_path, base):
    save_report(base, tmp_path / "r.json")
    (tmp_path / "g.toml").write_text("[gate]\nmax_exposure_bits = 1\n")
    result = CliRunner().invoke(
        main, ["gate", str(tmp_path / "r.json"), "--config", str(tmp_path / "g.toml"), "--write"]
    )
    assert result.exit_code == 1 and "\nFAIL " in result.output and "false-alarm probability" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["gate"]["passed"] is False
    assert CliRunner().invoke(main, ["gate", str(tmp_path / "r.json"), "--config", str(tmp_path / "g.toml"),
                                     "--max-exposure", "20", "--alpha", "1e-9"]).exit_code == 0


def test_gate_fails_closed_and_refuses_out_of_range_values(base, tmp_path):
    empty = base.model_copy(update={"canaries": tuple(c for c in base.canaries if not c.planted)})
    with pytest.raises(InputError, match="no planted canaries"):
        apply_gate(empty, Thresholds())
    save_report(empty, tmp_path / "empty.json")
    result = CliRunner().invoke(main, ["gate", str(tmp_path / "empty.json")])
    assert result.exit_code == 2 and "no planted canaries" in result.output
    for bad in ({"max_exposure_fraction": 7}, {"max_exposure_bits": -1}, {"alpha": 0}, {"max_auc": float("nan")},
                {"max_rank_zero": 1.5}, {"overrides": {"canary-0": {"max_exposure_bits": -3}}}):
        with pytest.raises(InputError):
            Thresholds(**bad)
    assert (
        CliRunner().invoke(main, ["gate", str(tmp_path / "empty.json"), "--max-exposure-fraction", "7"]).exit_code == 2
    )


def test_default_gate_on_a_copying_prompt_fails(base, tmp_path):
    save_report(base, tmp_path / "r.json")
    result = CliRunner().invoke(main, ["gate", str(tmp_path / "r.json")])
    assert result.exit_code == 1 and "[chance] report: Bonferroni-adjusted p-value" in result.output


def test_compare_flags_regressions_beyond_noise(base, tmp_path):
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    quiet = build_report(
        TeachingOutput(prompt="nothing to see here\n", pipeline="raw", options={}, seed=0, model=None), cs, MockModel()
    )
    leakier = base.model_copy(update={"leaks": None, "reconstruction": None})
    base = quiet
    assert leakier.summary.max_exposure_bits > base.summary.max_exposure_bits + 2
    result = compare(base, leakier, tolerance=0.5)
    assert result.regressed
    assert any(c.regression and c.measure.startswith("max exposure") for c in result.changes)
    assert not compare(base, base).regressed
    recon = two_by_two()
    louder = recon.attacks[0].model_copy(update={"auc": 0.95, "auc_ci": (0.6, 1.0)})
    noisy = base.model_copy(update={"reconstruction": recon.model_copy(update={"attacks": (louder,)})})
    auc = next(c for c in compare(base.model_copy(update={"reconstruction": recon}), noisy, tolerance=0.1).changes
               if c.measure == "membership AUC (loss)")
    assert auc.worse and auc.beyond_noise is False and not auc.regression
    save_report(base, tmp_path / "old.json")
    save_report(leakier, tmp_path / "new.json")
    out = CliRunner().invoke(main, ["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")])
    assert out.exit_code == 1 and "REGRESSION worse: max exposure" in out.output
    assert CliRunner().invoke(main, ["compare", str(tmp_path / "new.json"), str(tmp_path / "old.json")]).exit_code == 0


def test_every_canary_rule_states_its_false_alarm_probability(base):
    import math

    outcome = apply_gate(
        base, Thresholds(max_greedy_extracted=0, max_verbatim=0, max_auc=0.8, max_verbatim_rate=0.5, alpha=LENIENT)
    )
    alarm = {r.rule: r.false_alarm for r in outcome.rules}
    k, size, chars = 2, 1000, base.run.prompt_chars
    assert alarm["max_greedy_extracted"] == pytest.approx(k / size)
    assert alarm["max_verbatim"] == pytest.approx(1 - math.comb(size - chars, k) / math.comb(size, k))
    assert alarm["max_auc"] == pytest.approx(1 / 6)  # 2 members vs 2: only U = 4 (AUC 1) exceeds 0.8
    assert alarm["max_verbatim_rate"] is None and alarm["chance"] == LENIENT
    assert all("false-alarm probability" in r.message for r in outcome.rules)
