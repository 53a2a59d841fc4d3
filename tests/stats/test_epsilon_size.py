"""The epsilon lower bounds' size, by seeded simulation against mechanisms of known privacy: a mechanism that keeps
an (epsilon, delta) promise makes the bound exceed epsilon at most 1 - confidence of the time, and one that breaks it
is caught with a power these tests measure."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from privacy_audit.stats.epsilon import epsilon_lower_bound, epsilon_randomized_inclusion
from tests.conftest import at_level


def randomized_response(planted: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Each canary's one-bit output by randomized response at `epsilon` (the tight epsilon-DP mechanism): its
    inclusion told truly with probability e^eps / (1 + e^eps)."""
    truthful = rng.random(planted.size) < math.exp(epsilon) / (1 + math.exp(epsilon))
    return np.where(truthful, planted, ~planted).astype(np.float64)


def runs_over(exceeds: Callable[[np.ndarray, np.random.Generator], bool], *, seed: int, trials: int = 400) -> int:
    """In how many of `trials` seeded runs, each with 256 canaries planted by fair coins, `exceeds` holds."""
    rng = np.random.default_rng(seed)
    return sum(bool(exceeds(rng.random(256) < 0.5, rng)) for _ in range(trials))


def ranks_of_tight_mechanism(k: int, pool: int, epsilon: float, delta: float, rng: np.random.Generator) -> np.ndarray:
    """k planted canaries' ranks where every test "rank <= r" passes with the largest probability (epsilon, delta)-DP
    allows against a never-planted secret (r / pool): P(rank <= r) = min(1, e^eps r / pool + delta)."""
    u = rng.random(k)
    return np.clip(np.ceil((u - delta) * pool / math.exp(epsilon)), 1, pool).astype(np.int64)


@pytest.mark.slow
@pytest.mark.parametrize("epsilon", [1.0, 4.0])
def test_randomized_inclusion_bound_holds_its_level_on_randomized_response(epsilon):
    over = runs_over(lambda planted, rng: epsilon_randomized_inclusion(
        scores=randomized_response(planted, epsilon, rng), planted=planted).epsilon > epsilon, seed=int(epsilon * 10))
    assert at_level(over, 400, 0.05), over


@pytest.mark.slow
@pytest.mark.parametrize("delta", [0.0, 1e-3])
def test_one_run_bound_holds_its_level_on_the_tightest_mechanism(delta):
    rng = np.random.default_rng(3)
    epsilon, trials, over = 2.0, 400, 0
    for _ in range(trials):
        ranks = ranks_of_tight_mechanism(32, 10_000 - 31, epsilon, delta, rng)
        over += epsilon_lower_bound(ranks=ranks, space_size=10_000, design="one_run", delta=delta).epsilon > epsilon
    assert at_level(over, trials, 0.05), over


def test_a_mechanism_that_breaks_its_claim_is_caught_and_one_that_keeps_it_is_not():
    """Randomized response at epsilon 4 claiming 1 (noise four times too small): 256 coin-planted canaries catch it
    in most runs; at its true epsilon the bound never passes 4 in these runs."""
    rng = np.random.default_rng(5)
    runs = 40
    caught = sum(
        epsilon_randomized_inclusion(scores=randomized_response(p, 4.0, rng), planted=p).epsilon > 1.0
        for p in (rng.random(256) < 0.5 for _ in range(runs))
    )
    assert caught >= 0.9 * runs
    kept = sum(
        epsilon_randomized_inclusion(scores=randomized_response(p, 4.0, rng), planted=p).epsilon > 4.0
        for p in (rng.random(256) < 0.5 for _ in range(runs))
    )
    assert kept <= 6  # at most ~5% expected; a fixed seed
