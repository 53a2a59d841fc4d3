"""Config-driven runs (`run`) and the Secret Sharer protocol: overrides, resumability, typed trial files, Ray."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from privacy_audit.config import load_config
from privacy_audit.secret_sharer import run_secret_sharer, secret_sharer_dir

CONFIGS = Path(__file__).resolve().parents[1] / "examples" / "configs"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_run_writes_the_reports_and_applies_the_gate(tmp_path):
    r = run("run", CONFIGS / "audit.toml", "--model", "mock", "--out", tmp_path / "a", "-s", "pipeline.name=raw")
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["run"]["pipeline"] == "raw" and report["gate"] is not None
    assert (tmp_path / "a" / "report.html").is_file() and (tmp_path / "a" / "report.md").is_file()
    assert r.exit_code == (0 if report["gate"]["passed"] else 1), r.output
    ok = run("run", CONFIGS / "audit.toml", "--model", "mock", "--out", tmp_path / "b", "-s", "pipeline.name=zero-shot",
             "-s", "pipeline.options={}",
             "-s", "gate.max_greedy_extracted=3", "-s", "gate.max_exposure_bits=14")
    assert ok.exit_code == 0, ok.output


def test_run_reads_pyproject(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.privacy-audit]\nout = "o"\n[tool.privacy-audit.canaries]\ntemplate = "code {secret}"\nspace = '
        '"digits:2"\n'
        'references = 10\n[tool.privacy-audit.data]\nlimit = 10\n[tool.privacy-audit.model]\nspec = "mock"\n'
    )
    monkeypatch.chdir(tmp_path)
    r = run("run")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "report.json").is_file()


@pytest.mark.parametrize("setting, words", [("-s", "canaries.colour=red"), ("-s", "secret_sharer.executor=spark")])
def test_bad_config_is_one_line(tmp_path, setting, words):
    r = run("run", CONFIGS / "audit.toml", setting, words, "--out", tmp_path)
    assert r.exit_code == 2 and r.output.startswith("error: config") and len(r.output.strip().splitlines()) == 1


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("sms-*.toml")))
def test_every_paper_config_runs_a_trial(config, tmp_path):
    cfg = load_config(CONFIGS / config, overrides=("model.spec=mock", "secret_sharer.trials=1",
                                                   "secret_sharer.candidates=20", f"out={tmp_path}"))
    summary = run_secret_sharer(cfg)
    assert summary.protocol.trials == 1 and 0 <= list(summary.protocol.ranks)[0] < 20
    assert summary.pipeline == config.removeprefix("sms-").removesuffix(".toml")


def quick(tmp_path, **extra):
    sets = {
        "model.spec": "mock", "secret_sharer.trials": 6, "secret_sharer.candidates": 50, "out": str(tmp_path), **extra,
    }
    return load_config(CONFIGS / "quick.toml", overrides=tuple(f"{k}={v}" for k, v in sets.items()))


def test_trials_record_the_data_only_tests_and_the_default_gate(tmp_path):
    """The raw pipeline copies the canary into the prompt: by similarity and by the data-only n-gram score every
    trial ranks it first, and every trial's report fails the default gate; the zero-shot control never sees it and
    fails at most by chance."""
    raw = run_secret_sharer(quick(tmp_path / "raw"))
    assert raw.similarity is not None and list(raw.similarity.ranks) == [0] * 6 and raw.chance_failures == 6
    assert raw.ngram is not None and list(raw.ngram.ranks) == [0] * 6 and raw.data_only_model == "ngram-characters-5"
    assert raw.data_only_chance_failures == 6
    zero = run_secret_sharer(quick(tmp_path / "zero", **{"pipeline.name": "zero-shot", "pipeline.options": "{}"}))
    assert zero.similarity is not None and zero.chance_failures == 0 and zero.protocol.canary_in_prompt == 0
    assert zero.data_only_chance_failures == 0
    table = (secret_sharer_dir(quick(tmp_path / "raw")) / "summary.md").read_text()
    assert "| by score | by ngram-characters-5 | by similarity | null |" in table and "| TPR at 0.1% FPR |" in table
    assert "| trials failing the default gate (alpha = 0.01) | 6 | 6 |  | 0.06 (at most) |" in table
    data_only = run_secret_sharer(quick(tmp_path / "ngram", **{"model.spec": "ngram"}))
    assert data_only.ngram is None and list(data_only.protocol.ranks) == [0] * 6  # the scorer is the n-gram itself
    # the same trials as membership tests: the copied canaries stand out to every attack the mock can make, and the
    # blind control, which reads only the candidates' texts (random secrets), cannot tell them apart
    rc = raw.membership
    assert rc is not None and [a.name for a in rc.attacks] == ["loss", "calibrated", "zlib", "min_k_plus_plus"]
    assert all(len(a.member_scores) == 6 and len(a.non_member_scores) == 6 * 49 for a in rc.attacks)
    assert next(a for a in rc.attacks if a.name == "loss").auc == 1.0 and rc.blind is not None
    assert rc.blind.auc_ci is not None and rc.blind.auc_ci[0] <= 0.5 <= rc.blind.auc_ci[1]
    assert "Membership attacks on the same trials (6 canaries against 294 comparisons, pooled)" in table
    assert data_only.membership is not None and [n.name for n in data_only.membership.not_run] == ["min_k_plus_plus"]


def test_secret_sharer_is_repeatable_and_resumes(tmp_path):
    first = run_secret_sharer(quick(tmp_path / "a"))
    second = run_secret_sharer(quick(tmp_path / "b"))
    assert list(first.protocol.ranks) == list(second.protocol.ranks) and first.protocol.trials == 6
    assert first.protocol.null_mean_rank == 24.5 and first.protocol.rank_zero_count == sum(
        r == 0 for r in list(first.protocol.ranks)
    )
    folder = secret_sharer_dir(quick(tmp_path / "a"))
    stamps = {p.name: p.stat().st_mtime_ns for p in (folder / "trials").iterdir()}
    messages: list[str] = []
    again = run_secret_sharer(quick(tmp_path / "a"), say=messages.append)
    assert list(again.protocol.ranks) == list(first.protocol.ranks) and "6 of 6 trials already done" in messages[0]
    assert {p.name: p.stat().st_mtime_ns for p in (folder / "trials").iterdir()} == stamps
    changed = quick(tmp_path / "a", **{"secret_sharer.seed": 1})
    assert secret_sharer_dir(changed) != folder


def test_more_trials_extend_the_same_run(tmp_path):
    first = run_secret_sharer(quick(tmp_path, **{"secret_sharer.trials": 3}))
    messages: list[str] = []
    more = run_secret_sharer(quick(tmp_path, **{"secret_sharer.trials": 6}), say=messages.append)
    assert "3 of 6 trials already done" in messages[0] and list(more.protocol.ranks)[:3] == list(first.protocol.ranks)
    assert list(more.protocol.ranks) == list(run_secret_sharer(quick(tmp_path / "fresh")).protocol.ranks)
    fewer = run_secret_sharer(quick(tmp_path, **{"secret_sharer.trials": 2}))
    assert fewer.protocol.trials == 2 and list(fewer.protocol.ranks) == list(first.protocol.ranks)[:2]


def test_killed_run_restarts_without_redoing_trials(tmp_path):
    cmd = [sys.executable, "-m", "privacy_audit", "secret-sharer", str(CONFIGS / "quick.toml"), "--model", "mock",
           "--out", str(tmp_path), "--trials", "400", "-s", "secret_sharer.candidates=100"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    trials = None
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("secret-sharer-*/trials/trial-*.json"))
        if len(found) >= 5:
            trials = found[0].parent
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert trials is not None, "no trial finished in time"
    before = {p.name: p.stat().st_mtime_ns for p in trials.glob("trial-*.json")}
    assert 5 <= len(before) < 400
    (trials / ".trial-00399.json.x1y2.tmp").write_text("{half")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} of 400 trials already done" in done.stderr
    after = {p.name: p.stat().st_mtime_ns for p in trials.iterdir()}
    assert len(after) == 400 and all(name.startswith("trial-") for name in after)
    assert all(after[name] == stamp for name, stamp in before.items())


@pytest.mark.slow
def test_ray_executor_matches_local_on_a_two_worker_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    local = run_secret_sharer(quick(tmp_path / "local"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_secret_sharer(quick(tmp_path / "ray", **{"secret_sharer.executor": "ray"}))
    finally:
        ray.shutdown()
    assert list(remote.protocol.ranks) == list(local.protocol.ranks)
    a = sorted((tmp_path / "local").glob("secret-sharer-*/trials/*.json"))
    b = sorted((tmp_path / "ray").glob("secret-sharer-*/trials/*.json"))
    assert [x.read_bytes() for x in a] == [x.read_bytes() for x in b]
