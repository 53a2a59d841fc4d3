"""The echo design: a prefix drawn from the user's data, then a random secret, recorded as such end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit.canaries.echo import echo_template
from privacy_audit.cli import main
from privacy_audit.errors import InputError


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_prefix_is_the_start_of_a_long_enough_record():
    texts = ["too short", "one two three four five six", "a {slot} b c d e", "alpha  beta\tgamma delta epsilon"]
    seen = {echo_template(texts, prefix_words=4, rng=np.random.default_rng(s)) for s in range(40)}
    assert seen == {"one two three four {secret}", "alpha beta gamma delta {secret}"}  # never the {slot} record
    with pytest.raises(InputError, match="lower --prefix-words"):
        echo_template(texts, prefix_words=7, rng=np.random.default_rng(0))


def test_echo_canaries_through_the_cli(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"text": f"message number {i} about the meeting at noon tomorrow", "label": "ham"} for i in range(20)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = data.read_bytes()
    out = tmp_path / "c.json"
    r = run("canaries", "generate", "--design", "echo", "--data", data, "--prefix-words", "5", "--count", 2,
            "--references", 30, "--seed", 3, "--out", out)
    assert r.exit_code == 0, r.output
    made = json.loads(out.read_text())
    assert made["design"] == "echo" and made["space"] == "alnum:10" and data.read_bytes() == before
    prefix = made["template"].removesuffix(" {secret}")
    assert any(row["text"].startswith(prefix) for row in rows) and len(prefix.split()) == 5
    again = tmp_path / "c2.json"
    run("canaries", "generate", "--design", "echo", "--data", data, "--prefix-words", "5", "--count", 2,
        "--references", 30, "--seed", 3, "--out", again)
    assert again.read_bytes() == out.read_bytes()
    assert "design: echo" in run("canaries", "show", out).output
    prompt = tmp_path / "p.txt"
    prompt.write_text(prefix + " " + made["canaries"][0]["secret"] + "\n")
    scored = run("score", "--prompt", prompt, "--canaries", out, "--model", "ngram", "--out", tmp_path / "r.json")
    assert scored.exit_code in (0, 1), scored.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["run"]["canary_design"] == "echo"
    assert run("report", tmp_path / "r.json", "--md", tmp_path / "r.md").exit_code in (0, 1)
    assert "| canary design | echo" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("args, words", [
    (["--design", "echo"], "draws its prefix from --data"),
    (["--data", "DATA"], "draws its prefix from --data"),
    (["--design", "echo", "--data", "DATA", "--template", "x {secret}", "--space", "digits:2"], "not --template"),
    (["--design", "echo", "--data", "DATA", "--prefix-words", "50"], "lower --prefix-words"),
])
def test_bad_echo_requests_are_one_line(tmp_path, args, words):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a b c d e f"}\n')
    r = run("canaries", "generate", *[str(data) if a == "DATA" else a for a in args], "--seed", 1,
            "--out", tmp_path / "c.json")
    assert r.exit_code == 2 and words in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "c.json").exists()
