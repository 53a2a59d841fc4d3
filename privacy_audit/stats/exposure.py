"""Exposure and rank maths (Carlini et al. 2019, "The Secret Sharer"), in bits.

Scores are log2-probabilities (higher = more likely). A candidate's rank counts the candidates at
least as likely as it, itself included (ties count against it), so rank 1 is the most likely.
"""

from __future__ import annotations

import math

import numpy as np

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite


def ranks_among(*, pool_logprobs: np.ndarray, logprobs: np.ndarray, include_self: bool) -> np.ndarray:
    """Rank of each score among `pool_logprobs`: #{pool >= score}, plus 1 when the score is not in the pool.

    Exact exposure passes the whole space as the pool (the canary is in it: include_self=False);
    sampled exposure passes the references (the canary is not among them: include_self=True).
    """
    pool = np.sort(finite("pool_logprobs", pool_logprobs))
    scores = finite("logprobs", logprobs)
    at_least = len(pool) - np.searchsorted(pool, scores, side="left")
    return at_least + (1 if include_self else 0)


def exposure_from_rank(*, rank: np.ndarray | int, pool_size: int) -> np.ndarray:
    """Exposure = log2(pool_size) - log2(rank), in [0, log2(pool_size)] bits."""
    r = np.asarray(rank, dtype=np.float64)
    if pool_size < 1 or np.any(r < 1) or np.any(r > pool_size):
        raise InputError(f"ranks must lie in [1, {pool_size}]")
    return np.log2(pool_size) - np.log2(r)


def rank_p_value(*, rank: np.ndarray | int, pool_size: int) -> np.ndarray:
    """P(rank <= r) for a never-planted secret, whose rank is uniform on 1..pool_size: exactly r / pool_size."""
    r = np.asarray(rank, dtype=np.float64)
    if pool_size < 1 or np.any(r < 1) or np.any(r > pool_size):
        raise InputError(f"ranks must lie in [1, {pool_size}]")
    return r / pool_size


def null_mean_exposure(pool_size: int) -> float:
    """Expected exposure of a never-planted secret: log2 M - log2(M!)/M, which tends to 1/ln 2 = 1.44 bits."""
    if pool_size < 1:
        raise InputError("pool_size must be at least 1")
    return float(math.log2(pool_size) - math.lgamma(float(pool_size) + 1) / math.log(2) / float(pool_size))
