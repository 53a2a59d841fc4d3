"""HTML, Markdown and JUnit renderings: content, escaping of untrusted text, schema file."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit import MockModel, ScoringOptions, generate_canary_set, save_report
from privacy_audit.chain import build_report
from privacy_audit.cli import main
from privacy_audit.pipelines import TeachingOutput
from privacy_audit.reports.schema import json_schema

INJECTION = "<script>document.documentElement.setAttribute('data-pwned','1')</script>\x1b[31mred\x07 | pipe"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    prompt = f"The secret code is {cs.planted[0].secret}.\n{INJECTION}\n"
    teaching = TeachingOutput(prompt=prompt, pipeline="raw<b>", options={}, seed=0, model=None,
                              artifacts=({"teacher": 0, "private": "private text", "generated": [INJECTION]},))
    report = build_report(teaching, cs, MockModel(), ScoringOptions(include_secrets=True),
                          members=["Text: hi\nClass: spam"], non_members=["Text: yo\nClass: not spam", "x"])
    path = tmp_path_factory.mktemp("r") / "report.json"
    save_report(report, path)
    return path


def test_report_command_writes_all_three(report_file):
    out = report_file.parent
    result = CliRunner().invoke(
        main,
        [
            "report", str(report_file), "--html", str(out / "r.html"), "--md", str(out / "r.md"), "--junit",
            str(out / "r.xml"), "--max-exposure", "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "gate failed" in result.output
    page = (out / "r.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "raw&lt;b&gt;" in page
    assert "\x1b" not in page and "\x07" not in page
    assert "http://" not in page and "https://" not in page.replace("https://privacy-audit.invalid", "")
    assert page.count("data:image/png;base64,") == 3  # exposure, rank CDF, ROC
    assert page.index("Gate: FAIL") < page.index("<h2>Summary</h2>")
    md = (out / "r.md").read_text()
    assert "\x1b" not in md and "raw&lt;b&gt;" in md and "raw<b>" not in md
    tree = ET.parse(out / "r.xml").getroot()
    assert tree.tag == "testsuites"
    suites = {s.get("name"): s for s in tree.findall("testsuite")}
    canary_suite = next(s for n, s in suites.items() if n.startswith("canaries"))
    assert int(canary_suite.get("tests")) == 2 and len(canary_suite.findall("testcase")) == 2
    rules = suites["gate rules"]
    assert int(rules.get("failures")) == sum(1 for c in rules.findall("testcase") if c.find("failure") is not None) >= 1
    for case in tree.iter("testcase"):
        assert case.get("name") and case.get("classname")


def test_report_needs_an_output_and_a_valid_file(report_file, tmp_path):
    assert CliRunner().invoke(main, ["report", str(report_file)]).exit_code == 2
    bad = tmp_path / "bad.json"
    for text in ('{"schema_version": 7}', '{"schema_version": 1, "run"', "not json", '{"schema_version": 1}'):
        bad.write_text(text)
        result = CliRunner().invoke(main, ["report", str(bad), "--md", str(tmp_path / "x.md")])
        assert (
            result.exit_code == 2
            and result.output.startswith("error: ")
            and len(result.output.strip().splitlines()) == 1
        )


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "reports" / "schema.json").read_text())
    assert committed == json_schema(), "regenerate: python -m privacy_audit.reports > reports/schema.json"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_html_in_headless_chromium(report_file, tmp_path):
    page = tmp_path / "r.html"
    CliRunner().invoke(main, ["report", str(report_file), "--html", str(page)])
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert "privacy-audit report" in dom.stdout
    assert "data-pwned" in dom.stdout  # the injected text is shown...
    assert 'data-pwned="1"' not in dom.stdout  # ...and its script did not run
    shot = tmp_path / "r.png"
    subprocess.run([_chromium(), *flags, "--window-size=1100,1400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_comparison_page_plots_privacy_against_utility(report_file, tmp_path):
    from privacy_audit import load_report
    from privacy_audit.pipelines import Utility

    base = load_report(report_file)
    util = Utility(accuracy=0.7, correct=7, examples=10, labels=("a", "b"), predicted_counts={"a": 5, "b": 5})
    for i, name in enumerate(("one", "two")):
        run = base.run.model_copy(update={"pipeline": name})
        save_report(base.model_copy(update={"run": run, "utility": util}), tmp_path / f"{i}.json")
    result = CliRunner().invoke(main, ["report", str(tmp_path / "0.json"), str(tmp_path / "1.json"),
                                       "--html", str(tmp_path / "c.html"), "--md", str(tmp_path / "c.md")])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "c.html").read_text()
    assert 'alt="privacy against utility"' in page and "<th>one</th>" in page
    assert (
        "| student accuracy with this prompt (utility) | 0.700 on 10 examples | 0.700 on 10 examples |"
        in (tmp_path / "c.md").read_text()
    )
    assert CliRunner().invoke(main, ["report", str(tmp_path / "0.json"), str(tmp_path / "1.json"),
                                     "--junit", str(tmp_path / "x.xml")]).exit_code == 2


def test_per_teacher_plot_when_the_pipeline_has_teachers(report_file, tmp_path):
    from privacy_audit import load_report
    from privacy_audit.reports.html import render_html
    from privacy_audit.pipelines import TeacherArtifact
    from privacy_audit.scoring.leaks import leak_report

    base = load_report(report_file)
    leaks = leak_report(
        [TeacherArtifact(teacher=t, private="Text: hello there", generated=("hello there", "zzz")) for t in range(3)]
    )
    page = render_html(base.model_copy(update={"leaks": leaks}))
    assert 'alt="per-teacher attribution"' in page


def test_side_by_side_renderings_show_each_reports_gate_verdict(tmp_path):
    from privacy_audit import Thresholds
    from privacy_audit.audit import render_report
    from privacy_audit.pipelines import TeachingOutput

    cs = generate_canary_set(template="The code is {secret}", space="digits:3", count=2, references=6, seed=0)
    leaky = TeachingOutput(
        prompt="".join(f"The code is {c.secret}.\n" for c in cs.planted), pipeline="raw", options={}, seed=0, model=None
    )
    clean = TeachingOutput(prompt="nothing here\n", pipeline="zero-shot", options={}, seed=0, model=None)
    for name, teaching in (("a", leaky), ("b", clean)):
        save_report(
            build_report(teaching, cs, MockModel(), ScoringOptions(extraction=False)), tmp_path / f"{name}.json"
        )
    render_report([tmp_path / "a.json", tmp_path / "b.json"], html=tmp_path / "c.html", markdown=tmp_path / "c.md",
                  thresholds=Thresholds())
    md = (tmp_path / "c.md").read_text()
    gate_row = next(line for line in md.splitlines() if line.startswith("| verdict |"))
    assert "FAIL" in gate_row and "PASS" in gate_row
    assert "FAIL (" in (tmp_path / "c.html").read_text()
