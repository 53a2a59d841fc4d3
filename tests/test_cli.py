"""The CLI as a user sees it: the whole chain, exit codes, one-line errors, untouched inputs."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from tests.conftest import write_jsonl


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture
def chain(tmp_path, sms_jsonl):
    """canaries generate -> plant -> teach raw, as the README shows them."""
    set_path, planted, prompt = tmp_path / "set.json", tmp_path / "planted.jsonl", tmp_path / "prompt.txt"
    r = run("canaries", "generate", "--template", "The secret code is {secret}", "--space", "digits:3",
            "--count", "3", "--references", "20", "--seed", "1", "--out", set_path)
    assert r.exit_code == 0, r.output
    r = run("canaries", "plant", set_path, "--data", sms_jsonl, "--field", "text", "--out", planted)
    assert r.exit_code == 0, r.output
    r = run("teach", "--pipeline", "raw", "--data", planted, "--field", "text", "--label-field", "label",
            "--examples", "30", "--out", prompt)
    assert r.exit_code == 0, r.output
    return tmp_path


def test_chain_on_mock_model_finds_the_raw_leak(chain):
    secrets = [c["secret"] for c in json.loads((chain / "set.json").read_text())["canaries"]]
    r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
            "--out", chain / "report.json")
    assert r.exit_code == 0, r.output
    assert not any(s in r.output for s in secrets)
    report = json.loads((chain / "report.json").read_text())
    assert report["schema_version"] == 6
    assert set(report["run"]) >= {"pipeline", "model", "seed", "versions"}
    assert report["run"]["pipeline"] == "raw"
    planted = [c for c in report["canaries"] if c["planted"]]
    refs = [c for c in report["canaries"] if not c["planted"]]
    assert len(planted) == 3 and len(refs) == 20
    assert {"id", "planted", "logprob_bits", "rank", "space_size", "exposure_bits"} <= set(planted[0])
    assert all(c["space_size"] == 1000 and c["secret"] is None for c in report["canaries"])
    assert min(c["exposure_bits"] for c in planted) > 6
    assert max(c["exposure_bits"] for c in planted) == pytest.approx(9.97, abs=0.01)
    assert report["summary"]["max_exposure_bits"] == max(c["exposure_bits"] for c in planted)
    assert report["summary"]["mean_exposure_references"] < 4
    assert report["prompt"] is None

    leaked = run("gate", chain / "report.json")  # the chance rule sees the leak with no threshold at all
    assert leaked.exit_code == 1 and "[chance] report: Bonferroni" in leaked.output
    passing = run("gate", chain / "report.json", "--max-exposure", "10", "--alpha", "1e-9")
    assert passing.exit_code == 0 and "gate passed" in passing.output
    failing = run("gate", chain / "report.json", "--max-exposure", "5")
    path = str(chain / "report.json")
    assert failing.exit_code == 1 and failing.output.count(f"FAIL {path} [max_exposure_bits] canary-") == 3
    assert failing.output.splitlines()[-1] == f"gate failed: {path}, 4 of 4 checks failed (chance, max_exposure_bits)"
    verbatim = run("gate", chain / "report.json", "--max-verbatim", "0")
    assert verbatim.exit_code == 1 and "verbatim" in verbatim.output


def test_sampled_mode_and_include_secrets(chain):
    r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
            "--sampled", "--include-secrets", "--out", chain / "r.json")
    assert r.exit_code == 0, r.output
    report = json.loads((chain / "r.json").read_text())
    assert report["run"]["mode"] == "sampled"
    planted = [c for c in report["canaries"] if c["planted"]]
    assert all(c["rank_pool"] == 21 and c["secret"] for c in planted)
    assert report["prompt"]


def test_score_with_a_transformers_folder_agrees_with_the_library(chain, tiny_model_dir, tiny_model):
    r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json",
            "--model", tiny_model_dir, "--out", chain / "tiny.json")
    assert r.exit_code == 0, r.output
    report = json.loads((chain / "tiny.json").read_text())
    assert all(c["rank_pool"] == 1000 for c in report["canaries"])
    assert report["run"]["model"]["backend"] == "hf" and report["run"]["model"]["dtype"] == "float32"


def test_reports_are_deterministic(chain):
    for name in ("a.json", "b.json"):
        run(
            "score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock", "--out",
            chain / name,
        )
    assert (chain / "a.json").read_bytes() == (chain / "b.json").read_bytes()


def test_outputs_with_secrets_are_private(chain):
    for name in ("set.json", "planted.jsonl", "planted.jsonl.planting.json", "prompt.txt", "prompt.txt.teaching.json"):
        assert stat.S_IMODE(os.stat(chain / name).st_mode) == 0o600, name


def test_gate_without_threshold_runs_the_chance_rule(chain):
    run(
        "score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock", "--out",
        chain / "r.json",
    )
    result = run("gate", chain / "r.json")
    assert (
        result.exit_code == 1 and "[chance] report: Bonferroni-adjusted p-value" in result.output
    )  # the raw prompt copies them
    assert "false-alarm probability on a prompt that never saw a canary 0.01" in result.output


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "--debug", "score", "--prompt", str(tmp_path / "x"), "--canaries", str(tmp_path / "y"), "--model", "mock",
            "--out", str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 2


def test_missing_label_field(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "a"}])
    result = run("teach", "--pipeline", "raw", "--data", data, "--label-field", "label", "--out", tmp_path / "p.txt")
    assert result.exit_code == 2 and "no label field" in result.output


def test_instructions_pipeline_on_mock_outputs(tmp_path, sms_jsonl):
    from privacy_audit import MockModel
    from tests.conftest import teach_file

    model = MockModel(outputs=["Classify each SMS as spam or not spam."])
    out = teach_file("instructions", data=sms_jsonl, label_field="label", out=tmp_path / "p.txt", model=model,
                options={"labels": {"ham": "not spam"}})
    assert (tmp_path / "p.txt").read_text() == out.prompt == "Classify each SMS as spam or not spam."
    request = model.history[0][1][0]["content"]
    assert request.startswith("The following examples are privately shared with you")
    assert request.count("Text: ") == 8 and "Class: not spam" in request
    assert request.endswith("Task format with detailed instructions:")


def test_extraction_guesses_in_sampled_mode_equal_exact_ranks(chain):
    for mode, name in (("--exact", "exact.json"), ("--sampled", "sampled.json")):
        r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
                mode, "--out", chain / name)
        assert r.exit_code == 0, r.output
    exact = {c["id"]: c for c in json.loads((chain / "exact.json").read_text())["canaries"]}
    sampled = json.loads((chain / "sampled.json").read_text())
    assert sampled["run"]["extraction"].startswith("best-first search")
    for c in sampled["canaries"]:
        if c["planted"]:
            assert c["guesses"] == exact[c["id"]]["rank"] == exact[c["id"]]["guesses"]
            assert c["greedy_extracted"] == exact[c["id"]]["greedy_extracted"]
    assert sampled["summary"]["min_guesses_planted"] == 1
    assert all(isinstance(c["greedy_extracted"], bool) for c in sampled["canaries"] if c["planted"])


def test_greedy_extraction_recovers_a_repeated_secret():
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt

    cs = generate_canary_set(template="The secret code is {secret}.", space="digits:3", count=2, references=5, seed=0)
    prompt = f"The secret code is {cs.planted[0].secret}.\n" * 3
    result = score_prompt(MockModel(), prompt, cs, ScoringOptions(mode="sampled"))
    by_id = {c.id: c for c in result.canaries}
    assert by_id[cs.planted[0].id].greedy_extracted is True
    assert by_id[cs.planted[1].id].greedy_extracted is False
    assert by_id[cs.planted[0].id].guesses == 1
    assert result.summary.greedy_extracted == 1


def test_no_extraction_and_unknown_model_option(chain):
    unused = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
                 "--chunk-tokens", "8", "--out", chain / "r.json")
    assert unused.exit_code == 2 and "backend 'mock' has no option chunk_tokens" in unused.output  # never dropped
    r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
            "--no-extraction", "--out", chain / "r.json")
    assert r.exit_code == 0, r.output
    report = json.loads((chain / "r.json").read_text())
    assert report["run"]["extraction"] == "not run"
    assert all(c["greedy_extracted"] is None for c in report["canaries"])


def test_report_holds_statistics(chain):
    r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
            "--out", chain / "r.json")
    assert r.exit_code == 0, r.output
    report = json.loads((chain / "r.json").read_text())
    st = report["statistics"]
    low, high = st["mean_exposure_planted_ci"]
    assert low <= report["summary"]["mean_exposure_planted"] <= high
    assert st["extrapolation"]["scale"] > 0 and "extrapolated_exposure_bits" in report["canaries"][0]
    assert st["epsilon"]["epsilon"] >= 0 and st["epsilon"]["design"] == "one_run"
    assert "no independence" in st["epsilon"]["assumptions"] and "betting" in st["interval_method"]
    assert set(report["summary"]["p_values"]) == {
        "planted_vs_references", "protocol_mean_rank", "protocol_rank_zero", "planted_in_prompt", "similarity"}
    assert report["reconstruction"] is None and report["leaks"] is None
    assert "empirical epsilon lower bound" in r.output


def test_reconstruction_separates_seen_from_unseen(tmp_path, sms_jsonl):
    prompt = tmp_path / "p.txt"
    r = run(
        "teach", "--pipeline", "raw", "--data", sms_jsonl, "--label-field", "label", "--examples", "5", "--out", prompt
    )
    assert r.exit_code == 0
    run("canaries", "generate", "--template", "code {secret}", "--space", "digits:3", "--count", "1",
        "--references", "10", "--seed", "0", "--out", tmp_path / "s.json")
    r = run("score", "--prompt", prompt, "--canaries", tmp_path / "s.json", "--model", "mock", "--data", sms_jsonl,
            "--label-field", "label", "--out", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    rc = json.loads((tmp_path / "r.json").read_text())["reconstruction"]
    loss = rc["attacks"][0]
    assert loss["name"] == "loss" and len(loss["member_scores"]) == 5 and len(loss["non_member_scores"]) == 15
    assert loss["auc"] == 1.0  # the raw prompt holds the members verbatim
    assert rc["blind"]["name"] == "blind" and len(rc["blind"]["member_scores"]) == 5
    assert "| membership AUC, blind control" in r.output and "Evidence: sound evidence" in r.output
    everything = run(
        "teach", "--pipeline", "raw", "--data", sms_jsonl, "--examples", "50", "--out", tmp_path / "all.txt"
    )
    assert everything.exit_code == 0
    r = run("score", "--prompt", tmp_path / "all.txt", "--canaries", tmp_path / "s.json", "--model", "mock",
            "--data", sms_jsonl, "--out", tmp_path / "r2.json")
    assert r.exit_code == 2 and "--held-out" in r.output


def test_instructions_leaks_are_measured(tmp_path, sms_jsonl):
    from privacy_audit import MockModel, generate_canary_set
    from tests.conftest import teach_file
    from privacy_audit.chain import build_report

    first = json.loads(sms_jsonl.read_text().splitlines()[0])["text"]
    model = MockModel(outputs=[f"Mark spam.\n\n{first}"])
    out = teach_file("instructions", data=sms_jsonl, label_field="label", out=tmp_path / "p.txt", model=model,
                     seed=0, options={"examples": 20})
    cs = generate_canary_set(template="code {secret}", space="digits:2", count=1, references=10, seed=0)
    report = build_report(out, cs, MockModel())
    assert report.leaks.units == 2 and report.leaks.verbatim_copies == 1 and report.leaks.min_distance == 0.0


def test_comparison_aligns_rows_by_name(chain):
    from privacy_audit import MockModel, load_canary_set
    from privacy_audit.chain import build_report
    from privacy_audit.audit_runs import read_teaching
    from privacy_audit.pipelines import TeachingOutput
    from privacy_audit.reports import render_comparison

    cs = load_canary_set(chain / "set.json")
    raw = build_report(read_teaching(chain / "prompt.txt"), cs, MockModel())
    with_leaks = build_report(
        TeachingOutput(prompt="Mark spam.", pipeline="instructions", options={}, seed=0, model=None,
                       artifacts=({"teacher": 0, "private": "abc", "generated": ["Mark spam."]},)),
        cs, MockModel(),
    )
    table = render_comparison([raw, with_leaks])
    row = next(line for line in table.splitlines() if line.startswith("| generated units copied verbatim"))
    assert row == "| generated units copied verbatim | n/a | 0 of 1 |"


def test_paper_protocol_figures_in_the_report(chain):
    r = run("score", "--prompt", chain / "prompt.txt", "--canaries", chain / "set.json", "--model", "mock",
            "--out", chain / "r.json")
    assert r.exit_code == 0, r.output
    report = json.loads((chain / "r.json").read_text())
    planted = [c for c in report["canaries"] if c["planted"]]
    refs = [c for c in report["canaries"] if not c["planted"]]
    for c in planted:
        assert c["protocol_rank"] == sum(ref["normalised_logprob_bits"] > c["normalised_logprob_bits"] for ref in refs)
    s = report["summary"]
    assert s["protocol_null_mean_rank"] == 10.0
    assert s["protocol_rank_zero_count"] == sum(c["protocol_rank"] == 0 for c in planted)
    assert 0 < s["p_values"]["protocol_mean_rank"]["p"] <= 1 and 0 < s["p_values"]["protocol_rank_zero"]["p"] <= 1
    assert "protocol_mean_rank_p_value" not in s  # each p-value is stored once


def test_several_prompts_are_scored_with_one_model_load(tmp_path, chain):
    """`score --prompt A --prompt B` (or a folder) writes a report per prompt and summary.md, the same reports as
    one prompt at a time; two prompts that would write one report are refused."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.txt").write_text(f"Text: message {i}\nClass: ham\n")
    common = ["--canaries", chain / "set.json", "--model", "mock"]
    out = run("score", "--prompt", folder, *common, "--out", tmp_path / "out")
    assert out.exit_code == 0, out.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.json", "p1.json", "p2.json", "summary.md"]
    assert "| measure | p0 | p1 | p2 |" in (tmp_path / "out" / "summary.md").read_text()
    assert run("score", "--prompt", folder / "p1.txt", *common, "--out", tmp_path / "single.json").exit_code == 0
    assert json.loads((tmp_path / "single.json").read_text()) == json.loads((tmp_path / "out" / "p1.json").read_text())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "p0.txt").write_text("another prompt\n")
    same = run("score", "--prompt", folder / "p0.txt", "--prompt", tmp_path / "other" / "p0.txt", *common, "--out",
               tmp_path / "out2")
    assert same.exit_code == 2 and "same report p0.json" in same.output
