"""Reports written by earlier releases are read by what their version held: each fixture in data/ is a genuine report
of schema 1 to 5, written by that release's own `privacy-audit score --model mock` on a prompt that copies two of
three canaries (with and without --include-secrets). No version label can drop a test the report's data supports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit import apply_gate, load_report, render_markdown
from privacy_audit.cli import main
from privacy_audit.reports import SCHEMA_VERSION

DATA = Path(__file__).parent / "data"
VERSIONS = [1, 2, 3, 4, 5]


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("secrets", [False, True], ids=["ids-only", "with-secrets"])
@pytest.mark.parametrize("version", VERSIONS)
def test_a_genuine_earlier_report_is_read_gated_rendered_and_compared(version, secrets, tmp_path):
    path = DATA / f"report-v{version}{'-secrets' if secrets else ''}.json"
    assert json.loads(path.read_text())["schema_version"] == version
    report = load_report(path)
    assert report.schema_version == SCHEMA_VERSION
    # the figures its rows support are computed by this version: every summary test, the epsilon bound, intervals
    assert {"planted_vs_references", "protocol_mean_rank", "protocol_rank_zero"} <= set(report.summary.p_values)
    assert report.statistics is not None and report.statistics.epsilon.design == "one_run"
    assert not apply_gate(report).passed  # two of three canaries copied: the chance rule fails, as it should
    assert "| p-value, planted above references |" in render_markdown(report)
    gate = run("gate", path)
    assert gate.exit_code == 1 and "FAIL" in gate.output, gate.output
    rendered = run("report", path, "--md", tmp_path / "r.md", "--html", tmp_path / "r.html")
    assert rendered.exit_code == 0, rendered.output
    compared = run("compare", path, DATA / "report-v4.json")
    assert compared.exit_code in (0, 1) and "error" not in compared.output, compared.output


def test_a_version_5_reconstruction_is_its_loss_attack_and_the_others_are_said_not_run():
    """Schema 5 measured membership by the loss alone: read now, that is the first attack, with the same figures, and
    the attacks it never made are listed as not run (never made up)."""
    old = json.loads((DATA / "report-v5.json").read_text())["reconstruction"]
    rc = load_report(DATA / "report-v5.json").reconstruction
    assert rc is not None and [a.name for a in rc.attacks] == ["loss"] and rc.blind is None
    assert rc.attacks[0].auc == old["auc"] and rc.attacks[0].member_scores == tuple(old["member_scores"])
    assert {n.name for n in rc.not_run} == {"calibrated", "zlib", "min_k_plus_plus"}
    assert all("schema 5" in n.reason for n in rc.not_run)
    table = render_markdown(load_report(DATA / "report-v5.json"))
    assert "not made by the version that wrote this report (schema 5)" in table


def test_with_secrets_the_verbatim_and_similarity_tests_are_computed_for_an_old_report():
    """An old report that stores its prompt and secrets gets the data-only tests its version never had."""
    old = load_report(DATA / "report-v2-secrets.json")
    assert {"planted_in_prompt", "similarity"} <= set(old.summary.p_values)
    assert old.summary.planted_in_prompt == 2 and old.summary.p_values["planted_in_prompt"].p < 1e-3


@pytest.mark.parametrize("label", [1, 2, 3, 4])
def test_a_version_label_cannot_drop_a_test_the_data_supports(label, tmp_path):
    """The current release's report relabelled as an older one and stripped of its summary tests (and of every
    figure the older version lacked) fails the gate exactly as the real one does: the tests are computed again."""
    real = json.loads((DATA / "report-v4-secrets.json").read_text())
    run("report", DATA / "report-v4-secrets.json", "--md", tmp_path / "x.md")  # readable as it is
    current = load_report(DATA / "report-v4-secrets.json")
    (tmp_path / "current.json").write_text(current.model_dump_json())
    data = json.loads((tmp_path / "current.json").read_text())
    data["schema_version"] = label
    data["summary"]["p_values"] = {}
    for row in data["canaries"]:
        for figure in ("similarity", "similarity_p_value", "verbatim_p_value"):
            row.pop(figure, None)
    (tmp_path / "relabelled.json").write_text(json.dumps(data))
    relabelled = load_report(tmp_path / "relabelled.json")
    assert set(relabelled.summary.p_values) == set(current.summary.p_values)
    assert relabelled.summary.p_values["similarity"].p == pytest.approx(current.summary.p_values["similarity"].p)
    chance = [r for r in apply_gate(relabelled).rules if r.rule == "chance"]
    assert chance[0].value == pytest.approx(next(r for r in apply_gate(current).rules if r.rule == "chance").value)
    assert real["schema_version"] == 4
