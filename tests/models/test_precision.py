"""A lower precision (bfloat16, float16) is measured against float32 on every scoring; beyond its tolerance the gate
fails closed. On CUDA where present: the engine and batched generation give the CPU's numbers and texts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit import ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.cli import main
from privacy_audit.models import load_model

torch = pytest.importorskip("torch", reason="the transformers backend needs torch")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_a_bfloat16_scorer_is_checked_against_float32(tiny_model_dir):
    cs = generate_canary_set(template="The code is {secret}", space="digits:2", count=2, references=5, seed=1)
    prompt = f"Text: hi there\nThe code is {cs.planted[0].secret}.\n"
    model = load_model(str(tiny_model_dir), dtype="bfloat16")
    assert model.info().dtype == "bfloat16" and model.policy.precision.reference.info().dtype == "float32"
    result = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    (check,) = result.checks
    exact = score_prompt(load_model(str(tiny_model_dir)), prompt, cs, ScoringOptions(mode="exact", extraction=False))
    expected = max(abs(a.logprob_bits - b.logprob_bits) for a, b in zip(result.canaries, exact.canaries))
    assert check.check == "precision" and check.compared == 7 and check.passed
    assert check.max_difference_bits == pytest.approx(expected, abs=1e-6) and check.max_difference_bits > 0
    assert not score_prompt(load_model(str(tiny_model_dir)), prompt, cs, ScoringOptions(mode="exact")).checks


def test_beyond_its_tolerance_the_gate_fails_closed(tiny_model_dir, tmp_path):
    runner = CliRunner()
    runner.invoke(main, ["canaries", "generate", "--template", "code {secret}", "--space", "digits:2", "--count", "1",
                         "--references", "4", "--seed", "0", "--out", str(tmp_path / "s.json")])
    (tmp_path / "p.txt").write_text("a prompt\n")
    scored = runner.invoke(main, ["score", "--prompt", str(tmp_path / "p.txt"), "--canaries", str(tmp_path / "s.json"),
                                  "--model", str(tiny_model_dir), "-m", "dtype=bfloat16", "-m", "precision_tolerance=0",
                                  "--out", str(tmp_path / "r.json")])
    assert scored.exit_code == 0, scored.output
    (check,) = json.loads((tmp_path / "r.json").read_text())["run"]["score_checks"]
    assert not check["passed"] and "lower precision is off" in check["note"]
    gated = runner.invoke(main, ["gate", str(tmp_path / "r.json"), "--alpha", "0.9"])
    assert (
        gated.exit_code == 1 and "] report: largest difference of scores computed twice (precision" in gated.output
    )


@needs_cuda
def test_the_engine_on_cuda_gives_the_cpus_scores(tiny_model_dir):
    cs = generate_canary_set(template="The code is {secret}", space="digits:3", count=2, references=10, seed=2)
    prompt = "Text: a message\nThe code is 123.\n"
    cpu = score_prompt(load_model(str(tiny_model_dir), device="cpu"), prompt, cs, ScoringOptions(mode="exact"))
    gpu = score_prompt(load_model(str(tiny_model_dir), device="cuda"), prompt, cs, ScoringOptions(mode="exact"))
    np.testing.assert_allclose(
        [c.logprob_bits for c in gpu.canaries], [c.logprob_bits for c in cpu.canaries], atol=1e-3
    )
    assert [c.rank for c in gpu.canaries] == [c.rank for c in cpu.canaries]


@needs_cuda
def test_batched_generation_on_cuda_writes_the_cpus_greedy_text(tiny_model_dir):
    prompts = ["Text: hello", "Text: a longer message here", "Class:"]
    cpu = load_model(str(tiny_model_dir), device="cpu").generate(prompts, max_new_tokens=12)
    gpu = load_model(str(tiny_model_dir), device="cuda").generate(prompts, max_new_tokens=12)
    assert cpu == gpu
