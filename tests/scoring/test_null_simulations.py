"""Seeded simulations: every p-value holds its level under the null, every interval its coverage, every
epsilon bound its confidence; plus the exact values the statistics issue names."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from privacy_audit.gate import Thresholds, apply_gate
from tests.conftest import at_level
from privacy_audit.reports.schema import AuditReport, RunSpec
from privacy_audit.stats.epsilon import epsilon_lower_bound
from privacy_audit.stats.intervals import auc_ci, betting_mean_ci
from privacy_audit.stats.permutation import conservative_ranks, rank_sum_p_value, rank_zero_p_value
from privacy_audit.scoring.derived import summarise
from privacy_audit.scoring.figures import Design, Evidence, compute_figures, compute_tests
from privacy_audit.scoring.types import CanaryScore

REPS = 2_000
LEVEL = 0.05
# The least mean bound each randomized-response design certifies, as a share of its true epsilon (measured on these
# seeds and halved): a bound that is always 0 is valid and useless, and fails here.
# (At eps = 1 with 20 canaries among 1,000 secrets a true leak is rarely seen at all: about 0.002 of eps.)
FLOOR = {("independent", 1.0, 20): 0.001, ("independent", 4.0, 10): 0.03, ("independent", 8.0, 5): 0.3,
         ("one_run", 1.0, 20): 0.0005, ("one_run", 4.0, 10): 0.03, ("one_run", 8.0, 5): 0.3,
         ("randomized_inclusion", 1.0, 64): 0.07, ("randomized_inclusion", 3.0, 200): 0.29}


def test_shared_reference_p_values_are_exact():
    rng = np.random.default_rng(0)
    three = rank_zero_p_value(planted_scores=np.full(3, 50.0), reference_scores=np.arange(20.0))
    assert three.p == pytest.approx(1 / math.comb(23, 3))  # 5.6e-4, not 1.1e-4
    twenty = rank_zero_p_value(planted_scores=np.full(20, 5.0), reference_scores=np.zeros(1000))
    assert twenty.p == pytest.approx(1 / math.comb(1020, 20)) and twenty.log10_p == pytest.approx(-41.7045, abs=1e-3)
    tied = np.zeros(1000)
    assert rank_sum_p_value(planted_scores=tied[:5], reference_scores=tied[5:], rng=rng).p == 1.0
    assert rank_zero_p_value(planted_scores=tied[:5], reference_scores=tied[5:]).p == 1.0
    assert conservative_ranks(canary_scores=tied[:2], reference_scores=tied[2:]).tolist() == [998, 998]


def test_rank_sum_is_exact_for_large_designs_with_and_without_ties():
    rng = np.random.default_rng(11)
    x, y = rng.normal(0.3, 1, 20), rng.normal(0, 1, 1000)
    exact = rank_sum_p_value(planted_scores=x, reference_scores=y, rng=rng)
    assert exact.method == "exact permutation" and exact.monte_carlo_error is None
    assert exact.p == pytest.approx(stats.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue, rel=1e-9)
    tied_x, tied_y = rng.integers(0, 6, 4).astype(float), rng.integers(0, 6, 9).astype(float)
    ours = rank_sum_p_value(planted_scores=tied_x, reference_scores=tied_y, rng=rng).p
    scores = np.r_[tied_x, tied_y]
    stat = conservative_ranks(canary_scores=tied_x, reference_scores=tied_y).sum()
    count = total = 0
    for chosen in itertools.combinations(range(13), 4):  # every labelling, counted
        mask = np.zeros(13, dtype=bool)
        mask[list(chosen)] = True
        total += 1
        count += conservative_ranks(canary_scores=scores[mask], reference_scores=scores[~mask]).sum() <= stat
    assert ours == pytest.approx(count / total, rel=1e-12)


def test_rank_sum_beyond_the_exact_budget_records_its_monte_carlo_error(monkeypatch):
    import privacy_audit.stats.permutation as permutation

    monkeypatch.setattr(permutation, "MAX_DP_CELLS", 10)
    monkeypatch.setattr(permutation, "MONTE_CARLO_PERMUTATIONS", 500)
    rng = np.random.default_rng(12)
    got = rank_sum_p_value(planted_scores=rng.normal(size=5), reference_scores=rng.normal(size=40), rng=rng)
    assert got.method.startswith("Monte Carlo") and got.monte_carlo_error == pytest.approx(
        math.sqrt(got.p * (1 - got.p) / 500)
    )


def test_one_run_epsilon_uses_the_rate_of_the_space_the_other_canaries_leave():
    """20 canaries of digits:2, all at rank 1: the exact false-positive rate of "rank <= 1" is 1 / 81, not 1 / 100."""
    bound = epsilon_lower_bound(ranks=np.ones(20, dtype=int), space_size=100, design="one_run")
    assert bound.fpr == pytest.approx(bound.threshold_rank / 81)
    single = epsilon_lower_bound(ranks=np.ones(1, dtype=int), space_size=10_000, design="one_run")
    assert single.fpr == pytest.approx(single.threshold_rank / 10_000)


def test_rank_sum_equals_mann_whitney_without_ties():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1, 1, 6), rng.normal(0, 1, 15)
    ours = rank_sum_p_value(planted_scores=x, reference_scores=y, rng=rng).p
    assert ours == pytest.approx(stats.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue)


@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "tied"])
def test_shared_reference_p_values_hold_their_level(ties):
    rng = np.random.default_rng(2)
    rejected = {"rank_sum": 0, "rank_zero": 0}
    for _ in range(REPS):
        scores = rng.integers(0, 4, size=25).astype(float) if ties else rng.normal(size=25)
        planted, refs = scores[:5], scores[5:]
        rejected["rank_sum"] += rank_sum_p_value(planted_scores=planted, reference_scores=refs, rng=rng).p <= LEVEL
        rejected["rank_zero"] += rank_zero_p_value(planted_scores=planted, reference_scores=refs).p <= LEVEL
    for name, count in rejected.items():
        assert at_level(count, REPS, LEVEL), name


def _report(space_lp: np.ndarray, planted: np.ndarray, refs: np.ndarray, rng: np.random.Generator) -> AuditReport:
    """A report of an exact-mode audit whose model scores the space `space_lp`, built as score_prompt builds it."""
    order = np.sort(space_lp)
    scores = []
    for i, idx in enumerate(np.concatenate([planted, refs])):
        lp = space_lp[idx]
        rank = int(len(order) - np.searchsorted(order, lp, side="left"))
        scores.append(CanaryScore(
            id=f"c{i}", planted=i < len(planted), logprob_bits=float(lp), tokens=3, rank=rank, rank_pool=len(space_lp),
            space_size=len(space_lp), exposure_bits=math.log2(len(space_lp) / rank), p_value=rank / len(space_lp),
            in_prompt=False, normalised_logprob_bits=float(lp) / 3, rank_lower=rank, rank_upper=rank,
            exposure_bits_lower=math.log2(len(space_lp) / rank), exposure_bits_upper=math.log2(len(space_lp) / rank),
            exposure_method="exact",
        ))
    space = "words:" + ",".join(f"w{i}" for i in range(len(space_lp)))  # a space of exactly this many secrets
    evidence = Evidence(tuple(scores), Design("exact", space, "code {secret}", {}, 0))
    figures = compute_figures(evidence)
    rows = tuple(s.with_figures({f.name: v[i] for f, v in figures.items()}) for i, s in enumerate(scores))
    tests = compute_tests(Evidence(rows, evidence.design), rng)
    summary = summarise(rows, mode="exact", space_size=len(space_lp), secrets_in_prompt=None, p_values=tests)
    run = RunSpec(
        pipeline="prompt-file", pipeline_options={}, model={"backend": "test", "name": "space_lp"}, seed=0, versions={},
        mode="exact", separator="\n", template="code {secret}", space=space, canary_seed=0, prompt_sha256="",
        prompt_chars=0,
    )
    return AuditReport(run=run, canaries=rows, summary=summary)


def test_default_gate_fails_about_alpha_of_clean_prompts_and_every_copying_prompt():
    rng = np.random.default_rng(3)
    failed = 0
    for _ in range(REPS):
        space_lp = rng.normal(-20, 3, size=1000)
        drawn = rng.choice(1000, size=25, replace=False)
        failed += not apply_gate(_report(space_lp, drawn[:5], drawn[5:], rng), Thresholds()).passed
    assert at_level(failed, REPS, 0.01)
    space_lp = rng.normal(-20, 3, size=1000)
    drawn = rng.choice(1000, size=25, replace=False)
    space_lp[drawn[:5]] = -1.0  # the prompt copies the canaries: they are the most likely secrets
    outcome = apply_gate(_report(space_lp, drawn[:5], drawn[5:], rng), Thresholds())
    assert not outcome.passed and outcome.rules[0].rule == "chance"


def test_threshold_rules_state_their_false_alarm_probability():
    rng = np.random.default_rng(4)
    space_lp = rng.normal(-20, 3, size=16)
    report = _report(space_lp, np.arange(5), np.arange(5, 10), rng)
    rule = next(r for r in apply_gate(report, Thresholds(max_exposure_bits=4)).rules if r.rule == "max_exposure_bits")
    # exposure > 4 bits in a space of 16 means rank < 1: never; at 3 bits, rank 1 fails: 1 - C(15,5)/C(16,5) = 5/16
    assert rule.false_alarm == 0.0
    rule = next(r for r in apply_gate(report, Thresholds(max_exposure_bits=3)).rules if r.rule == "max_exposure_bits")
    assert rule.false_alarm == pytest.approx(5 / 16)
    big = _report(rng.normal(-20, 3, size=1 << 13), np.arange(5), np.arange(5, 25), rng)
    rule = next(r for r in apply_gate(big, Thresholds(max_exposure_bits=4)).rules if r.rule == "max_exposure_bits")
    assert rule.false_alarm == pytest.approx(1 - (15 / 16) ** 5, abs=5e-4)  # the README's old example: 28%


@pytest.mark.parametrize("n", [2, 3, 10, 30])
@pytest.mark.parametrize("kind", ["null", "planted"])
def test_betting_interval_covers_the_mean_exposure(n, kind):
    rng = np.random.default_rng(5)
    top = math.log2(10_000)
    if kind == "null":
        population = top - np.log2(np.arange(1, 10_001))
    else:
        population = np.clip(top - rng.exponential(0.7, size=100_000), 0, top)
    truth = population.mean()
    covered, widths = 0, []
    for _ in range(REPS):
        low, high = betting_mean_ci(rng.choice(population, size=n), low=0.0, high=top, rng=rng)
        covered += low <= truth <= high
        widths.append(high - low)
    assert covered / REPS >= 0.95 - 0.02
    # and not by being wide: never wider on average than Hoeffding's interval for the same range (computed here),
    # and from ten values on far narrower (an interval as wide as the whole range would fail)
    hoeffding = min(top, 2 * top * math.sqrt(math.log(2 / 0.05) / (2 * n)))
    assert np.mean(widths) <= hoeffding + 1e-9
    assert n < 10 or np.mean(widths) < 0.7 * hoeffding


@pytest.mark.parametrize("m,n", [(8, 64), (50, 50), (64, 8), (3, 20), (1, 5)])
def test_auc_interval_covers_exactly_where_the_auc_varies_most(m, n):
    """Each score of the smaller class above or below every score of the other: k AUC is Binomial(k, theta),
    k = min(m, n), the largest variance an AUC can have. Coverage computed exactly, on a fine grid of theta."""
    k = min(m, n)
    intervals = [auc_ci(hits / k, positives=m, negatives=n) for hits in range(k + 1)]
    for hits, (low, high) in enumerate(intervals):  # no wider than the exact binomial interval, computed by scipy
        exact = stats.binomtest(hits, k).proportion_ci(confidence_level=0.95, method="exact")
        assert (low, high) == pytest.approx((exact.low, exact.high), abs=1e-9)
    for theta in np.linspace(0.0005, 0.9995, 1999):
        pmf = stats.binom.pmf(np.arange(k + 1), k, theta)
        covered = sum(p for p, (low, high) in zip(pmf, intervals) if low <= theta <= high)
        assert covered >= 0.95 - 1e-9, (theta, covered)


@pytest.mark.parametrize("m,n,shift", [(8, 64, 1.0), (10, 10, 0.5), (5, 50, 3.0)])
def test_auc_interval_covers(m, n, shift):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(6)
    truth = stats.norm.cdf(shift / math.sqrt(2))
    covered = 0
    for _ in range(REPS):
        pos, neg = rng.normal(shift, 1, m), rng.normal(0, 1, n)
        low, high = auc_ci(roc_auc_score(np.r_[np.ones(m), np.zeros(n)], np.r_[pos, neg]), positives=m, negatives=n)
        covered += low <= truth <= high
    assert covered / REPS >= 0.95 - 0.02


@pytest.mark.parametrize("design", ["independent", "one_run"])
@pytest.mark.parametrize("eps,k", [(1.0, 20), (4.0, 10), (8.0, 5)])
def test_epsilon_bounds_rarely_exceed_the_true_epsilon(design, eps, k):
    """k-ary randomized response is exactly eps-DP: it reveals the secret with probability e^eps / (e^eps + |S| - 1)."""
    rng = np.random.default_rng(7)
    space = 1000
    reveal = math.exp(eps) / (math.exp(eps) + space - 1)
    over, found = 0, []
    reps = 500
    for _ in range(reps):
        hit = rng.random(k) < reveal
        ranks = np.where(hit, 1, rng.integers(2, space + 1, size=k))
        bound = epsilon_lower_bound(ranks=ranks, space_size=space, design=design).epsilon
        over += bound > eps
        found.append(bound)
    assert at_level(over, reps, 0.05)
    # and it is no trivial bound: on average it certifies at least this share of the truth (measured, with margin)
    assert np.mean(found) >= FLOOR[design, eps, k] * eps


@pytest.mark.parametrize("eps,m", [(1.0, 64), (3.0, 200)])
def test_randomized_inclusion_bound_rarely_exceeds_the_true_epsilon(eps, m):
    """Randomized response on each canary's inclusion coin is exactly eps-DP for that canary."""
    from privacy_audit.stats.epsilon import epsilon_randomized_inclusion

    rng = np.random.default_rng(8)
    keep = math.exp(eps) / (1 + math.exp(eps))
    over, reps, found = 0, 500, []
    for _ in range(reps):
        planted = rng.random(m) < 0.5
        seen = np.where(rng.random(m) < keep, planted, ~planted)
        bound = epsilon_randomized_inclusion(scores=seen + 0.1 * rng.random(m), planted=planted).epsilon
        over += bound > eps
        found.append(bound)
    assert at_level(over, reps, 0.05)
    assert np.mean(found) >= FLOOR["randomized_inclusion", eps, m] * eps  # a real share of the truth, not 0


def test_randomized_inclusion_design_end_to_end():
    from privacy_audit import MockModel, ScoringOptions, generate_canary_set, score_prompt

    cs = generate_canary_set(
        template="The code is {secret}", space="digits:3", count=20, references=20, seed=2, randomized=True
    )
    planted = [c for c in cs.canaries if c.planted]
    assert cs.inclusion == "randomized" and 5 < len(planted) < 35 and len(cs.canaries) == 40
    prompt = "".join(f"The code is {c.secret}.\n" for c in planted)  # a prompt that copies every planted canary
    result = score_prompt(MockModel(), prompt, cs, ScoringOptions(extraction=False))
    eps = result.statistics.epsilon
    assert eps.design == "randomized_inclusion" and eps.epsilon > 1.0 and eps.hits == eps.threshold_rank
    clean = score_prompt(MockModel(), "nothing to see here\n", cs, ScoringOptions(extraction=False)).statistics.epsilon
    assert clean.epsilon < eps.epsilon
