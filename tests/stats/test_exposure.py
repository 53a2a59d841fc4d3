"""Exposure maths against hand-computed values and properties (Carlini et al. 2019 conventions, in bits)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy_audit.errors import InputError
from privacy_audit.stats.exposure import exposure_from_rank, null_mean_exposure, rank_p_value, ranks_among


def test_exact_ranks_count_ties_against_the_canary():
    space = np.array([-1.0, -2.0, -2.0, -3.0])
    ranks = ranks_among(pool_logprobs=space, logprobs=np.array([-1.0, -2.0, -3.0]), include_self=False)
    assert ranks.tolist() == [1, 3, 4]
    np.testing.assert_allclose(exposure_from_rank(rank=ranks, pool_size=4), [2.0, np.log2(4 / 3), 0.0])


def test_sampled_ranks_add_the_canary_itself():
    refs = np.array([-5.0, -6.0, -7.0])
    ranks = ranks_among(pool_logprobs=refs, logprobs=np.array([-1.0, -6.5, -9.0]), include_self=True)
    assert ranks.tolist() == [1, 3, 4]
    assert exposure_from_rank(rank=1, pool_size=4) == pytest.approx(2.0)


def test_p_value_is_rank_over_pool():
    assert rank_p_value(rank=1, pool_size=10_000) == pytest.approx(1e-4)
    with pytest.raises(InputError):
        rank_p_value(rank=0, pool_size=10)


def test_null_mean_exposure():
    assert null_mean_exposure(1) == 0.0
    assert null_mean_exposure(2) == pytest.approx(0.5)
    assert null_mean_exposure(10_000) == pytest.approx(1 / np.log(2), abs=2e-3)


def test_never_planted_canary_has_mean_exposure_1_44_bits():
    rng = np.random.default_rng(0)
    space = rng.normal(size=10_000)
    picks = rng.choice(10_000, size=20_000)
    exposures = exposure_from_rank(
        rank=ranks_among(pool_logprobs=space, logprobs=space[picks], include_self=False), pool_size=10_000
    )
    assert exposures.mean() == pytest.approx(1 / np.log(2), abs=0.03)


@given(st.lists(st.floats(-100, 0, allow_nan=False), min_size=1, max_size=50), st.data())
def test_exposure_bounded_and_monotone(pool, data):
    pool_arr = np.array(pool)
    i, j = data.draw(st.integers(0, len(pool) - 1)), data.draw(st.integers(0, len(pool) - 1))
    ranks = ranks_among(pool_logprobs=pool_arr, logprobs=pool_arr[[i, j]], include_self=False)
    exp = exposure_from_rank(rank=ranks, pool_size=len(pool))
    assert np.all(exp >= 0) and np.all(exp <= np.log2(len(pool)) + 1e-12)
    if pool_arr[i] > pool_arr[j]:
        assert exp[0] >= exp[1]


def test_non_finite_scores_are_rejected():
    with pytest.raises(InputError):
        ranks_among(pool_logprobs=np.array([0.0, np.nan]), logprobs=np.array([0.0]), include_self=False)
