"""Known values (TF Privacy's exposure vectors), exact p-values against simulation, epsilon bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from privacy_audit.errors import InputError
from privacy_audit.scoring.stats import (
    bootstrap_mean_ci,
    clopper_pearson_lower,
    epsilon_lower_bound,
    extrapolation_exposure,
    fit_skewnorm,
    interpolation_exposure,
    mean_rank_p_value,
    protocol_ranks,
    rank_zero_p_value,
    roc_summary,
)

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
    [([0, 0.1], [4.93906346, 4.86939083]), ([3.5], [2.84645049]), ([3.0, 1.0, 0.5], [3.10269233, 4.26893248, 4.59662752])],
)
def test_extrapolation_exposure_known_values(canaries, expected):
    got = extrapolation_exposure(canary_log_perplexities=np.array(canaries), **FIT)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_extrapolation_is_clipped_and_monotone():
    got = extrapolation_exposure(canary_log_perplexities=np.array([-100.0, 0.0, 8.5, 100.0]), max_bits=13.29, **FIT)
    assert got[0] == 13.29 and got[-1] == pytest.approx(0.0, abs=1e-12) and np.all(np.diff(got) <= 0)


def test_skewnorm_fit_flags_a_poor_fit():
    rng = np.random.default_rng(0)
    good = fit_skewnorm(rng.normal(10, 2, size=500))
    bad = fit_skewnorm(np.concatenate([np.zeros(250), np.full(250, 10.0)]) + rng.normal(0, 0.01, 500))
    assert not good.poor_fit and bad.poor_fit
    with pytest.raises(InputError):
        fit_skewnorm(np.ones(10))


def test_bootstrap_ci_covers_the_mean_and_is_undefined_for_one_value():
    rng = np.random.default_rng(1)
    values = rng.normal(1.44, 1.0, size=200)
    low, high = bootstrap_mean_ci(values, rng=rng)
    assert low < values.mean() < high and high - low < 0.4
    assert bootstrap_mean_ci(np.array([3.0]), rng=rng) is None


def test_protocol_ranks_count_strictly_higher():
    ranks = protocol_ranks(canary_scores=np.array([0.5, -1.0]), comparison_scores=np.array([[0.1, 0.5, 0.9], [0, 0, 0]]))
    assert ranks.tolist() == [1, 3]


def test_mean_rank_p_value_exact():
    # T = 2 ranks uniform on 0..2: P(sum <= 1) = 3/9.
    assert mean_rank_p_value(ranks=np.array([0, 1]), n_candidates=3) == pytest.approx(3 / 9)
    assert mean_rank_p_value(ranks=np.array([2, 2]), n_candidates=3) == pytest.approx(1.0)
    assert mean_rank_p_value(ranks=np.array([0]), n_candidates=1000) == pytest.approx(1e-3)
    # The paper's setting: T = 100 at the null mean 499.5 -> about one half.
    assert mean_rank_p_value(ranks=np.full(100, 499) + np.tile([0, 1], 50), n_candidates=1000) == pytest.approx(0.5, abs=0.01)


def test_mean_rank_p_value_matches_simulation():
    rng = np.random.default_rng(2)
    sims = rng.integers(0, 50, size=(200_000, 5)).sum(axis=1)
    observed = np.array([3, 10, 20, 7, 1])
    assert mean_rank_p_value(ranks=observed, n_candidates=50) == pytest.approx(np.mean(sims <= observed.sum()), abs=0.003)


def test_rank_zero_p_value_is_binomial():
    assert rank_zero_p_value(count=0, trials=100, n_candidates=1000) == 1.0
    assert rank_zero_p_value(count=1, trials=100, n_candidates=1000) == pytest.approx(1 - 0.999**100)
    assert rank_zero_p_value(count=8, trials=100, n_candidates=1000) < 1e-10


def test_epsilon_lower_bound_against_tf_privacy_on_the_same_counts():
    # TF Privacy (privacy_tests/epsilon_lower_bound.py, Clopper-Pearson) estimates both rates with
    # two-sided intervals at alpha/2; here the FPR r/|S| is exact, so on the same counts our bound is
    # higher, and equals theirs once their FPR upper bound is replaced by the exact FPR.
    ranks = np.array([1, 1, 1, 2, 1, 1, 1, 1, 1, 3])
    ours = epsilon_lower_bound(ranks=ranks, space_size=10_000, grid=(1,), confidence=0.95)
    tp, pos, fp, neg, alpha = 8, 10, 1, 10_000, 0.05
    tf_p1 = stats.beta.ppf(alpha / 2, tp, pos - tp + 1)
    tf_p0 = stats.beta.ppf(1 - alpha / 2, fp + 1, neg - fp)
    assert ours.epsilon > math.log(tf_p1 / tf_p0)
    assert ours.epsilon == pytest.approx(math.log(clopper_pearson_lower(tp, pos, 0.95) / (fp / neg)))
    assert ours.threshold_rank == 1


def test_epsilon_bound_is_zero_without_leak_and_grows_with_it():
    rng = np.random.default_rng(3)
    null = epsilon_lower_bound(ranks=rng.integers(1, 10_001, size=50), space_size=10_000)
    leak = epsilon_lower_bound(ranks=np.ones(50, dtype=int), space_size=10_000)
    assert null.epsilon < 1.0 and leak.epsilon > 8


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 1000), min_size=1, max_size=30), st.floats(0.5, 0.99))
def test_epsilon_bound_properties(ranks, confidence):
    bound = epsilon_lower_bound(ranks=np.array(ranks), space_size=1000, confidence=confidence)
    assert bound.epsilon >= 0
    better = epsilon_lower_bound(ranks=np.ones(len(ranks), dtype=int), space_size=1000, confidence=confidence)
    assert better.epsilon >= bound.epsilon


def test_roc_summary():
    rng = np.random.default_rng(4)
    members, non = rng.normal(1, 1, 200), rng.normal(0, 1, 200)
    roc = roc_summary(member_scores=members, non_member_scores=non, rng=rng, n_resamples=200)
    assert 0.7 < roc.auc < 0.8 and roc.auc_ci[0] < roc.auc < roc.auc_ci[1]
    perfect = roc_summary(member_scores=np.array([5.0, 6.0]), non_member_scores=np.array([0.0, 1.0]), rng=rng, n_resamples=50)
    assert perfect.auc == 1.0 and perfect.tpr_at_1pct_fpr == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_rank_auc_equals_scikit_learn(pos, neg):
    from sklearn.metrics import roc_auc_score

    from privacy_audit.scoring.stats import auc_from_ranks

    scores = np.array(pos + neg, dtype=float)
    expected = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], scores)
    assert auc_from_ranks(scores[None, :], n_pos=len(pos))[0] == pytest.approx(expected)
