"""The second reliability corpus: hostile input, faults and abuse through the CLI.

Every case is one `error:` line, exit code 2, no traceback, and every file it was given unchanged
(checksums of the whole folder, special files still special). Each class of the reliability issue
also has a test of its mechanism below the corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main

TEACHERS = Path(__file__).parent / "pipelines" / "teachers"
PY = sys.executable


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def snapshot(folder: Path) -> dict[str, str]:
    """Checksum of every regular file under `folder` and the kind of everything else."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p)] = f"link:{os.readlink(p)}"
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = f"mode:{stat.S_IFMT(p.lstat().st_mode)}"
    return out


@pytest.fixture
def f(tmp_path, sms_jsonl):
    """Inputs of every kind, good and hostile."""
    t = tmp_path
    d = {"t": t, "sms": sms_jsonl}
    run(
        "canaries", "generate", "--template", "code {secret}", "--space", "digits:3", "--count", "2", "--references",
        "4", "--seed", "0", "--out", t / "set.json",
    )
    d["set"] = t / "set.json"
    d["evals"] = t / "evals.jsonl"
    d["evals"].write_bytes(sms_jsonl.read_bytes())
    (t / "prompt.txt").write_text("Text: hello\nClass: ham\n", encoding="utf-8")
    d["prompt"] = t / "prompt.txt"
    run("score", "--model", "mock", "--prompt", d["prompt"], "--canaries", d["set"], "--out", t / "report.json")
    d["report"] = t / "report.json"
    report = json.loads(d["report"].read_text())
    no_planted = {**report, "canaries": [c for c in report["canaries"] if not c["planted"]]}
    set_data = json.loads(d["set"].read_text())
    texts = {
        "deep.jsonl": '{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        "deep_report.json": '{"schema_version": 2, "run": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "bigint.jsonl": '{"text": "hi", "n": ' + "9" * 5000 + "}\n",
        "bigint_report.json": '{"schema_version": ' + "9" * 5000 + "}",
        "surrogate.jsonl": '{"text": "bad \\ud800 text", "label": "ham"}\n',
        "no_planted.json": json.dumps(no_planted),
        "no_canaries.json": json.dumps({**report, "canaries": []}),
        "empty_set.json": json.dumps({**set_data, "canaries": []}),
        "refs_only_set.json": json.dumps(
            {**set_data, "canaries": [c for c in set_data["canaries"] if not c["planted"]]}
        ),
        "preset_types.toml": 'template = 5\nspace = "digits:4"\n',
        "gate_types.toml": '[gate]\nmax_exposure_bits = "high"\n',
        "gate_not_table.toml": "gate = 3\n",
        "gate_tool_not_table.toml": '[tool]\n"privacy-audit" = 5\n',
        "gate_fraction.toml": "[gate]\nmax_exposure_fraction = 7\n",
        "gate_negative_override.toml": "[gate.overrides.canary-0]\nmax_exposure_bits = -3\n",
        "config_types.toml": "[scoring]\nmode = 5\n",
        "dup.csv": "text,label,text\nhello,ham,again\n",
        "unterminated.csv": 'text,label\n"hello,ham\nworld,spam\n',
        "deep_config.toml": "[canaries]\ntemplate = 'code {secret}'\nspace = 'digits:2'\n[data]\npath = "
                            "'@demo'\n[model]\nspec = 'mock'\n"
        "[pipeline]\nname = 'raw'\n[secret_sharer]\ntrials = 1\ncandidates = 5\n",
    }
    for name, text in texts.items():
        (t / name).write_text(text, encoding="utf-8")
        d[name] = t / name
    (t / "latin1_words.txt").write_bytes(b"caf\xe9\nna\xefve\n")
    d["latin1_words"] = t / "latin1_words.txt"
    (t / "latin1_preset.toml").write_bytes(b'template = "caf\xe9 {secret}"\nspace = "digits:4"\n')
    d["latin1_preset"] = t / "latin1_preset.toml"
    (t / "not_exec.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(t / "not_exec.sh", 0o644)
    d["not_exec"] = t / "not_exec.sh"
    os.mkfifo(t / "fifo")
    d["fifo"] = t / "fifo"
    (t / "folder").mkdir()
    d["folder"] = t / "folder"
    (t / "link.jsonl").symlink_to(sms_jsonl)
    d["link"] = t / "link.jsonl"
    (t / "afile").write_text("x")
    d["afile"] = t / "afile"
    return d


def cases(d):
    """name -> (arguments, words the error line must contain, environment)."""
    t = d["t"]
    gen = ["canaries", "generate", "--seed", "0", "--out", t / "x.json"]
    plant = ["canaries", "plant", d["set"], "--out", t / "o.jsonl", "--data"]
    score = ["score", "--model", "mock", "--prompt", d["prompt"], "--canaries", d["set"], "--out"]
    teach = ["teach", "--pipeline", "raw", "--data", d["sms"], "--out"]
    cmd = ["teach", "--pipeline", "command", "--data", d["sms"], "--out", t / "p.txt", "--command"]
    rep = ["report", d["report"]]
    gate = ["gate", d["report"]]
    c = {
        # A. every expected failure is one line and exit 2
        "jsonl-nested-100000-deep": ([*plant, d["deep.jsonl"]], "nested too deeply"),
        "report-nested-100000-deep": (["gate", d["deep_report.json"]], "nested too deeply"),
        "jsonl-5000-digit-integer": ([*plant, d["bigint.jsonl"]], "digits"),
        "report-5000-digit-integer": (["gate", d["bigint_report.json"]], "digits"),
        "jsonl-lone-surrogate": ([*plant, d["surrogate.jsonl"]], "UTF-8"),
        "template-lone-surrogate": ([*gen, "--template", "a \ud800 {secret}", "--space", "digits:2"], "UTF-8"),
        "words-file-not-utf8": (
            [*gen, "--template", "n {secret}", "--space", f"words:@{d['latin1_words']}"], "not UTF-8",
        ),
        "preset-file-not-utf8": ([*gen, "--preset", d["latin1_preset"]], "not UTF-8"),
        "preset-wrong-types": ([*gen, "--preset", d["preset_types.toml"]], "preset"),
        "negative-seed": (
            [
                "canaries", "generate", "--template", "c {secret}", "--space", "digits:2", "--seed", "-1", "--out",
                t / "x.json",
            ],
            "--seed",
        ),
        "seed-not-a-number": (
            [
                "canaries", "generate", "--template", "c {secret}", "--space", "digits:2", "--seed", "x1", "--out",
                t / "x.json",
            ],
            "--seed",
        ),
        "count-a-billion": (
            [*gen, "--template", "c {secret}", "--space", "digits:12", "--count", "1000000000"], "--count",
        ),
        "references-a-billion": (
            [*gen, "--template", "c {secret}", "--space", "digits:12", "--references", "1000000000"], "--references",
        ),
        "count-zero": ([*gen, "--template", "c {secret}", "--space", "digits:2", "--count", "0"], "--count"),
        "repetitions-huge": (
            [*gen, "--template", "c {secret}", "--space", "digits:2", "--repetitions", "10000000"], "--repetitions",
        ),
        "absurd-space": ([*gen, "--template", "c {secret}", "--space", "digits:999999999"], "KIND:LENGTH"),
        "long-space": ([*gen, "--template", "c {secret}", "--space", "hex:5000"], "longer than"),
        "space-length-unicode-digits": ([*gen, "--template", "c {secret}", "--space", "digits:٣"], "KIND:LENGTH"),
        "empty-canary-set": (
            [*score[:-3], "--canaries", d["empty_set.json"], "--out", t / "r2.json"], "no planted canaries",
        ),
        "canary-set-only-references": (
            [*score[:-3], "--canaries", d["refs_only_set.json"], "--out", t / "r2.json"], "no planted canaries",
        ),
        "command-unterminated-quote": ([*cmd, "python 'teacher.py"], "quotes"),
        "command-not-executable": ([*cmd, str(d["not_exec"])], "not executable"),
        "command-empty": ([*cmd, " "], "needs a program"),
        "gate-config-wrong-type": ([*gate, "--config", d["gate_types.toml"]], "must be a finite number"),
        "gate-config-not-a-table": ([*gate, "--config", d["gate_not_table.toml"]], "must be a table"),
        "gate-config-tool-not-a-table": ([*gate, "--config", d["gate_tool_not_table.toml"]], "must be a table"),
        "config-wrong-type": (["run", d["config_types.toml"]], "config"),
        "output-folder-is-a-file": ([*score, d["afile"] / "r.json"], "is not a folder"),
        "demo-out-is-a-file": (["demo", "--model", "mock", "--out", d["afile"]], "is a file"),
        "cache-folder-is-a-file": ([*teach, t / "p.txt", "--no-cache", "--model", "mock"], None),
        "fraction-out-of-range": ([*plant, d["sms"], "--fraction", "7"], "--fraction"),
        "temperature-negative": (
            ["teach", "--pipeline", "examples", "--data", d["sms"], "--out", t / "p.txt", "--temperature", "-1"],
            "option temperature: Input should be greater than or equal to 0",
        ),
        "timeout-zero": ([*cmd, "true", "--timeout", "0"], "option timeout: Input should be greater than 0"),
        "max-exact-zero": ([*score, t / "r2.json", "--max-exact", "0"], "scoring option max_exact"),
        "search-budget-negative": ([*score, t / "r2.json", "--sampled", "--search-budget", "-1"],
                                   "scoring option search_budget"),
        "model-option-unknown": ([*score, t / "r2.json", "-o", "bogus=1"], "No such option '-o'"),
        "report-without-output": ([*rep], "say what to write"),
        "compare-non-report": (["compare", d["prompt"], d["report"]], "not valid JSON"),
        "unknown-command": (["frobnicate"], "No such command"),
        "unknown-option": ([*score, t / "r2.json", "--frob"], "No such option"),
        "set-not-key-value": (["run", d["deep_config.toml"], "-s", "nokey"], "KEY.PATH=VALUE"),
        "set-through-a-value": (["run", d["deep_config.toml"], "-s", "pipeline.name.x=1"], "is not a table"),
        # B. no output ever replaces an input
        "score-out-is-canary-set": ([*score, d["set"]], "is the input"),
        "score-out-is-prompt": ([*score, d["prompt"]], "is the input"),
        "score-out-is-data": ([*score, t / "r2.json", "--data", d["sms"], "--out", d["sms"]], "is the input"),
        "teach-out-is-data": ([*teach, d["sms"]], "is the input"),
        "teach-out-is-eval-data": ([*teach, d["evals"], "--eval-data", d["evals"], "--model", "mock"], "is the input"),
        "teach-out-is-prompt-file": (
            ["teach", "--pipeline", "prompt-file", "--prompt-file", d["prompt"], "--out", d["prompt"]], "is the input",
        ),
        "report-md-is-report": ([*rep, "--md", d["report"]], "is the input"),
        "report-html-is-report": ([*rep, "--html", d["report"]], "is the input"),
        "report-junit-is-report": ([*rep, "--junit", d["report"]], "is the input"),
        "report-two-outputs-one-file": ([*rep, "--md", t / "same", "--html", t / "same"], "different files"),
        "plant-onto-symlink-of-data": (
            ["canaries", "plant", d["set"], "--data", d["sms"], "--out", d["link"]], "is the input",
        ),
        "plant-out-is-canary-set": (
            ["canaries", "plant", d["set"], "--data", d["sms"], "--out", d["set"]], "is the input",
        ),
        "plant-out-is-data-by-other-path": (
            ["canaries", "plant", d["set"], "--data", d["sms"], "--out", d["sms"].parent / "." / d["sms"].name],
            "is the input",
        ),
        "generate-out-is-preset": (
            [
                "canaries", "generate", "--preset", d["preset_types.toml"], "--seed", "0", "--out",
                d["preset_types.toml"],
            ],
            "is the input",
        ),
        # C. special files
        "fifo-as-data": ([*plant, d["fifo"]], "not a regular file"),
        "fifo-as-prompt": (
            ["score", "--model", "mock", "--prompt", d["fifo"], "--canaries", d["set"], "--out", t / "r2.json"],
            "not a regular file",
        ),
        "fifo-as-canary-set": (
            ["score", "--model", "mock", "--prompt", d["prompt"], "--canaries", d["fifo"], "--out", t / "r2.json"],
            "not a regular file",
        ),
        "fifo-as-report": (["gate", d["fifo"]], "not a regular file"),
        "fifo-as-gate-config": ([*gate, "--config", d["fifo"]], "not a regular file"),
        "fifo-as-words": ([*gen, "--template", "n {secret}", "--space", f"words:@{d['fifo']}"], "not a regular file"),
        "fifo-as-config": (["run", d["fifo"]], "not a regular file"),
        "dev-zero-as-data": ([*plant, "/dev/zero"], "not a regular file"),
        "dev-zero-as-prompt": (
            ["score", "--model", "mock", "--prompt", "/dev/zero", "--canaries", d["set"], "--out", t / "r2.json"],
            "not a regular file",
        ),
        "dev-zero-as-report": (["gate", "/dev/zero"], "not a regular file"),
        "dev-null-as-out": ([*score, "/dev/null"], "not a regular file"),
        "dev-null-as-plant-out": (
            ["canaries", "plant", d["set"], "--data", d["sms"], "--out", "/dev/null"], "not a regular file",
        ),
        "dev-null-as-md": ([*rep, "--md", "/dev/null"], "not a regular file"),
        "folder-as-data": ([*plant, d["folder"]], "is a directory"),
        "folder-as-out": ([*score, d["folder"]], "is a directory"),
        "fifo-as-out": ([*score, d["fifo"]], "not a regular file"),
        # D. the gate fails closed
        "gate-report-without-planted": (["gate", d["no_planted.json"]], "no planted canaries"),
        "gate-report-without-canaries": (["gate", d["no_canaries.json"]], "no planted canaries"),
        "gate-fraction-7": ([*gate, "--max-exposure-fraction", "7"], "out of range"),
        "gate-negative-exposure": ([*gate, "--max-exposure", "-1"], "out of range"),
        "gate-alpha-zero": ([*gate, "--alpha", "0"], "out of range"),
        "gate-alpha-one": ([*gate, "--alpha", "1"], "out of range"),
        "gate-alpha-nan": ([*gate, "--alpha", "nan"], "finite"),
        "gate-min-guesses-zero": ([*gate, "--min-guesses", "0"], "out of range"),
        "gate-toml-fraction-7": ([*gate, "--config", d["gate_fraction.toml"]], "out of range"),
        "gate-toml-negative-override": ([*gate, "--config", d["gate_negative_override.toml"]], "out of range"),
        "compare-tolerance-nan": (["compare", d["report"], d["report"], "--tolerance", "nan"], "--tolerance"),
        "compare-tolerance-negative": (["compare", d["report"], d["report"], "--tolerance", "-1"], "--tolerance"),
        "report-gate-alpha-bad": ([*rep, "--md", t / "r.md", "--alpha", "2"], "out of range"),
        # H. no silent corruption
        "shard-field-is-text-field": (
            [*plant, d["sms"], "--shards", "2", "--shard-field", "text"], "text field itself",
        ),
        "csv-duplicate-columns": ([*plant, d["dup.csv"], "--format", "csv"], "more than once"),
        "csv-unterminated-quote": ([*plant, d["unterminated.csv"], "--format", "csv"], "not valid CSV"),
        "multi-line-canary-into-text": (
            ["canaries", "plant", t / "ml.json", "--data", d["prompt"], "--format", "text", "--out", t / "o.txt"],
            "several lines",
        ),
    }
    return c


@pytest.fixture
def multi_line_set(f):
    from privacy_audit import generate_canary_set
    from privacy_audit.canaries import save_canary_set

    save_canary_set(
        generate_canary_set(template="code\n{secret}", space="digits:2", count=1, references=0, seed=0),
        f["t"] / "ml.json",
    )


CASE_NAMES = list(
    cases(
        {
            k: Path("/x")
            for k in (
                "t", "sms", "set", "evals", "prompt", "report", "deep.jsonl", "deep_report.json", "bigint.jsonl",
                "bigint_report.json", "surrogate.jsonl", "no_planted.json", "no_canaries.json", "empty_set.json",
                "refs_only_set.json", "preset_types.toml", "gate_types.toml", "gate_not_table.toml",
                "gate_tool_not_table.toml", "gate_fraction.toml", "gate_negative_override.toml", "config_types.toml",
                "dup.csv", "unterminated.csv", "deep_config.toml", "latin1_words", "latin1_preset", "not_exec", "fifo",
                "folder", "link", "afile",
            )
        }
    )
)


def test_the_corpus_holds_over_80_cases():
    assert len(CASE_NAMES) + len(SUBPROCESS_CASES) >= 80


@pytest.mark.parametrize("case", CASE_NAMES)
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(case, f, multi_line_set, monkeypatch):
    args, words = cases(f)[case]
    if case == "cache-folder-is-a-file":
        import privacy_audit.pipelines.teaching

        monkeypatch.setattr(privacy_audit.pipelines.teaching, "cache_root", lambda: f["afile"])
        words = "cache folder"
    before = snapshot(f["t"])
    result = run(*args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, (case, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert words in lines[0], lines[0]  # the refusal the case names, not any one-line error
    assert "Traceback" not in result.output and "\x1b" not in result.output
    after = snapshot(f["t"])
    assert {k: v for k, v in after.items() if k in before} == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def _cli(*args: str | bytes, stdout=subprocess.PIPE, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "privacy_audit", *args], stdout=stdout, stderr=subprocess.PIPE, timeout=120, **kw)


SUBPROCESS_CASES = ["non-utf8-argv", "stdout-on-a-full-disk", "fifo-does-not-hang", "ctrl-c-at-start-up"]


def test_non_utf8_argv_is_one_line(tmp_path):
    result = _cli(
        b"canaries", b"generate", b"--template", b"caf\xe9 {secret}", b"--space", b"digits:2", b"--seed", b"0",
        b"--out", str(tmp_path / "x.json").encode(),
    )
    err = result.stderr.decode("utf-8", "replace").strip().splitlines()
    assert (
        result.returncode == 2 and len(err) == 1 and err[0].startswith("error: ") and b"Traceback" not in result.stderr
    )
    assert not (tmp_path / "x.json").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_stdout_on_a_full_disk_is_one_line():
    with open("/dev/full", "w") as full:
        result = _cli("canaries", "list-presets", stdout=full)
    err = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(err) == 1 and "No space left" in err[0], result.stderr


def test_a_fifo_input_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    result = _cli(
        "canaries", "plant", str(tmp_path / "fifo"), "--data", str(tmp_path / "fifo"), "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2 and b"not a regular file" in result.stderr and time.monotonic() - started < 60


def test_ctrl_c_during_start_up_is_exit_130_without_a_traceback():
    for delay in (0.05, 0.2, 0.4):
        proc = subprocess.Popen([PY, "-m", "privacy_audit", "canaries", "list-presets"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err, err
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, proc.returncode, err)


# Mechanisms, one test per class.

def test_error_boundary_maps_unexpected_exceptions_to_exit_3(monkeypatch):
    import privacy_audit.audit

    def boom(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(privacy_audit.audit, "compare_reports", boom)
    result = run("compare", "a", "b")
    assert (
        result.exit_code == 3 and "internal error, please report" in result.output and "Traceback" not in result.output
    )


def test_path_guard_follows_links_and_other_spellings(tmp_path):
    from privacy_audit._io import guard_outputs
    from privacy_audit.errors import InputError

    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    (tmp_path / "l").symlink_to(data)
    for spelling in (data, tmp_path / "l", tmp_path / "." / "d.jsonl", Path(os.path.relpath(data))):
        with pytest.raises(InputError, match="is the input"):
            guard_outputs([data], [spelling])
    guard_outputs([data], [tmp_path / "new.json"])


def test_special_file_guard_refuses_before_opening(tmp_path):
    from privacy_audit._io import read_text
    from privacy_audit.errors import InputError

    os.mkfifo(tmp_path / "p")
    for special in (tmp_path / "p", Path("/dev/zero")):
        with pytest.raises(InputError, match="not a regular file"):
            read_text(special)


def test_reports_with_secrets_are_private_and_writes_replace_links(f):
    t = f["t"]
    r = run("score", "--model", "mock", "--prompt", f["prompt"], "--canaries", f["set"], "--out", t / "secret.json",
            "--include-secrets")
    assert r.exit_code == 0 and stat.S_IMODE(os.stat(t / "secret.json").st_mode) == 0o600
    victim = t / "victim.txt"
    victim.write_text("keep me")
    (t / "out.md").symlink_to(victim)
    assert run("report", f["report"], "--md", t / "out.md").exit_code == 0
    assert victim.read_text() == "keep me" and not (t / "out.md").is_symlink()


def test_secret_sharer_plot_does_not_follow_a_planted_link(f):
    t = f["t"]
    out = t / "ss"
    r = run("secret-sharer", f["deep_config.toml"], "--out", out)
    assert r.exit_code == 0, r.output
    folder = next(out.glob("secret-sharer-*"))
    victim = t / "victim.png"
    victim.write_bytes(b"keep")
    (folder / "rank-cdf.png").unlink()
    (folder / "rank-cdf.png").symlink_to(victim)
    assert run("secret-sharer", f["deep_config.toml"], "--out", out).exit_code == 0
    assert victim.read_bytes() == b"keep" and not (folder / "rank-cdf.png").is_symlink()


def test_failing_teacher_message_is_sanitised_and_redacted(f):
    secret = json.loads(f["set"].read_text())["canaries"][0]["secret"]
    planted = f["t"] / "planted.jsonl"
    assert run("canaries", "plant", f["set"], "--data", f["sms"], "--out", planted).exit_code == 0
    script = f["t"] / "leaky.py"
    script.write_text(
        "import sys, json\nrows = [json.loads(line) for line in open(sys.argv[1])]\n"
        "hit = next(r['text'] for r in rows if 'code' in r['text'])\n"
        "sys.stderr.write('\\x1b]0;pwned\\x07\\x1b[31mfailed on: ' + hit + '\\n')\nsys.exit(4)\n"
    )
    result = run(
        "teach", "--pipeline", "command", "--data", planted, "--out", f["t"] / "p.txt", "--command",
        f"{PY} {script} {{input}}",
    )
    assert result.exit_code == 2 and "exit code 4" in result.output
    assert secret not in result.output and "\x1b" not in result.output and "\x07" not in result.output
    assert "[redacted]" in result.output


def test_derived_field_error_shows_no_secret(tmp_path):
    from privacy_audit.canaries.canary import derive
    from privacy_audit.errors import InputError

    with pytest.raises(InputError) as err:
        derive({"a": "Alice", "b": "7"}, {"p": ("mul", "a", "b")})
    assert "Alice" not in str(err.value)


def test_untrusted_text_in_every_output_format(f):
    from privacy_audit.reports import load_report
    from privacy_audit.reports.junit import render_junit
    from privacy_audit.reports.markdown import render_markdown

    report = load_report(f["report"])
    hostile = "<script>alert(1)</script>\x1b]8;;http://x\x07\x00\x0b"
    canaries = tuple(c.model_copy(update={"id": c.id + hostile}) for c in report.canaries)
    run_spec = report.run.model_copy(update={"pipeline": hostile})
    bad = report.model_copy(update={"canaries": canaries, "run": run_spec})
    from privacy_audit.gate import Thresholds, apply_gate

    bad = bad.model_copy(update={"gate": apply_gate(bad, Thresholds(max_exposure_bits=0.0))})
    ET.fromstring(render_junit(bad).split("\n", 1)[1])  # well-formed
    md = render_markdown(bad)
    assert "<script>" not in md and "&lt;script&gt;" in md and "\x1b" not in md and "\x00" not in md


def test_no_silent_corruption_of_data(f):
    t = f["t"]
    (t / "bom.csv").write_bytes("\ufefftext,label\nhello there,ham\nbuy now,spam\n".encode())
    assert run("canaries", "plant", f["set"], "--data", t / "bom.csv", "--out", t / "bom_out.csv").exit_code == 0
    assert (t / "bom_out.csv").read_text().splitlines()[0] == "text,label"
    (t / "u2028.jsonl").write_text(
        json.dumps({"text": "line\u2028separator", "label": "ham"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"text": "second", "label": "spam"})
        + "\n",
        encoding="utf-8",
    )
    assert run("canaries", "plant", f["set"], "--data", t / "u2028.jsonl", "--out", t / "u_out.jsonl").exit_code == 0
    rows = [json.loads(line) for line in (t / "u_out.jsonl").read_text(encoding="utf-8").split("\n") if line]
    assert "line\u2028separator" in rows[0]["text"]
    taught = run("teach", "--pipeline", "raw", "--data", t / "u_out.jsonl", "--out", t / "p.txt", "--no-cache")
    assert taught.exit_code == 0, taught.output


def test_a_teachers_background_child_ends_with_teach(f):
    pidfile = f["t"] / "child.pid"
    script = f["t"] / "forker.py"
    script.write_text(
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\nprint('a teaching prompt')\n"
    )
    result = run(
        "teach", "--pipeline", "command", "--data", f["sms"], "--out", f["t"] / "p.txt", "--command", f"{PY} {script}"
    )
    assert result.exit_code == 0, result.output
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            with open(f"/proc/{pid}/status") as status:
                if "zombie" in status.read():
                    return  # dead, waiting for its new parent to reap it
        except FileNotFoundError:
            return
        time.sleep(0.1)
    raise AssertionError("the teacher's background child outlived teach")


def test_an_empty_prompt_is_scored_as_the_zero_shot_case_and_said_so(f):
    (f["t"] / "empty.txt").write_text("")
    result = run(
        "score", "--model", "mock", "--prompt", f["t"] / "empty.txt", "--canaries", f["set"], "--out", f["t"] / "z.json"
    )
    assert result.exit_code == 0 and "zero-shot case" in result.output


def test_a_version_1_report_is_upgraded(f):
    from privacy_audit.reports import load_report

    data = json.loads(f["report"].read_text())
    data["schema_version"] = 1
    data["run"].pop("tokenization")
    data["summary"].pop("p_values")
    data["summary"].pop("secrets_in_prompt")  # fields of later versions
    for c in data["canaries"]:
        for key in ("verbatim_p_value", "similarity", "similarity_p_value"):
            c.pop(key, None)
    for key in ("interval_method", "confidence"):
        data["statistics"].pop(key)
    eps = data["statistics"]["epsilon"]
    for key in ("hits", "design"):
        eps.pop(key)
    data["statistics"]["extrapolation"] = {
        "a": 0.0, "loc": 1.0, "scale": 1.0, "ks_statistic": 0.1, "ks_p_value": 0.5, "poor_fit": False,
    }
    (f["t"] / "v1.json").write_text(json.dumps(data))
    report = load_report(f["t"] / "v1.json")
    # read by what it holds: the figures its rows support are computed by this version (epsilon, intervals, tests)
    assert report.schema_version == 6 and report.statistics.epsilon.design == "one_run"
    assert report.summary.p_values["planted_vs_references"].method == "exact permutation"
    assert all(c.rank_lower == c.rank_upper == c.rank and c.exposure_method == "exact" for c in report.canaries)
    assert report.statistics.interval_method.startswith("betting") and report.run.tokenization is None
    assert "none" in report.statistics.extrapolation.calibration
