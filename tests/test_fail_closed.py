"""The third reliability corpus: the gate fails closed on reports it cannot trust, outputs never replace a file
a command read, the command teacher ends with `teach`, renderings of secrets stay private, configs are
checked like flags, Secret Sharer resume checks what it finds, and multi-file outputs are all or nothing.

Each class has cases through the CLI (one `error:` line, exit 2, inputs unchanged) and a test of its mechanism.
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
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit import MockModel, ScoringOptions, generate_canary_set, save_report
from privacy_audit.chain import build_report
from privacy_audit.canaries import save_canary_set
from privacy_audit.cli import main
from privacy_audit.pipelines import TeacherArtifact, TeachingOutput

PY = sys.executable


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def digest(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error(result, words: str) -> str:
    """The one `error:` line the case names (not any one-line error), exit 2."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, (result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert words in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A report the default gate fails (its prompt copies a canary), with leaks, and its canary set (built once)."""
    folder = tmp_path_factory.mktemp("built")
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    save_canary_set(cs, folder / "set.json")
    prompt = f"The secret code is {cs.planted[0].secret}.\n" * 3
    art = TeacherArtifact(
        private="Text: private words here\nClass: ham", generated=("private words here", "other text")
    )
    teaching = TeachingOutput(prompt=prompt, pipeline="instructions", options={}, seed=0, model=None, artifacts=(art,))
    save_report(build_report(teaching, cs, MockModel()), folder / "report.json")
    return folder


@pytest.fixture
def r(tmp_path, built):
    """The built report and set in this test's folder, its JSON, and a way to tamper with it."""
    for name in ("set.json", "report.json"):
        (tmp_path / name).write_bytes((built / name).read_bytes())
    data = json.loads((tmp_path / "report.json").read_text())

    def tampered(name: str, change) -> Path:
        copy = json.loads(json.dumps(data))
        change(copy)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(copy, allow_nan=True))
        return path

    return {"t": tmp_path, "report": tmp_path / "report.json", "data": data, "tampered": tampered}


def first_planted(d):
    return next(c for c in d["canaries"] if c["planted"])


TAMPERS = {
    "p-value-nan": (lambda d: first_planted(d).update(p_value=float("nan")), "p_value"),
    "p-value-5": (lambda d: first_planted(d).update(p_value=5), "p_value"),
    "p-value-not-its-rank": (lambda d: first_planted(d).update(p_value=0.9), "p_value"),
    "exposure-as-string": (lambda d: first_planted(d).update(exposure_bits="12.5"), "exposure_bits"),
    "exposure-nan": (lambda d: first_planted(d).update(exposure_bits=float("nan")), "exposure_bits"),
    "exposure-not-its-rank": (lambda d: first_planted(d).update(exposure_bits=0.5), "exposure_bits"),
    "exposure-upper-not-its-interval": (lambda d: first_planted(d).update(exposure_bits_upper=0.1), "exposure_bits"),
    "rank-zero": (lambda d: first_planted(d).update(rank=0), "rank"),
    "rank-beyond-space": (lambda d: first_planted(d).update(rank=5000, rank_lower=5000, rank_upper=5000), "rank"),
    "rank-as-float": (lambda d: first_planted(d).update(rank=1.5), "rank"),
    "rank-against-its-score": (lambda d: first_planted(d).update(logprob_bits=-500.0), "rank"),
    "planted-flag-as-string": (lambda d: first_planted(d).update(planted="yes"), "planted"),
    "shared-p-value-raised": (
        lambda d: d["summary"]["p_values"]["planted_vs_references"].update(p=1.0, log10_p=0.0), "p_values",
    ),
    "summary-unknown-field": (
        lambda d: d["summary"].update(planted_vs_references_p_value=1.0), "planted_vs_references_p_value",
    ),
    "similarity-p-lowered": (lambda d: first_planted(d).update(similarity_p_value=0.001), "similarity_p_value"),
    "similarity-test-removed": (lambda d: d["summary"]["p_values"].pop("similarity"), "p_values"),
    "similarity-test-raised": (lambda d: d["summary"]["p_values"]["similarity"].update(p=1.0, log10_p=0.0), "p_values"),
    "max-exposure-nan": (lambda d: d["summary"].update(max_exposure_bits=float("nan")), "max_exposure_bits"),
    "max-exposure-lowered": (lambda d: d["summary"].update(max_exposure_bits=0.0), "max_exposure_bits"),
    "planted-count-raised": (lambda d: d["summary"].update(planted_count=7), "planted_count"),
    "log10-disagrees": (lambda d: d["summary"]["p_values"]["protocol_rank_zero"].update(log10_p=-40.0), "log10_p"),
    "leak-units-zero": (lambda d: d["leaks"].update(units=0), "units"),
    "leak-rate-lowered": (lambda d: d["leaks"].update(verbatim_rate=0.0), "verbatim_rate"),
    "mode-unknown": (lambda d: d["run"].update(mode="magic"), "mode"),
    "mode-exact-to-sampled": (lambda d: d["run"].update(mode="sampled"), "rank_pool"),
    "epsilon-infinite": (lambda d: d["statistics"]["epsilon"].update(epsilon=float("inf")), "epsilon"),
    "epsilon-lowered": (lambda d: d["statistics"]["epsilon"].update(epsilon=0.0), "statistics.epsilon.epsilon"),
    "epsilon-design-relabelled": (
        lambda d: d["statistics"]["epsilon"].update(design="randomized_inclusion"), "statistics.epsilon",
    ),
    "exact-p-relabelled-monte-carlo": (
        lambda d: d["summary"]["p_values"]["planted_vs_references"].update(
            p=1.0, log10_p=0.0, method="Monte Carlo permutation (20,000 draws)", monte_carlo_error=0.0),
        "planted_vs_references.method",
    ),
    "mean-interval-misses-its-mean": (
        lambda d: d["statistics"].update(mean_exposure_planted_ci=[0.0, 0.1]), "mean_exposure_planted_ci",
    ),
    "interval-method-relabelled": (
        lambda d: d["statistics"].update(interval_method="percentile bootstrap"), "interval_method",
    ),
    "space-sizes-differ": (lambda d: first_planted(d).update(space_size=999), "space"),
    "space-shrunk-everywhere": (
        lambda d: [c.update(space_size=200, rank_pool=200) for c in d["canaries"]], "space_size",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_a_tampered_report_is_refused_by_every_command_never_passed(r, case):
    """Class A: each number is checked when a report is loaded, against its range and the fields it follows from."""
    change, field = TAMPERS[case]
    path = r["tampered"](case, change)
    before = digest(r["t"])
    for args in (["gate", path, "--alpha", "1e-12"], ["gate", path, "--max-fuzzy-fraction", "0.5", "--alpha", "1e-12"],
                 ["compare", r["report"], path], ["report", path, "--md", r["t"] / "out.md"]):
        one_error(run(*args), field)
    assert digest(r["t"]) == before


@pytest.fixture(scope="module")
def with_secrets(tmp_path_factory):
    """A report written with --include-secrets whose prompt copies a canary: what follows from its stored text."""
    folder = tmp_path_factory.mktemp("secrets")
    cs = generate_canary_set(template="The secret code is {secret}", space="digits:3", count=2, references=12, seed=5)
    prompt = f"Text: call me\nThe secret code is {cs.planted[0].secret}.\n"
    teaching = TeachingOutput(prompt=prompt, pipeline="raw", options={}, seed=0, model=None)
    save_report(build_report(teaching, cs, MockModel(), ScoringOptions(include_secrets=True)), folder / "r.json")
    return folder / "r.json"


def hide_the_copy(d):
    c = first_planted(d)
    c.update(in_prompt=False, verbatim_p_value=1.0)
    d["summary"]["planted_in_prompt"] = 0


SECRET_TAMPERS = {
    "copied-secret-said-absent": (hide_the_copy, "in_prompt"),
    "whole-space-said-in-prompt": (lambda d: d["summary"].update(secrets_in_prompt=1000), "secrets_in_prompt"),
    "similarity-lowered": (lambda d: first_planted(d).update(similarity=0.2), "similarity"),
    "prompt-edited": (lambda d: d.update(prompt=d["prompt"].replace("call", "ring")), "prompt_sha256"),
}


@pytest.mark.parametrize("case", list(SECRET_TAMPERS))
def test_what_follows_from_a_stored_prompt_is_recomputed_from_it(with_secrets, tmp_path, case):
    """A report that stores its prompt and secrets cannot be edited to hide a copy: each command refuses it."""
    change, field = SECRET_TAMPERS[case]
    data = json.loads(with_secrets.read_text())
    assert run("gate", with_secrets).exit_code == 1  # the untampered report fails: it copies a canary
    change(data)
    (tmp_path / "t.json").write_text(json.dumps(data))
    for args in (["gate", tmp_path / "t.json"], ["compare", with_secrets, tmp_path / "t.json"],
                 ["report", tmp_path / "t.json", "--md", tmp_path / "o.md"]):
        one_error(run(*args), field)


def test_the_untampered_report_fails_the_default_gate_and_passes_a_lenient_one(r):
    assert run("gate", r["report"]).exit_code == 1
    ok = run("gate", r["report"], "--alpha", "1e-12", "--max-fuzzy-fraction", "0.5")
    assert ok.exit_code == 0, ok.output


def test_rule_lines_read_true_and_missing_data_is_always_skipped(r, tmp_path):
    """Class B: a passing rule says it is within its limit; a rule without data says why it was skipped."""
    out = run("gate", r["report"], "--max-exposure", "14", "--alpha", "1e-12", "--max-auc", "0.5", "--min-guesses", "1")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.startswith("ok ") and "within the limit of 14 bits" in line for line in lines)
    assert not any(line.startswith("ok ") and " > " in line for line in lines)
    assert "[max_auc]: the report has no reconstruction" in out.output
    assert sum("guesses to extract the secret" in line for line in lines) == 2


@pytest.mark.parametrize(
    "text, both",
    [
        ("max_exposure_bits = 1\n[gate]\nmax_auc = 0.9\n", "[gate] and top-level keys (max_exposure_bits)"),
        (
            "[gate]\nmax_exposure_bits = 1\n[tool.privacy-audit.gate]\nmax_auc = 0.9\n",
            "[tool.privacy-audit.gate] and [gate]",
        ),
        ("[tool.privacy-audit]\nmax_exposure_bits = 1\n", "[tool.privacy-audit.gate]"),
    ],
)
def test_rules_in_two_places_are_an_error_naming_both(r, text, both):
    """Class B: a config never silently drops one of two sets of rules."""
    (r["t"] / "g.toml").write_text(text)
    one_error(run("gate", r["report"], "--config", r["t"] / "g.toml"), both)


def test_a_new_rule_is_one_registration(r):
    """A rule registered once gets its CLI flag, config key, gate line, JUnit case and "skipped" line."""
    from privacy_audit.gate import RULES, Measurement, load_thresholds, rule

    @rule(
        "max_tokens_planted", flag="--max-tokens-planted", kind=int, low=1, high=10_000,
        what="scored tokens of a canary", help="Fail when a planted canary has more scored tokens.",
        missing=lambda report: None if report.run.pipeline != "skip-me" else "no tokens here",
    )
    def _tokens(report, limit, thresholds):
        return [Measurement(c.id, float(c.tokens), None) for c in report.canaries if c.planted]

    try:
        out = run("gate", r["report"], "--max-tokens-planted", "2", "--alpha", "1e-12")
        assert out.exit_code == 1 and "scored tokens of a canary 3, above the limit of 2" in out.output
        (r["t"] / "g.toml").write_text("[gate]\nmax_tokens_planted = 5\nalpha = 1e-12\n")
        assert load_thresholds(r["t"] / "g.toml").max_tokens_planted == 5
        assert run("gate", r["report"], "--config", r["t"] / "g.toml").exit_code == 0
        rendered = run("report", r["report"], "--junit", r["t"] / "j.xml", "--max-tokens-planted", "2")
        assert rendered.exit_code == 0 and "privacy_audit.gate.max_tokens_planted" in (r["t"] / "j.xml").read_text()
        assert "--max-tokens-planted" in run("gate", "--help").output
        one_error(run("gate", r["report"], "--max-tokens-planted", "0"), "out of range")
    finally:
        RULES.pop("max_tokens_planted")


def test_outputs_never_replace_a_file_the_command_read(tmp_path, sms_jsonl):
    """Class C: word lists, planting records and data named in a config are inputs like the ones on the command line."""
    (tmp_path / "w.txt").write_text("alpha\nbeta\ngamma\ndelta\n")
    before = digest(tmp_path)
    one_error(
        run(
            "canaries", "generate", "--template", "w {secret}", "--space", f"words:@{tmp_path / 'w.txt'}", "--count",
            "1", "--references", "1", "--seed", "0", "--out", tmp_path / "w.txt",
        ),
        "is the input",
    )
    assert digest(tmp_path) == before
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:3", "--count", "1", "--seed", "0",
        "--out", tmp_path / "set.json")
    assert (
        run("canaries", "plant", tmp_path / "set.json", "--data", sms_jsonl, "--out", tmp_path / "o.jsonl").exit_code
        == 0
    )
    before = digest(tmp_path)
    one_error(
        run("canaries", "plant", tmp_path / "o.jsonl.planting.json", "--data", sms_jsonl, "--out",
            tmp_path / "o.jsonl"), "o.jsonl.planting.json is the input",
    )
    assert digest(tmp_path) == before
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "planted.jsonl").write_bytes(sms_jsonl.read_bytes())
    (tmp_path / "c.toml").write_text(
        "[canaries]\ntemplate = 'code {secret}'\nspace = 'digits:3'\ncount = 1\nreferences = 3\n"
        "[data]\npath = 'out/planted.jsonl'\n[model]\nspec = 'mock'\n"
    )
    before = digest(tmp_path)
    one_error(run("run", tmp_path / "c.toml", "--out", tmp_path / "out"), "is the input")
    assert digest(tmp_path) == before


def test_an_output_that_was_read_is_refused_whoever_named_it(tmp_path):
    """The mechanism of class C: under `tracking_reads` (every CLI command) a file read is never written."""
    from privacy_audit._io import atomic_write, read_text, tracking_reads
    from privacy_audit.errors import InputError

    (tmp_path / "a.txt").write_text("keep me")
    with tracking_reads():
        read_text(tmp_path / "a.txt")
        with pytest.raises(InputError, match="this command read"):
            atomic_write(tmp_path / "a.txt", "replaced")
        atomic_write(tmp_path / "b.txt", "fine")
    assert (tmp_path / "a.txt").read_text() == "keep me"


def teacher(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def test_command_teacher_files_in_any_argument_are_hashed_and_guarded(tmp_path, sms_jsonl):
    """Class D: `python -u t.py` hashes t.py (an edit reruns the teacher) and `--out t.py` is refused."""
    script = teacher(tmp_path, "t.py", "import sys\nsys.stdin.read()\nprint('version one')\n")
    teach = ["teach", "--pipeline", "command", "--data", sms_jsonl, "--command", f"{PY} -u {script}"]
    assert run(*teach, "--out", tmp_path / "p.txt").exit_code == 0
    script.write_text("import sys\nsys.stdin.read()\nprint('version two')\n")
    assert run(*teach, "--out", tmp_path / "p.txt").exit_code == 0
    assert (tmp_path / "p.txt").read_text() == "version two\n"
    one_error(run(*teach, "--out", script), "is the input")
    assert "version two" in script.read_text()


def test_a_teacher_is_bounded_by_the_timeout_and_keeps_a_bounded_stderr(tmp_path, sms_jsonl):
    """Class D: a background child that escapes the group and holds stdout open cannot stretch the run; 20 MB of
    stderr keep only its tail."""
    from privacy_audit.pipelines.command import STDERR_TAIL, _run

    escape = teacher(tmp_path, "g.py", "import subprocess, sys\nprint('prompt')\nsys.stdout.flush()\n"
                                        "subprocess.Popen(['sleep', '30'], start_new_session=True)\n")
    started = time.monotonic()
    code, out, _ = _run([PY, str(escape)], None, 10.0, 0)
    assert code == 0 and out == b"prompt\n" and time.monotonic() - started < 5
    loud = teacher(tmp_path, "e.py", "import sys\nfor _ in range(20): sys.stderr.write('x' * (1 << 20) + '\\n')\n"
                                     "sys.stderr.write('the last line\\n')\nsys.exit(3)\n")
    code, _, err = _run([PY, str(loud)], None, 60.0, 0)
    assert code == 3 and len(err) <= STDERR_TAIL and err.endswith(b"the last line\n")
    slow = teacher(tmp_path, "s.py", "import time\ntime.sleep(30)\n")
    started = time.monotonic()
    line = one_error(
        run(
            "teach", "--pipeline", "command", "--data", sms_jsonl, "--command", f"{PY} {slow}", "--timeout", "1",
            "--out", tmp_path / "s.txt",
        ),
        "timed out",
    )
    assert time.monotonic() - started < 10 and "raise --timeout" in line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_to_teach_ends_the_teacher(tmp_path, sms_jsonl, sig):
    """Class D: SIGTERM and SIGHUP end the teacher's process group with `teach` (exit 128 + the signal)."""
    pid_file = tmp_path / "pid"
    slow = teacher(
        tmp_path,
        "h.py",
        f"import os, sys, time\nsys.stdin.read()\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n",
    )
    proc = subprocess.Popen(
        [
            PY, "-m", "privacy_audit", "teach", "--pipeline", "command", "--data", str(sms_jsonl), "--command",
            f"{PY} {slow}", "--no-cache", "--out", str(tmp_path / "h.txt"),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    child = int(pid_file.read_text())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig and "terminated" in err and "Traceback" not in err
    time.sleep(0.3)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    assert not (tmp_path / "h.txt").exists()


def test_renderings_of_reports_that_hold_secrets_are_private(tmp_path, sms_jsonl):
    """Class E: every file made from secret data is mode 0600."""
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:3", "--count", "1", "--seed", "0",
        "--out", tmp_path / "set.json")
    (tmp_path / "p.txt").write_text("a prompt\n")
    assert (
        run(
            "score", "--model", "mock", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "set.json",
            "--include-secrets", "--out", tmp_path / "r.json",
        ).exit_code
        == 0
    )
    assert run("report", tmp_path / "r.json", "--html", tmp_path / "r.html", "--md", tmp_path / "r.md", "--junit",
               tmp_path / "r.xml").exit_code == 0
    for name in ("r.json", "r.html", "r.md", "r.xml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    (tmp_path / "c.toml").write_text(
        "[canaries]\ntemplate = 'code {secret}'\nspace = 'digits:3'\ncount = 1\nreferences = 3\n"
        "[model]\nspec = 'mock'\n[scoring]\ninclude_secrets = true\n"
    )
    assert run("run", tmp_path / "c.toml", "--out", tmp_path / "run").exit_code == 0
    for name in ("report.json", "report.md", "report.html", "prompt.txt", "canaries.json", "planted.jsonl"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o600, name


@pytest.mark.parametrize(
    "setting, key",
    [
        ("model.chunk_tokens=-1", "chunk_tokens"), ("model.chunk_tokens=0", "chunk_tokens"),
        ("canaries.count=true", "canaries.count"), ('canaries.count="5"', "canaries.count"),
        ("pipeline.seed=-1", "pipeline.seed"), ("pipeline.options.examples=0", "examples"),
        ("pipeline.options.bogus=1", "bogus"), ("data.fraction=0.5", "shards"),
        ("secret_sharer.candidates=1", "secret_sharer.candidates"), ("scoring.max_exact=0", "scoring.max_exact"),
        ('model.spec="nowhere/at/all"', "not found"), ('canaries.template="no slot here"', "slot"),
        ('canaries.space="digits:0"', "KIND:LENGTH"),
    ],
)
@pytest.mark.parametrize("command", ["run", "secret-sharer"])
def test_config_values_are_checked_like_flags_before_any_work(tmp_path, setting, key, command):
    """Class F: one typed, range-checked schema; the error names the key and nothing is created."""
    (tmp_path / "c.toml").write_text(
        "[canaries]\ntemplate = 'code {secret}'\nspace = 'digits:3'\ncount = 1\nreferences = 3\n"
        "[model]\nspec = 'mock'\n[secret_sharer]\ntrials = 1\ncandidates = 5\n"
    )
    one_error(run(command, tmp_path / "c.toml", "-s", setting, "--out", tmp_path / "out"), key)
    assert not (tmp_path / "out").exists()


def test_secret_sharer_resume_counts_only_the_trials_of_this_run(tmp_path):
    """Class G: an edited or foreign trial file is moved aside and rerun; stray files are named and ignored."""
    (tmp_path / "c.toml").write_text("[canaries]\ntemplate = 'code {secret}'\nspace = 'digits:3'\n[data]\nlimit = 12\n"
                                     "[model]\nspec = 'mock'\n[secret_sharer]\ntrials = 4\ncandidates = 20\n")
    first = run("secret-sharer", tmp_path / "c.toml", "--out", tmp_path / "ss")
    assert first.exit_code == 0, first.output
    (folder,) = (tmp_path / "ss").iterdir()
    trials = folder / "trials"
    kept = json.loads((trials / "trial-00000.json").read_text())
    edited = json.loads((trials / "trial-00001.json").read_text())
    edited["candidates"] = 50
    (trials / "trial-00001.json").write_text(json.dumps(edited))
    (trials / "trial-00002.json").write_text(json.dumps({**kept, "trial": 2}))  # another trial's file, copied in
    other = json.loads((trials / "trial-00003.json").read_text())
    (trials / "trial-00003.json").rename(trials / "trial-3.json")
    (trials / "trial-00000 (copy).json").write_text("{}")
    again = run("secret-sharer", tmp_path / "c.toml", "--out", tmp_path / "ss")
    assert again.exit_code == 0, again.output
    assert "1 of 4 trials already done" in again.stderr
    assert "trial-3.json: not a trial file" in again.stderr and "(copy).json: not a trial file" in again.stderr
    assert sorted(p.name for p in (folder / "rejected").iterdir()) == ["trial-00001.json", "trial-00002.json"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["protocol"]["trials"] == 4
    assert json.loads((trials / "trial-00003.json").read_text())["rank"] == other["rank"]


def test_a_canary_set_carries_its_word_list(tmp_path):
    """Class H: appending to a word list after `generate` makes `score` refuse the set, not use another |S|."""
    from privacy_audit.canaries import parse_space

    words = tmp_path / "w.txt"
    words.write_text("".join(f"word{i}\n" for i in range(20)))
    assert (
        run(
            "canaries", "generate", "--template", "w {secret}", "--space", f"words:@{words}", "--count", "1",
            "--references", "3", "--seed", "0", "--out", tmp_path / "set.json",
        ).exit_code
        == 0
    )
    with words.open("a") as handle:
        handle.write("extra\n")
    parse_space.cache_clear()
    (tmp_path / "p.txt").write_text("a prompt\n")
    one_error(
        run(
            "score", "--model", "mock", "--prompt", tmp_path / "p.txt", "--canaries", tmp_path / "set.json", "--out",
            tmp_path / "r.json",
        ),
        "has changed since it was generated",
    )


def test_planting_refuses_to_overwrite_a_teacher_column_or_ignore_a_fraction(tmp_path, sms_jsonl):
    """Class I."""
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:3", "--count", "1", "--seed", "0",
        "--out", tmp_path / "set.json")
    rows = [dict(json.loads(line), teacher=9) for line in sms_jsonl.read_text().splitlines()]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    plant = ["canaries", "plant", tmp_path / "set.json", "--out", tmp_path / "o.jsonl", "--data"]
    one_error(run(*plant, tmp_path / "t.jsonl", "--shards", "2"), "'teacher'")
    one_error(run(*plant, sms_jsonl, "--fraction", "0.5"), "needs --shards")
    assert not (tmp_path / "o.jsonl").exists()


def test_commands_with_several_outputs_write_all_or_nothing(r, monkeypatch, sms_jsonl):
    """Class J: a bad output path is found before anything is written; a failure while writing leaves nothing."""
    t = r["t"]
    one_error(run("report", r["report"], "--html", t / "ok.html", "--md", t / "missing" / "x.md"), "does not exist")
    assert not (t / "ok.html").exists()
    import privacy_audit.canaries.planting as plant
    from privacy_audit.errors import InputError

    def full_disk(*_a, **_k):
        raise InputError("cannot write o.jsonl.planting.json: No space left on device")

    monkeypatch.setattr(plant, "write_json", full_disk)
    one_error(run("canaries", "plant", t / "set.json", "--data", sms_jsonl, "--out", t / "o.jsonl"), "No space left")
    assert not (t / "o.jsonl").exists() and not list(t.glob(".o.jsonl*"))


def test_degenerate_sizes_are_refused_at_generate(tmp_path):
    """Class K: a space of one secret, a template too long to score."""
    gen = ["canaries", "generate", "--seed", "0", "--count", "1", "--references", "0", "--out", tmp_path / "x.json"]
    one_error(run(*gen, "--template", "w {secret}", "--space", "words:only"), "single secret")
    started = time.monotonic()
    one_error(run(*gen, "--template", "x" * 1_000_000 + " {secret}", "--space", "digits:2"), "1,000")
    assert time.monotonic() - started < 5
    assert "at most 1,000 characters" in " ".join(run("canaries", "generate", "--help").output.split())
