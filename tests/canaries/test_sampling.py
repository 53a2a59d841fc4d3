"""Uniform sampling of distinct indices, unbiased, at any space size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from privacy_audit.canaries.sampling import sample_indices, sample_indices_array
from privacy_audit.errors import InputError


@pytest.mark.parametrize("size", [10, 2**63, 2**64, 10**30])
def test_draws_are_distinct_in_range_and_seeded(size):
    a = sample_indices(size, 8, np.random.default_rng(1))
    assert len(set(a)) == 8 and all(0 <= i < size for i in a)
    assert a == sample_indices(size, 8, np.random.default_rng(1))


def test_every_index_is_equally_likely():
    """Chi-square over 20,000 draws of 3 from 10: a biased sampler (modulo bias, a repeat kept) fails at 1e-4."""
    rng = np.random.default_rng(2)
    counts = np.bincount(np.concatenate([sample_indices_array(10, 3, rng) for _ in range(20_000)]).astype(int))
    assert stats.chisquare(counts).pvalue > 1e-4


def test_beyond_two_to_the_64_the_top_bits_are_uniform():
    """Above 2^64, rejection on random bits: the index's top half is as likely as the bottom (binomial, 1e-4)."""
    rng = np.random.default_rng(3)
    size = 3 * 2**70
    top = sum(i >= size // 2 for _ in range(2_000) for i in sample_indices(size, 1, rng))
    assert stats.binomtest(top, 2_000).pvalue > 1e-4


def test_too_many_or_negative_is_refused():
    with pytest.raises(InputError, match="cannot draw 11 distinct"):
        sample_indices(10, 11, np.random.default_rng(0))
    with pytest.raises(InputError, match="cannot draw -1"):
        sample_indices(10, -1, np.random.default_rng(0))
