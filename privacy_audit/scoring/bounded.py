"""Rank intervals for every canary in every mode: exact, certified by best-first search, or sampled from references.

Bounded mode runs one search for all canaries (most likely secret first, until the least likely
planted canary is passed or the budget is spent) and combines its certified interval with the
references' Clopper-Pearson interval where that is tighter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.models.context import Context
from privacy_audit.stats.bounds import (
    CONFIDENCE, certified_ranks, exposure_bounds, sampled_lower_table, sampled_rank_bounds,
)
from privacy_audit.scoring.lattice import token_lattice
from privacy_audit.scoring.search import Alignment, SearchResult, align, best_first
from privacy_audit.scoring.walk import Walk

# Default budget: this many token steps per planted canary and character after the template prefix (enough
# to certify a copied canary many times over), and at most |S| / 64: a search step (a path re-read from the cached
# prompt) costs about 40 trie nodes of exact scoring, so the default search costs less than exact scoring.
STEPS_PER_TOKEN = 200
EXACT_COST_RATIO = 64
# ...but never fewer than this many per character: enough to walk down to a copied canary.
MIN_STEPS_PER_TOKEN = 32


@dataclass(frozen=True)
class Interval:
    """A canary's rank interval over the whole space, its exposure interval, and how it was obtained."""

    lower: int
    upper: int
    method: str
    exposure_lower: float
    exposure_upper: float
    passed: bool = False

    @property
    def guesses(self) -> int | None:
        """Most-likely-first guesses to reach the canary, once the search (or exact scoring) went past it."""
        return self.upper if self.passed else None


def default_budget(canary_set: CanarySet) -> int:
    """Token steps sized to the space and the number of planted canaries."""
    space = canary_set.secret_space
    length = max(1, len(canary_set.fill(space.sample(1, np.random.default_rng(0))[0])) - len(canary_set.prefix))
    return int(max(MIN_STEPS_PER_TOKEN * length, min(STEPS_PER_TOKEN * max(1, len(canary_set.planted)) * length,
                                                   space.size // EXACT_COST_RATIO)))


def search_space(
    context: Context, canary_set: CanarySet, logprobs: np.ndarray, is_planted: np.ndarray, *, budget: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[SearchResult | None, str]:
    """One best-first search down to the least likely planted canary it could reach, within `budget` token steps.

    A planted canary that the references already place beyond `budget` secrets of the space (at
    the lower end of their interval) cannot be reached by a search of that budget, so the search does
    not chase it: its interval then comes from the references, and the budget is not spent in vain.
    """
    walk = walk_for(context, canary_set)
    if isinstance(walk, str):
        return None, walk
    refs = logprobs[~is_planted]
    targets = logprobs[is_planted]
    if len(refs):
        population = canary_set.secret_space.size - int(is_planted.sum())
        reachable = [
            sampled_rank_bounds(above=int(np.sum(refs >= lp)), sample=len(refs), population=population, known_above=0,
                                space_size=canary_set.secret_space.size, confidence=CONFIDENCE)[0] <= budget
            for lp in targets
        ]
        targets = targets[np.array(reachable)] if any(reachable) else targets[np.argmax(targets)][None]
    result = best_first(
        context.search, walk, stop_below=float(np.min(targets)), max_token_steps=budget,
        bound_for=logprobs, progress=progress,
    )
    ended = "budget spent" if result.exhausted_budget else "every planted canary passed"
    over = "" if isinstance(walk, Alignment) else " over whole tokens"
    return result, f"best-first search{over}, {result.token_steps} token steps of a budget of {budget} ({ended})"


def walk_for(context: Context, canary_set: CanarySet) -> Walk | str:
    """What the search walks: one token per secret symbol where the tokenizer reads the secret so (`align`), else
    the lattice of whole tokens (any tokenizer, word lists too); or why the search cannot run (a str)."""
    return align(context, canary_set) or token_lattice(context, canary_set)


def intervals(
    canary_set: CanarySet, logprobs: np.ndarray, is_planted: np.ndarray, *, exact_ranks: list[int] | None,
    search: SearchResult | None,
) -> tuple[list[Interval], tuple[int, ...] | None]:
    """Each canary's rank interval over the whole space, and the gate's sampled lower bound by references above."""
    size = canary_set.secret_space.size
    if exact_ranks is not None:
        return [Interval(r, r, "exact", *exposure_bounds(r, r, size), passed=True) for r in exact_ranks], None
    n = len(logprobs)
    cert_lo, cert_hi, passed = [1] * n, [size] * n, [False] * n
    if search is not None:
        found = set(search.secrets)
        cert_lo, cert_hi, passed = certified_ranks(
            logprobs=logprobs, found=np.array(search.logprobs), frontier=search.frontier_logprobs,
            frontier_sizes=search.frontier_sizes, dropped=search.dropped, space_size=size,
            frontier_depths=search.frontier_depths,
            found_self=np.array([c.secret in found for c in canary_set.canaries]),
        )
    refs = logprobs[~is_planted]
    planted_lp = logprobs[is_planted]
    population = size - int(is_planted.sum())
    out = []
    for i, lp in enumerate(logprobs):
        lo, hi, method = cert_lo[i], cert_hi[i], "certified"
        if lo < hi and len(refs) > int(not is_planted[i]):
            sample = len(refs) - int(not is_planted[i])
            above = int(np.sum(refs >= lp)) - int(not is_planted[i])
            known = int(np.sum(planted_lp >= lp)) - int(is_planted[i])
            s_lo, s_hi = sampled_rank_bounds(above=above, sample=sample, population=population - int(not is_planted[i]),
                                             known_above=known, space_size=size, confidence=CONFIDENCE)
            if max(lo, s_lo) <= min(hi, s_hi) and (s_lo > lo or s_hi < hi):
                lo, hi, method = max(lo, s_lo), min(hi, s_hi), "sampled"
        out.append(Interval(lo, hi, method, *exposure_bounds(lo, hi, size), passed=passed[i]))
    table = (
        sampled_lower_table(sample=len(refs), population=population, space_size=size, confidence=CONFIDENCE)
        if len(refs)
        else None
    )
    return out, table
