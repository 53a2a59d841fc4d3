"""Known values (TF Privacy's exposure vectors), exact p-values against simulation, epsilon bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from privacy_audit.errors import InputError
from tests.conftest import at_level
from privacy_audit.stats.epsilon import clopper_pearson_lower, epsilon_lower_bound
from privacy_audit.stats.permutation import conservative_ranks
from privacy_audit.scoring.protocol import summarise_trials
from privacy_audit.stats.fit import extrapolation_exposure, fit_skewnorm, interpolation_exposure, sequential_mc_p_value
from privacy_audit.stats.protocol import mean_rank_p_value, rank_zero_p_value, tpr_at_rank_fpr
from privacy_audit.stats.roc import roc_summary

REFS = np.arange(1, 17, dtype=float)
FIT = {"a": 0.0, "loc": 8.5, "scale": 4.609772228646444}


@pytest.mark.parametrize(
    "canaries, expected", [([0, 0.1], [4, 4]), ([3.5], [2.0]), ([20], [-0.08746284])]
)
def test_interpolation_exposure_known_values(canaries, expected):
    got = interpolation_exposure(reference_log_perplexities=REFS, canary_log_perplexities=np.array(canaries))
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize(
    "canaries, expected",
    [
        ([0, 0.1], [4.93906346, 4.86939083]), ([3.5], [2.84645049]),
        ([3.0, 1.0, 0.5], [3.10269233, 4.26893248, 4.59662752]),
    ],
)
def test_extrapolation_exposure_known_values(canaries, expected):
    got = extrapolation_exposure(canary_log_perplexities=np.array(canaries), **FIT)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_extrapolation_is_clipped_and_monotone():
    got = extrapolation_exposure(canary_log_perplexities=np.array([-100.0, 0.0, 8.5, 100.0]), max_bits=13.29, **FIT)
    assert got[0] == 13.29 and got[-1] == pytest.approx(0.0, abs=1e-12) and np.all(np.diff(got) <= 0)


def test_skewnorm_fit_flags_a_poor_fit():
    rng = np.random.default_rng(0)
    good = fit_skewnorm(rng.normal(10, 2, size=500), rng=rng)
    bad = fit_skewnorm(np.concatenate([np.zeros(250), np.full(250, 10.0)]) + rng.normal(0, 0.01, 500), rng=rng)
    assert not good.poor_fit and bad.poor_fit
    with pytest.raises(InputError):
        fit_skewnorm(np.ones(10), rng=rng)


def test_sequential_monte_carlo_p_values_keep_their_level():
    """Under the null (observed and drawn statistics exchangeable, here discrete so ties occur) P(p <= alpha) <= alpha
    at every alpha, over 20,000 seeded tests; an ordinary statistic stops long before the 199 draws of a fixed test."""
    rng = np.random.default_rng(11)
    draws = []

    def test_once() -> float:
        p, drawn = sequential_mc_p_value(float(rng.integers(50)), lambda: float(rng.integers(50)), samples=200)
        draws.append(drawn)
        return p

    p_values = np.array([test_once() for _ in range(20_000)])
    for alpha in (0.01, 0.05, 0.1, 0.5):
        assert np.mean(p_values <= alpha) <= alpha + 3 * math.sqrt(alpha / 20_000)
    assert np.mean(draws) < 60 and max(draws) == 199
    assert sequential_mc_p_value(1.0, lambda: 0.0, samples=20) == (1 / 20, 19)  # never exceeded: (0 + 1) / 20
    with pytest.raises(InputError):
        sequential_mc_p_value(1.0, lambda: 0.0, samples=1)


def test_protocol_ranks_count_ties_against_the_canary():
    rows = [(0.5, [0.1, 0.5, 0.9]), (-1.0, [0, 0, 0]), (0.0, [0, 0, 0])]
    ranks = [
        int(conservative_ranks(canary_scores=np.array([c]), reference_scores=np.array(r, dtype=float))[0])
        for c, r in rows
    ]
    assert ranks == [2, 3, 3]


def test_trial_summary_has_the_exact_nulls():
    s = summarise_trials([0, 1, 0], candidates=3, in_prompt=[True, False, False])
    assert s.mean_rank == pytest.approx(1 / 3) and s.null_mean_rank == 1.0 and s.rank_zero_count == 2
    assert s.mean_rank_p.p == pytest.approx(4 / 27)  # P(sum of 3 uniforms on 0..2 <= 1) = (1 + 3) / 27
    assert s.rank_zero_p.p == pytest.approx(3 * (1 / 3) ** 2 * (2 / 3) + (1 / 3) ** 3)
    assert s.canary_in_prompt == 1 and s.null_rank_zero_count == 1.0
    assert s.auc == pytest.approx(1 - (1 / 3) / 2) and s.tpr_at_1pct_fpr is None  # 3 candidates: no rank below 0.03


def test_trials_as_a_membership_test_flag_exactly_their_false_positive_rate():
    """Ranks uniform on 0..N-1 (no memorization): "rank < floor(alpha N)" flags alpha of them; the AUC is 1/2."""
    rng = np.random.default_rng(2)
    ranks = rng.integers(0, 2000, size=200_000)
    assert tpr_at_rank_fpr(ranks, candidates=2000, fpr=0.01) == pytest.approx(0.01, abs=0.001)
    assert tpr_at_rank_fpr(ranks, candidates=2000, fpr=0.001) == pytest.approx(0.001, abs=0.0003)
    every = summarise_trials(np.arange(100), candidates=100, in_prompt=[False] * 100)  # each rank once: exact
    assert every.auc == 0.5 and every.tpr_at_1pct_fpr == 0.01 and every.tpr_at_0_1pct_fpr is None
    # a measure that ties every comparison with the canary (rank N-1, N-1 ties) reads AUC 1/2, not 0
    blind = summarise_trials([99] * 10, candidates=100, in_prompt=[False] * 10, ties=[99] * 10)
    assert blind.auc == 0.5 and blind.tpr_at_1pct_fpr == 0.0 and blind.mean_rank_p.p == 1.0
    leaky = summarise_trials([0, 0, 5, 9, 10, 500], candidates=1000, in_prompt=[False] * 6)
    assert leaky.tpr_at_0_1pct_fpr == pytest.approx(2 / 6) and leaky.tpr_at_1pct_fpr == pytest.approx(4 / 6)


def test_mean_rank_p_value_exact():
    # T = 2 ranks uniform on 0..2: P(sum <= 1) = 3/9.
    assert mean_rank_p_value(ranks=np.array([0, 1]), n_candidates=3).p == pytest.approx(3 / 9)
    assert mean_rank_p_value(ranks=np.array([2, 2]), n_candidates=3).p == pytest.approx(1.0)
    assert mean_rank_p_value(ranks=np.array([0]), n_candidates=1000).p == pytest.approx(1e-3)
    # The paper's setting: T = 100 at the null mean 499.5 -> about one half.
    assert mean_rank_p_value(ranks=np.full(100, 499) + np.tile([0, 1], 50), n_candidates=1000).p == pytest.approx(
        0.5, abs=0.01
    )


def test_tiny_p_values_keep_their_log10():
    # 200 independent trials all at rank 0 among 1,000: p = 1e-600, which a float cannot hold.
    p = mean_rank_p_value(ranks=np.zeros(200, dtype=int), n_candidates=1000)
    assert p.log10_p == pytest.approx(-600.0) and p.p < 1e-300
    z = rank_zero_p_value(count=200, trials=200, n_candidates=1000)
    assert z.log10_p == pytest.approx(-600.0, abs=1e-6)


def test_mean_rank_p_value_matches_simulation():
    rng = np.random.default_rng(2)
    sims = rng.integers(0, 50, size=(200_000, 5)).sum(axis=1)
    observed = np.array([3, 10, 20, 7, 1])
    assert mean_rank_p_value(ranks=observed, n_candidates=50).p == pytest.approx(
        np.mean(sims <= observed.sum()), abs=0.003
    )


def test_rank_zero_p_value_is_binomial():
    assert rank_zero_p_value(count=0, trials=100, n_candidates=1000).p == 1.0
    assert rank_zero_p_value(count=1, trials=100, n_candidates=1000).p == pytest.approx(1 - 0.999**100)
    assert rank_zero_p_value(count=8, trials=100, n_candidates=1000).p < 1e-10


def test_epsilon_lower_bound_against_tf_privacy_on_the_same_counts():
    # TF Privacy (privacy_tests/epsilon_lower_bound.py, Clopper-Pearson) estimates both rates with
    # two-sided intervals at alpha/2; here the FPR r/|S| is exact, so on the same counts our bound is
    # higher, and equals theirs once their FPR upper bound is replaced by the exact FPR.
    ranks = np.array([1, 1, 1, 2, 1, 1, 1, 1, 1, 3])
    ours = epsilon_lower_bound(ranks=ranks, space_size=10_000, grid=(1,), confidence=0.95, design="independent")
    tp, pos, fp, neg, alpha = 8, 10, 1, 10_000, 0.05
    tf_p1 = stats.beta.ppf(alpha / 2, tp, pos - tp + 1)
    tf_p0 = stats.beta.ppf(1 - alpha / 2, fp + 1, neg - fp)
    assert ours.epsilon > math.log(tf_p1 / tf_p0)
    assert ours.epsilon == pytest.approx(math.log(clopper_pearson_lower(tp, pos, 0.95) / (fp / neg)))
    assert ours.threshold_rank == 1


@pytest.mark.parametrize("design", ["independent", "one_run"])
def test_epsilon_bound_is_zero_without_leak_and_grows_with_it(design):
    rng = np.random.default_rng(3)
    null = epsilon_lower_bound(ranks=rng.integers(1, 10_001, size=50), space_size=10_000, design=design)
    leak = epsilon_lower_bound(ranks=np.ones(50, dtype=int), space_size=10_000, design=design)
    assert null.epsilon < 1.0 and leak.epsilon > 8 and leak.design == design


def test_one_run_bound_for_three_canaries_at_rank_one():
    # v = 3 of k = 3 at r = 1 of 10^4, grid of 13 thresholds: C(3,3) (e^eps / (10^4 - 2))^3 <= 0.05 / 13.
    bound = epsilon_lower_bound(ranks=np.ones(3, dtype=int), space_size=10_000, design="one_run")
    assert bound.epsilon == pytest.approx(math.log(10_000 - 2) + math.log(0.05 / 13) / 3, abs=1e-6)
    with_delta = epsilon_lower_bound(ranks=np.ones(3, dtype=int), space_size=10_000, design="one_run", delta=1e-3)
    assert with_delta.epsilon < bound.epsilon and with_delta.delta == 1e-3


def oracle_epsilon(ranks: list[int], space: int, confidence: float, design: str) -> float:
    """The bound from its definition, by closed forms (delta = 0), written apart from the library: the largest eps over
    the grid of powers of two (Bonferroni over it) and, for one run, over v <= the hits, where
    C(k, v) (e^eps r / (|S| - k + 1))^v = alpha' (q capped at 1); for independent trials, where the exact one-sided
    binomial lower bound of the hit rate (scipy's binomtest, two-sided at twice the level) equals e^eps r / |S|."""
    k = len(ranks)
    grid = [2**i for i in range(int(math.log2(max(space // 2, 1))) + 1)]
    alpha = (1 - confidence) / len(grid)
    best = 0.0
    for r in grid:
        hits = sum(x <= r for x in ranks)
        if design == "one_run":
            fpr = min(1.0, r / (space - k + 1))
            for v in range(1, hits + 1):
                q = min(1.0, (alpha / math.comb(k, v)) ** (1 / v))
                best = max(best, math.log(q / fpr))
        elif hits:
            low = stats.binomtest(hits, k).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
            best = max(best, math.log(low / min(1.0, r / space)) if low > 0 else 0.0)
    return max(best, 0.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 1000), min_size=1, max_size=30), st.floats(0.5, 0.99),
    st.sampled_from(["independent", "one_run"]),
)
def test_epsilon_bound_equals_its_definition_computed_apart(ranks, confidence, design):
    bound = epsilon_lower_bound(ranks=np.array(ranks), space_size=1000, confidence=confidence, design=design)
    assert bound.epsilon == pytest.approx(oracle_epsilon(ranks, 1000, confidence, design), abs=1e-6)
    better = epsilon_lower_bound(
        ranks=np.ones(len(ranks), dtype=int), space_size=1000, confidence=confidence, design=design
    )
    assert better.epsilon >= bound.epsilon


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=2, max_size=40), st.integers(0, 2**32 - 1))
def test_randomized_inclusion_bound_equals_its_definition_computed_apart(planted, seed):
    """Guess "planted" for the k highest scores (k on the grid of powers of two, Bonferroni over it); the bound is
    the largest eps with P(Binomial(k, e^eps / (1 + e^eps)) >= right guesses) <= alpha', found here by root-finding."""
    from scipy.optimize import brentq

    from privacy_audit.stats.epsilon import epsilon_randomized_inclusion

    z = np.array(planted)
    scores = np.random.default_rng(seed).normal(size=z.size) + 3.0 * z
    bound = epsilon_randomized_inclusion(scores=scores, planted=z)
    grid = [2**i for i in range(int(math.log2(z.size)) + 1)]
    alpha = 0.05 / len(grid)
    order = np.lexsort((z, -scores))
    best = 0.0
    for k in grid:
        right = int(z[order[:k]].sum())
        tail = lambda eps, k=k, right=right: stats.binom.sf(right - 1, k, 1 / (1 + math.exp(-eps))) - alpha  # noqa: E731
        if right and tail(0.0) <= 0:
            best = max(best, 50.0 if tail(50.0) <= 0 else brentq(tail, 0.0, 50.0, xtol=1e-10))
    assert bound.epsilon == pytest.approx(best, abs=1e-6)


def test_roc_summary():
    rng = np.random.default_rng(4)
    members, non = rng.normal(1, 1, 200), rng.normal(0, 1, 200)
    roc = roc_summary(member_scores=members, non_member_scores=non)
    assert 0.7 < roc.auc < 0.8 and roc.auc_ci[0] < roc.auc < roc.auc_ci[1]
    perfect = roc_summary(member_scores=np.array([5.0, 6.0]), non_member_scores=np.array([0.0, 1.0]))
    assert perfect.auc == 1.0 and perfect.tpr_at_1pct_fpr == 1.0


def test_tpr_at_low_fpr_counts_tied_thresholds():
    members = np.array([10, 10, 9, 9, 8, 8, 0, 0, 0, 0], dtype=float)
    non = np.array([9, 8] + [0] * 98, dtype=float)
    roc = roc_summary(member_scores=members, non_member_scores=non)
    assert roc.tpr_at_1pct_fpr == pytest.approx(0.40)
    assert roc.tpr_at_0_1pct_fpr == pytest.approx(0.20)  # 100 non-members: 0.1% FPR allows no false positive


def test_tpr_at_a_tenth_of_a_percent_allows_one_false_positive_in_a_thousand():
    members = np.array([50, 40, 30, 20, 10], dtype=float)
    non = np.array([45, 35, 15] + [0] * 1997, dtype=float)  # 2,000 non-members: two false positives are 0.1%
    roc = roc_summary(member_scores=members, non_member_scores=non)
    assert roc.tpr_at_0_1pct_fpr == pytest.approx(0.8) and roc.tpr_at_1pct_fpr == 1.0


def test_auc_interval_does_not_collapse_under_perfect_separation():
    roc = roc_summary(member_scores=np.arange(8) + 100.0, non_member_scores=np.arange(64, dtype=float))
    low, high = roc.auc_ci
    assert roc.auc == 1.0 and high == 1.0 and 0.6 < low < 0.8


def test_calibrated_fit_test_rejects_heavy_tails_the_plain_test_misses():
    """With t(3) references the plain KS test (parameters fitted to the same data) rejects about 8% of
    samples; the parametric-bootstrap calibration rejects most of them."""
    rng = np.random.default_rng(9)
    reps = 20
    calibrated = plain = 0
    for _ in range(reps):
        refs = 20 + 2 * rng.standard_t(3, size=150)
        fit = fit_skewnorm(refs, rng=rng, bootstrap=99)
        calibrated += fit.poor_fit
        plain += stats.kstest(refs, "skewnorm", args=(fit.a, fit.loc, fit.scale)).pvalue < 0.05
    assert calibrated / reps >= 0.4 and calibrated > plain


def test_the_calibrated_fit_test_keeps_its_level_when_the_model_is_right():
    """References drawn from a skew-normal: the calibrated test rejects at most its level (20% here, with 4 refits
    per test: p is a multiple of 0.2), over 80 seeded fits, which catch a doubled rate with probability 0.9."""
    rng = np.random.default_rng(12)
    rejected = 0
    for _ in range(80):
        refs = stats.skewnorm.rvs(2.0, loc=10, scale=2, size=40, random_state=rng)
        rejected += fit_skewnorm(refs, rng=rng, bootstrap=4).ks_p_value <= 0.2
    assert at_level(rejected, 80, 0.2)


def test_a_large_reference_set_is_fitted_on_a_random_subsample():
    """A whole 10^4 space of references is fitted on 2,000 of them, drawn at random: the same parameters
    within sampling error, and the calibrated test still rejects a bimodal set."""
    rng = np.random.default_rng(4)
    refs = stats.skewnorm.rvs(3.0, loc=10, scale=2, size=10_000, random_state=rng)
    fit = fit_skewnorm(refs, rng=rng, bootstrap=19)
    assert (
        fit.references_fitted == 2000
        and fit.a == pytest.approx(3.0, rel=0.35)
        and fit.loc == pytest.approx(10, abs=0.3)
    )
    assert fit_skewnorm(refs[:300], rng=rng, bootstrap=19).references_fitted == 300
    bimodal = np.concatenate([np.zeros(5000), np.full(5000, 10.0)]) + rng.normal(0, 0.01, 10_000)
    assert fit_skewnorm(bimodal, rng=rng, bootstrap=39).poor_fit  # smallest p-value 1/40
