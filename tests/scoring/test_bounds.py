"""Bounded exposure: certified intervals contain the exact rank on spaces small enough to score whole, for
several tokenizations, prompts and seeds; sampled intervals hold their level; large presets need no flag."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt
from privacy_audit.canaries.presets import load_preset
from privacy_audit.cli import main
from privacy_audit.stats.bounds import certified_ranks, clopper_pearson, sampled_rank_bounds
from privacy_audit.scoring.search import align

SPACES = [
    ("digits:3", "The code is {secret}."), ("hex:3", "key={secret}"),
    ("a=digits:2;b=digits:2", "Call ({a}) {b}-00 now"),
]


def test_certified_ranks_count_found_and_frontier_mass():
    # found: 3 secrets above, one tied; frontier: a node of 10 secrets with mass 2^-1 (at most 2 of them
    # at p >= 2^-2) and one of 4 secrets below everything that could matter
    lower, upper, _ = certified_ranks(
        logprobs=np.array([-2.0]), found=np.array([-0.5, -1.0, -1.5, -2.0]), frontier=np.array([-1.0, -30.0]),
        frontier_sizes=np.array([10.0, 4.0]), dropped=np.zeros(1), space_size=100, found_self=np.array([True]),
    )
    assert lower == [4] and upper == [4 + 2]
    lower, upper, passed = certified_ranks(
        logprobs=np.array([-2.0, -10.0]), found=np.zeros(0), frontier=np.array([0.0]), frontier_sizes=np.array([100.0]),
        dropped=np.zeros(2), space_size=100, found_self=np.array([False, False]),
    )
    # total mass 1: at most 4 secrets of p >= 1/4, the canary (not found yet) one of them; the whole space at 2^-10
    assert lower == [1, 1] and upper == [4, 100] and passed == [False, False]


@pytest.mark.parametrize("k, n", [(0, 20), (3, 20), (20, 20), (7, 50)])
def test_clopper_pearson_equals_scipys_exact_interval(k, n):
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert clopper_pearson(k, n, 0.95) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_sampled_rank_intervals_cover_at_their_level():
    """Uniform references drawn without replacement from a population with a fixed canary: the interval
    holds the true rank at least 95% of the time (2,000 seeded draws; binomial MC error about 0.5%)."""
    rng = np.random.default_rng(0)
    population = 5_000
    scores = rng.normal(size=population)
    hits = 0
    trials = 2_000
    for _ in range(trials):
        canary = rng.normal()
        truth = 1 + int(np.sum(scores >= canary))
        refs = scores[rng.choice(population, 20, replace=False)]
        above = int(np.sum(refs >= canary))
        lo, hi = sampled_rank_bounds(above=above, sample=20, population=population, known_above=0,
                                     space_size=population + 1, confidence=0.95)
        hits += lo <= truth <= hi
        # its width is the exact binomial interval's, scaled to the population (computed here by scipy), no wider
        exact = stats.binomtest(above, 20).proportion_ci(confidence_level=0.95, method="exact")
        assert lo == 1 + max(above, math.floor(exact.low * population))
        assert hi == max(lo, 1 + min(population - (20 - above), math.ceil(exact.high * population)))
    assert hits / trials >= 0.95 - 3 * math.sqrt(0.05 * 0.95 / trials)


def models():
    from tests.models.test_canonical import byte_level_model, llama_style_model

    return {
        "mock": MockModel(order=8, alpha=1e-4), "byte-level": byte_level_model(), "llama-style": llama_style_model(),
    }


@pytest.fixture(scope="module")
def families():
    return models()


@pytest.mark.parametrize("family", ["mock", "byte-level", "llama-style"])
@pytest.mark.parametrize("space, template", SPACES)
@pytest.mark.parametrize("seed", [0, 1])
def test_bounded_intervals_contain_the_exact_rank(families, family, space, template, seed):
    lm = families[family]
    cs = generate_canary_set(template=template, space=space, count=3, references=0, seed=seed)
    prompts = [f"note: {cs.planted[0].text}\nagain {cs.planted[0].text}\n", "Nothing private here.\n"]
    for prompt in prompts:
        exact = score_prompt(lm, prompt, cs, ScoringOptions(mode="exact", extraction=False))
        for budget in (30, 3_000 if family == "mock" else 400):
            bounded = score_prompt(
                lm, prompt, cs, ScoringOptions(mode="bounded", search_budget=budget, extraction=False)
            )
            for e, b in zip(exact.canaries, bounded.canaries):
                assert b.exposure_method == "certified" and b.rank_lower <= e.rank <= b.rank_upper, (
                    prompt, budget, e.id,
                )
                assert b.exposure_bits_lower - 1e-9 <= e.exposure_bits <= b.exposure_bits_upper + 1e-9
                assert b.rank == b.rank_upper and b.p_value >= e.p_value  # the conservative end
        assert exact.canaries[0].rank_lower == exact.canaries[0].rank_upper == exact.canaries[0].rank


def test_a_copied_canary_is_certified_exactly(families):
    lm = families["mock"]
    for space, template in SPACES:
        cs = generate_canary_set(template=template, space=space, count=2, references=0, seed=3)
        prompt = f"{cs.planted[0].text}\n{cs.planted[0].text}\n"
        exact = score_prompt(lm, prompt, cs, ScoringOptions(mode="exact", extraction=False)).canaries[0]
        bounded = score_prompt(lm, prompt, cs, ScoringOptions(mode="bounded", search_budget=3_000)).canaries[0]
        assert bounded.rank_lower == bounded.rank_upper == exact.rank == 1 and bounded.guesses == 1


def test_search_aligns_product_spaces_with_text_between_and_after(families):
    cs = generate_canary_set(
        template="Call ({a}) {b}-00 now", space="a=digits:2;b=digits:2", count=1, references=0, seed=0
    )
    alignment = align(families["mock"].open_context("x\n"), cs)
    assert alignment is not None and sum(1 for a in alignment.alphabets if a) == 4
    assert alignment.secret([0] * len(alignment.steps)) == "00|00"


@pytest.mark.parametrize("preset", ["phone", "card", "api-key", "email"])
def test_presets_get_an_interval_without_a_flag(preset):
    p = load_preset(preset)
    cs = generate_canary_set(template=p.template, space=p.space, count=2, references=20, seed=1, derived=p.derived)
    lm = MockModel(order=12, alpha=1e-6)
    result = score_prompt(lm, f"Contact: {cs.planted[0].text}\n" * 3, cs, ScoringOptions(search_budget=1_000))
    assert result.mode == "bounded" and cs.secret_space.size > 10**9
    copied, other = result.canaries[0], result.canaries[1]
    assert copied.exposure_method == "certified" and copied.rank_lower == copied.rank_upper == 1
    assert (
        other.exposure_method in ("certified", "sampled")
        and other.rank_lower <= other.rank_upper <= cs.secret_space.size
    )
    assert result.statistics.sampled_rank_lower_by_references_above is not None


def test_score_on_a_phone_number_space_needs_no_flag_and_the_gate_says_which_end(tmp_path):
    run = CliRunner().invoke
    assert run(main, ["canaries", "generate", "--preset", "phone", "--count", "2", "--references", "20", "--seed", "4",
                      "--out", str(tmp_path / "set.json")]).exit_code == 0
    cs = json.loads((tmp_path / "set.json").read_text())
    planted = next(c for c in cs["canaries"] if c["planted"])
    (tmp_path / "prompt.txt").write_text(f"Contact: {planted['text']}\n" * 3)
    r = run(main, ["score", "--prompt", str(tmp_path / "prompt.txt"), "--canaries", str(tmp_path / "set.json"),
                   "--out", str(tmp_path / "r.json"), "--model", "mock"])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["run"]["mode"] == "bounded" and "certified" in r.output
    first = next(c for c in report["canaries"] if c["id"] == planted["id"])
    assert first["exposure_method"] in ("certified", "sampled") and first["rank_lower"] >= 1
    g = run(main, ["gate", str(tmp_path / "r.json"), "--max-exposure", "20"])
    assert "upper end of the" in g.output and g.exit_code in (0, 1)


def test_gate_false_alarm_on_the_conservative_end_matches_simulation():
    """Clean prompts (planted and references exchangeable) in a 10^6 space, sampled intervals: the rule
    'upper-end exposure > 12 bits' fails at the rate the gate states (here exactly P(some planted canary
    above every reference) = 5/25)."""
    from types import SimpleNamespace

    from privacy_audit.gate.rules import _exposure_false_alarm
    from privacy_audit.scoring.bounded import intervals

    cs = generate_canary_set(template="code {secret}", space="digits:6", count=5, references=20, seed=0)
    is_planted = np.array([c.planted for c in cs.canaries])
    rng = np.random.default_rng(5)
    reps, failed, table = 2_000, 0, None
    for _ in range(reps):
        spans, table = intervals(cs, rng.normal(size=25), is_planted, exact_ranks=None, search=None)
        failed += any(s.exposure_upper > 12 for s, p in zip(spans, is_planted) if p)
    report = SimpleNamespace(
        canaries=[SimpleNamespace(planted=bool(p), space_size=10**6) for p in is_planted],
        run=SimpleNamespace(mode="sampled"), statistics=SimpleNamespace(sampled_rank_lower_by_references_above=table),
    )
    stated = _exposure_false_alarm(report, 12.0)
    assert stated == pytest.approx(0.2)
    assert abs(failed / reps - stated) <= 3 * math.sqrt(stated * (1 - stated) / reps)


def test_a_capped_frontier_keeps_the_bounds_valid(families):
    """Nodes dropped to cap memory move their mass into the bound: intervals stay valid, only wider."""
    from privacy_audit.stats.bounds import certified_ranks
    from privacy_audit.scoring.search import best_first

    lm = families["mock"]
    cs = generate_canary_set(template="The code is {secret}.", space="digits:3", count=4, references=0, seed=7)
    context = lm.open_context(f"note: {cs.planted[0].text}\n")
    exact = score_prompt(
        lm, f"note: {cs.planted[0].text}", cs, ScoringOptions(mode="exact", extraction=False, separator="\n")
    )
    lp = np.array([c.logprob_bits for c in exact.canaries])
    for cap in (8, 40, 10**6):
        result = best_first(
            context.search, align(context, cs), stop_below=float(lp.min()), max_token_steps=400, bound_for=lp,
            max_frontier=cap,
        )
        assert len(result.frontier_logprobs) <= cap + 10 * 256
        lower, upper, _ = certified_ranks(
            logprobs=lp, found=np.array(result.logprobs), frontier=result.frontier_logprobs,
            frontier_sizes=result.frontier_sizes, dropped=result.dropped, space_size=1000,
            found_self=np.array([c.secret in result.secrets for c in cs.canaries]),
        )
        assert all(lo <= c.rank <= hi for lo, hi, c in zip(lower, upper, exact.canaries)), cap
        if cap == 8:
            assert result.dropped.sum() > 0


def test_bounded_intervals_contain_the_exact_rank_on_a_10_5_space(families):
    lm = families["mock"]
    cs = generate_canary_set(
        template="Call ({a}) {b} now", space="a=digits:2;b=digits:3", count=3, references=20, seed=4
    )
    for prompt in (f"{cs.planted[0].text}\n{cs.planted[1].text}\n", "No numbers here.\n"):
        exact = {
            c.id: c.rank for c in score_prompt(lm, prompt, cs, ScoringOptions(mode="exact", extraction=False)).canaries
        }
        for mode in ("bounded", "sampled"):
            scored = score_prompt(lm, prompt, cs, ScoringOptions(mode=mode)).canaries
            held = [c.rank_lower <= exact[c.id] <= c.rank_upper for c in scored]
            assert all(h for h, c in zip(held, scored) if c.exposure_method == "certified"), mode
            assert sum(held) >= 0.9 * len(held), mode  # sampled intervals hold at 95% each


def test_dropped_nodes_are_bounded_block_by_block_as_all_at_once(monkeypatch):
    """Taking the dropped nodes in blocks (to bound memory) gives the counts of the whole matrix."""
    from privacy_audit.stats import bounds

    rng = np.random.default_rng(5)
    canaries = rng.uniform(-40, -5, size=7)
    nodes, sizes = rng.uniform(-45, 0, size=1001), rng.integers(1, 10**6, size=1001).astype(float)
    within = np.floor(np.exp2(nodes[None, :] - canaries[:, None] + bounds.TIE_TOLERANCE_BITS))
    whole = np.minimum(sizes[None, :], within)
    monkeypatch.setattr(bounds, "DROP_BLOCK", 64)
    assert np.array_equal(bounds.dropped_bound(canaries, nodes, sizes), whole.sum(axis=1))
