"""A newcomer's first hour (issue 41), through the CLI: long work says how far it is in a log, every gate line names
its report and rule, the summary leads with a verdict per prompt, the teacher and the scorer both show, the scorer
measures utility, and the reports' labels do not contradict each other."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from privacy_audit.cli import main

CLI_IN_A_LOG = (
    "import sys\n"
    "from privacy_audit import _cli_support as s\n"
    "s.LOG_QUIET_S, s.LOG_EVERY_S = 0.0, 1e9  # lines at once, then every tenth of the work\n"
    "from privacy_audit._entry import main; sys.argv = ['privacy-audit', *sys.argv[1:]]; main()\n"
)


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def canaries(tmp_path, space="digits:4"):
    out = tmp_path / "set.json"
    assert run("canaries", "generate", "--template", "The code is {secret}", "--space", space, "--count", "3",
               "--references", "20", "--seed", "1", "--out", out).exit_code == 0
    return out


def test_long_work_says_how_far_it_is_in_a_log_file(tmp_path):
    """stderr to a file (not a terminal): the scoring step writes lines with its count, share, time and estimate."""
    cs = canaries(tmp_path)
    (tmp_path / "p.txt").write_text("Text: hello\nClass: ham\n")
    with open(tmp_path / "log.txt", "w") as log:
        done = subprocess.run([sys.executable, "-c", CLI_IN_A_LOG, "score", "--prompt", str(tmp_path / "p.txt"),
                               "--canaries", str(cs), "--out", str(tmp_path / "r.json"), "--model", "mock", "--exact"],
                              stdout=subprocess.DEVNULL, stderr=log, timeout=300)
    assert done.returncode == 0
    lines = [x for x in (tmp_path / "log.txt").read_text().splitlines() if x.startswith("scoring: ")]
    assert len(lines) >= 3 and "of 10,000 candidates (" in lines[0] and "so far" in lines[0] and "left" in lines[1]
    assert "(100%)" in lines[-1] and "left" not in lines[-1]


def test_quick_steps_say_nothing_in_a_log(tmp_path):
    cs = canaries(tmp_path, "digits:2")
    (tmp_path / "p.txt").write_text("Text: hello\nClass: ham\n")
    result = run("score", "--prompt", tmp_path / "p.txt", "--canaries", cs, "--out", tmp_path / "r.json",
                 "--model", "mock")
    assert result.exit_code == 0 and "scoring: " not in result.stderr


def test_each_step_under_one_label_counts_its_own_time(monkeypatch, capsys):
    """The demo reports two scorings under one label with teaching between them: the second step's time and estimate
    are its own, even when the first was too quick to be shown."""
    from privacy_audit import _cli_support

    clock = {"now": 0.0}
    monkeypatch.setattr(_cli_support.time, "monotonic", lambda: clock["now"])
    update = _cli_support._log_progress("scoring", "candidates")
    for done, at in ((0, 0.0), (10_000, 2.0)):  # a quick step: nothing shown
        clock["now"] = at
        update(done, 10_000)
    for done, at in ((0, 60.0), (5_000, 70.0), (10_000, 80.0)):  # a minute of teaching, then a 20 s step
        clock["now"] = at
        update(done, 10_000)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["scoring: 5,000 of 10,000 candidates (50%), 0:10 so far, about 0:10 left",
                     "scoring: 10,000 of 10,000 candidates (100%), 0:20 so far"]


def test_gate_lines_name_the_report_and_the_rule_and_the_summary_leads_with_verdicts(tmp_path):
    cs = canaries(tmp_path)
    secret = next(c["secret"] for c in json.loads(cs.read_text())["canaries"] if c["planted"])
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "leaky.txt").write_text(f"Text: The code is {secret}.\nClass: ham\n" * 2)
    (tmp_path / "prompts" / "clean.txt").write_text("Text: hello\nClass: ham\n")
    scored = run("score", "--prompt", tmp_path / "prompts", "--canaries", cs, "--out", tmp_path / "reports",
                 "--model", "mock", "-m", "order=8")
    assert scored.exit_code == 0, scored.output
    summary = (tmp_path / "reports" / "summary.md").read_text().splitlines()
    assert summary[2].startswith("| verdict | PASS (") and "| FAIL (" in summary[2] and "chance" in summary[2]
    for name, code in (("leaky", 1), ("clean", 0)):
        path = tmp_path / "reports" / f"{name}.json"
        gated = run("gate", path)
        assert gated.exit_code == code
        assert all(f" {path} [" in line for line in gated.output.splitlines()[:-1])
        last = gated.output.splitlines()[-1]
        assert last.startswith(f"gate {'failed' if code else 'passed'}: {path}, ") and "(chance" in last


def test_the_teacher_and_the_scorer_both_show_and_the_scorer_measures_utility(tmp_path, sms_jsonl):
    cs = canaries(tmp_path)
    planted = tmp_path / "planted.jsonl"
    assert run("canaries", "plant", cs, "--data", sms_jsonl, "--out", planted).exit_code == 0
    prompt = tmp_path / "prompt.txt"
    taught = run("teach", "--pipeline", "examples", "--data", planted, "--out", prompt, "--model", "mock",
                 "-m", "order=2")
    assert taught.exit_code == 0, taught.output
    scored = run("score", "--prompt", prompt, "--canaries", cs, "--out", tmp_path / "r.json", "--model", "mock",
                 "-m", "order=5", "--eval-data", sms_jsonl, "--label-field", "label")
    assert scored.exit_code == 0, scored.output
    assert "| teacher | mock-ngram2 (mock) |" in scored.output and "| scorer | mock-ngram5 (mock) |" in scored.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["utility"]["student"] == "mock-ngram5 (mock)" and report["utility"]["examples"] == 20
    assert "student mock-ngram5 (mock)" in scored.output
