"""The f-DP (Gaussian) one-run audit: mu read as (epsilon, delta) as Google's dp-accounting reads the Gaussian
mechanism, and the bound's size by seeded simulation against the Gaussian mechanism (mu-GDP exactly) and randomized
response (whose mu the bound never passes, though reading that mu as a Gaussian epsilon overstates epsilon)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from privacy_audit.stats.epsilon import epsilon_randomized_inclusion
from privacy_audit.stats.fdp import epsilon_of_mu, gdp_randomized_inclusion
from tests.conftest import at_level
from tests.stats.test_epsilon_size import randomized_response, runs_over


@pytest.mark.parametrize("epsilon,delta", [(0.5, 1e-3), (1.0, 1e-5), (4.0, 1e-5), (8.0, 1e-6)])
def test_mu_reads_as_the_epsilon_dp_accounting_gives_the_gaussian_mechanism(epsilon, delta):
    import dp_accounting

    sigma = dp_accounting.get_sigma_gaussian(epsilon, delta)
    assert epsilon_of_mu(1 / sigma, delta) == pytest.approx(epsilon, rel=1e-6)
    assert epsilon_of_mu(0.0, delta) == 0.0 and epsilon_of_mu(2 / sigma, delta) > epsilon


def gaussian_mechanism(planted: np.ndarray, mu: float, rng: np.random.Generator) -> np.ndarray:
    """Each canary's score by the Gaussian mechanism on its inclusion bit: mu-GDP exactly."""
    return mu * planted + rng.normal(size=planted.size)


@pytest.mark.slow
@pytest.mark.parametrize("mu", [1.0, 3.0])
def test_the_mu_bound_holds_its_level_on_the_gaussian_mechanism(mu):
    over = runs_over(lambda planted, rng: gdp_randomized_inclusion(
        scores=gaussian_mechanism(planted, mu, rng), planted=planted, delta=1e-5).mu > mu, seed=int(mu * 7))
    assert at_level(over, 400, 0.05), over


def test_on_randomized_response_mu_stays_below_the_truth_while_its_gaussian_reading_overstates_epsilon():
    rng = np.random.default_rng(1)
    true_mu = 2 * norm.ppf(math.exp(4) / (1 + math.exp(4)))  # the least mu whose curve lies under RR at epsilon 4
    bounds = []
    for _ in range(40):
        planted = rng.random(256) < 0.5
        bounds.append(gdp_randomized_inclusion(scores=randomized_response(planted, 4.0, rng), planted=planted,
                                               delta=1e-5))
    assert max(b.mu for b in bounds) <= true_mu
    assert sum(b.epsilon_if_gaussian > 4.0 for b in bounds) >= 4  # not a bound on epsilon for this mechanism


def test_the_f_dp_reading_is_tighter_than_the_binomial_one_on_a_gaussian_mechanism():
    rng = np.random.default_rng(2)
    planted = rng.random(512) < 0.5
    scores = gaussian_mechanism(planted, 2.0, rng)
    gdp = gdp_randomized_inclusion(scores=scores, planted=planted, delta=1e-5)
    steinke = epsilon_randomized_inclusion(scores=scores, planted=planted, delta=1e-5)
    assert 0 < gdp.mu <= 2.0 and steinke.epsilon < gdp.epsilon_if_gaussian <= epsilon_of_mu(2.0, 1e-5)
    assert gdp.correct is not None and gdp.guesses in gdp.grid


@pytest.mark.slow
def test_the_randomized_inclusion_bound_at_delta_holds_its_level_and_shrinks_with_delta():
    rng = np.random.default_rng(4)
    trials, over = 400, 0
    for _ in range(trials):
        planted = rng.random(256) < 0.5
        # the tightest (epsilon, delta) mechanism for one bit: the truth with probability delta, else RR
        told = rng.random(256) < 1e-3
        scores = np.where(told, planted.astype(float), randomized_response(planted, 1.0, rng))
        bound = epsilon_randomized_inclusion(scores=scores, planted=planted, delta=1e-3)
        over += bound.epsilon > 1.0
        assert bound.epsilon <= epsilon_randomized_inclusion(scores=scores, planted=planted).epsilon
    assert at_level(over, trials, 0.05), over
