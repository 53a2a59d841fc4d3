"""The bad-input corpus: every case is one line starting 'error:', exit code 2, no traceback, and the
input files byte-for-byte unchanged."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main

TEACHERS = Path(__file__).parent / "pipelines" / "teachers"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def files(tmp_path, sms_jsonl):
    """Inputs of every kind, good and bad."""
    f = {"sms": sms_jsonl}
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:4", "--count", "1",
        "--references", "2", "--seed", "0", "--out", tmp_path / "set.json")
    f["set"] = tmp_path / "set.json"
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:9", "--count", "1",
        "--references", "2", "--seed", "0", "--out", tmp_path / "big.json")
    f["big"] = tmp_path / "big.json"
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:3", "--count", "1",
        "--references", "0", "--seed", "0", "--out", tmp_path / "norefs.json")
    f["norefs"] = tmp_path / "norefs.json"
    tampered = json.loads(f["set"].read_text())
    tampered["canaries"][0]["secret"] = "12ab"
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    f["tampered"] = tmp_path / "tampered.json"
    texts = {
        "malformed": '{"text": "ok"}\n{"text": "broken"\n', "truncated": '{"text": "ok"}\n{"text": "cut in the mid',
        "array_line": '{"text": "ok"}\n[1, 2, 3]\n', "number_field": '{"text": 42}\n', "empty": "",
        "blank_lines": "\n\n   \n", "huge_bad": '{"text": "' + "x" * 3_000_000 + "\n", "prompt": "hello",
        "future_report": json.dumps({"schema_version": 99}), "zero_version": json.dumps({"schema_version": 0}),
        "trunc_report": '{"schema_version": 1, "run": {', "no_version": json.dumps({"hello": 1}),
        "report_missing": json.dumps({"schema_version": 1, "run": {}}), "gate_unknown": "[gate]\nmax_exposur = 3\n",
        "gate_broken": "[gate\nmax_auc = 1\n", "not_a_set": json.dumps({"format": "something-else"}),
        "ragged.csv": "label,text\nham,hello\nspam,buy,now,please\n", "nocol.csv": "label,body\nham,hello\n",
    }
    for name, text in texts.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        f[name] = tmp_path / name
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    f["latin1"] = tmp_path / "latin1.jsonl"
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{corrupt")
    f["corrupt_model"] = tmp_path / "model"
    f["out"] = tmp_path / "out.json"
    f["tmp"] = tmp_path
    return f


def cases(f):
    """name -> (arguments, words the error line must contain)."""
    t = f["tmp"]
    plant = ["canaries", "plant", f["set"], "--out", t / "o.jsonl", "--data"]
    score = ["score", "--model", "mock", "--out", f["out"]]
    gen = ["canaries", "generate", "--seed", "0", "--out", t / "x.json"]
    return {
        "malformed-jsonl": ([*plant, f["malformed"]], "line 2: invalid JSON"),
        "truncated-jsonl": ([*plant, f["truncated"]], "line 2: invalid JSON"),
        "jsonl-line-not-object": ([*plant, f["array_line"]], "expected a JSON object"),
        "field-not-text": ([*plant, f["number_field"]], "is int, not text"),
        "empty-file": ([*plant, f["empty"]], "no records"),
        "only-blank-lines": ([*plant, f["blank_lines"]], "no records"),
        "non-utf8": ([*plant, f["latin1"]], "not UTF-8"),
        "huge-malformed-line": ([*plant, f["huge_bad"]], "line 1: invalid JSON"),
        "missing-field": ([*plant, f["sms"], "--field", "body"], "no field 'body'"),
        "missing-data-file": ([*plant, t / "nope.jsonl"], "does not exist"),
        "plant-over-input": (["canaries", "plant", f["set"], "--data", f["sms"], "--out", f["sms"]], "never modified"),
        "template-without-slot": ([*gen, "--template", "no slot", "--space", "digits:4"], "{secret}"),
        "template-two-slots": ([*gen, "--template", "{secret} {secret}", "--space", "digits:4"], "exactly one"),
        "template-only-slot": ([*gen, "--template", "{secret}", "--space", "digits:4"], "no text around"),
        "unknown-space": ([*gen, "--template", "c {secret}", "--space", "emoji:3"], "unknown space"),
        "malformed-space": ([*gen, "--template", "c {secret}", "--space", "digits"], "KIND:LENGTH"),
        "more-canaries-than-space": (
            [*gen, "--template", "c {secret}", "--space", "digits:1", "--count", "8", "--references", "5"], "holds 10",
        ),
        "exact-space-too-large": (
            [*score, "--exact", "--prompt", f["prompt"], "--canaries", f["big"]], "1,000,000,000 secrets",
        ),
        "sampled-without-references": (
            [*score, "--prompt", f["prompt"], "--canaries", f["norefs"], "--sampled"], "references",
        ),
        "missing-prompt": ([*score, "--prompt", t / "nope.txt", "--canaries", f["set"]], "does not exist"),
        "missing-canary-set": ([*score, "--prompt", f["prompt"], "--canaries", t / "nope.json"], "does not exist"),
        "canary-set-not-json": ([*score, "--prompt", f["prompt"], "--canaries", f["prompt"]], "not valid JSON"),
        "canary-set-wrong-format": (
            [*score, "--prompt", f["prompt"], "--canaries", f["not_a_set"]], "not a privacy-audit canary set",
        ),
        "canary-set-tampered": ([*score, "--prompt", f["prompt"], "--canaries", f["tampered"]], "does not match"),
        "missing-model": (
            ["score", "--model", t / "no-model", "--out", f["out"], "--prompt", f["prompt"], "--canaries", f["set"]],
            "not found",
        ),
        "corrupt-model": (
            [
                "score", "--model", f["corrupt_model"], "--out", f["out"], "--prompt", f["prompt"], "--canaries",
                f["set"],
            ],
            "cannot load model",
        ),
        "output-folder-missing": (
            [*score[:-1], t / "no" / "dir" / "r.json", "--prompt", f["prompt"], "--canaries", f["set"]],
            "does not exist",
        ),
        "output-under-a-file": (
            [*score[:-1], f["prompt"] / "r.json", "--prompt", f["prompt"], "--canaries", f["set"]], "is not a folder",
        ),
        "teach-without-data": (["teach", "--pipeline", "raw", "--out", t / "p.txt"], "--data"),
        "teach-unknown-pipeline": (
            ["teach", "--pipeline", "magic", "--data", f["sms"], "--out", t / "p.txt"], "'magic' is not one of",
        ),
        "teach-bad-option": (
            ["teach", "--pipeline", "raw", "--data", f["sms"], "-o", "teachers=3", "--out", t / "p.txt"],
            "has no option teachers",
        ),
        "teach-zero-examples": (
            ["teach", "--pipeline", "raw", "--data", f["sms"], "--examples", "0", "--out", t / "p.txt"],
            "pipeline 'raw' option examples: Input should be greater than or equal to 1",
        ),
        "prompt-file-missing-path": (["teach", "--pipeline", "prompt-file", "--out", t / "p.txt"], "--prompt-file"),
        "command-fails": (
            [
                "teach", "--pipeline", "command", "--data", f["sms"], "--out", t / "p.txt", "--command",
                f"{sys.executable} {TEACHERS / 'bad_teachers.py'} fail",
            ],
            "exit code 3",
        ),
        "command-hangs": (
            [
                "teach", "--pipeline", "command", "--data", f["sms"], "--out", t / "p.txt", "--timeout", "1",
                "--command", f"{sys.executable} {TEACHERS / 'bad_teachers.py'} hang {t / 'pid'}",
            ],
            "timed out",
        ),
        "command-prints-nothing": (
            [
                "teach", "--pipeline", "command", "--data", f["sms"], "--out", t / "p.txt", "--command",
                f"{sys.executable} {TEACHERS / 'bad_teachers.py'} silent",
            ],
            "no teaching prompt",
        ),
        "command-not-found": (
            [
                "teach", "--pipeline", "command", "--data", f["sms"], "--out", t / "p.txt", "--command",
                "no-such-program --x",
            ],
            "not found",
        ),
        "held-out-without-data": (
            [*score, "--prompt", f["prompt"], "--canaries", f["set"], "--held-out", f["sms"]], "--data",
        ),
        "report-newer-version": (["gate", f["future_report"], "--max-exposure", "3"], "newer"),
        "report-zero-version": (["gate", f["zero_version"], "--max-exposure", "3"], "invalid schema_version"),
        "report-truncated": (["gate", f["trunc_report"], "--max-exposure", "3"], "not valid JSON"),
        "report-not-a-report": (["gate", f["no_version"], "--max-exposure", "3"], "not a privacy-audit report"),
        "report-missing-fields": (["gate", f["report_missing"], "--max-exposure", "3"], "malformed"),
        "report-non-json": (["report", f["prompt"], "--md", t / "x.md"], "not valid JSON"),
        "gate-config-unknown-key": (
            ["gate", f["future_report"], "--config", f["gate_unknown"]], "unknown gate setting",
        ),
        "gate-config-not-toml": (["gate", f["future_report"], "--config", f["gate_broken"]], "not valid TOML"),
        "missing-required-option": (["score", "--prompt", f["prompt"]], "Missing option '--canaries'"),
        "conflicting-model-option": (
            [*score, "--prompt", f["prompt"], "--canaries", f["set"], "--search-budget", "-5"],
            "scoring option search_budget: Input should be greater than or equal to 0",
        ),
        "csv-ragged-rows": ([*plant, f["ragged.csv"]], "line 3: 4 fields where the header has 2"),
        "csv-missing-column": ([*plant, f["nocol.csv"]], "no column 'text'"),
        "unknown-preset": ([*gen, "--preset", "lambada-codes"], "unknown preset"),
        "preset-and-template": ([*gen, "--preset", "lambada-code", "--template", "x {secret}"], "not both"),
        "product-slot-missing": (
            [*gen, "--template", "a {x}", "--space", "x=digits:1;y=digits:1"], "lacks the slot {y}",
        ),
        "bad-label-map": (
            ["teach", "--pipeline", "raw", "--data", f["sms"], "--label-map", "nolabel", "--out", t / "p.txt"],
            "FROM=TO",
        ),
    }


CASE_NAMES = list(
    cases(
        {
            k: Path("x")
            for k in [
                "sms", "set", "big", "norefs", "tampered", "malformed", "truncated", "array_line", "number_field",
                "empty", "blank_lines", "huge_bad", "prompt", "future_report", "zero_version", "trunc_report",
                "no_version", "report_missing", "gate_unknown", "gate_broken", "not_a_set", "latin1", "corrupt_model",
                "out", "tmp", "ragged.csv", "nocol.csv",
            ]
        }
    )
)


def test_the_corpus_is_large_enough():
    assert len(CASE_NAMES) >= 30


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_gives_one_line_exit_2_and_leaves_inputs_alone(case, files):
    args, words = cases(files)[case]
    inputs = [a for a in args if isinstance(a, Path) and a.is_file()]
    before = {str(p): sha(p) for p in inputs}
    result = run(*args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert words in lines[0], lines[0]
    assert "Traceback" not in result.output and len(lines[0]) < 400
    assert {str(p): sha(p) for p in inputs} == before


def test_a_full_disk_is_a_clear_error(files, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    result = run(
        "score", "--model", "mock", "--out", files["out"], "--prompt", files["prompt"], "--canaries", files["set"]
    )
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert not files["out"].exists() and not list(files["tmp"].glob(".out.json.*"))
