"""Rank the canaries of a set under one scoring mode: each mode is a ranker that returns a typed `Ranking`.

Exact mode ranks each canary against every secret of the space; bounded mode certifies rank intervals by
a best-first search; sampled mode ranks against the references. Every mode gives every canary an
interval of its rank over the whole space (`bounded.intervals`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.errors import InputError
from privacy_audit.models.context import Context
from privacy_audit.scoring.bounded import Interval, default_budget, intervals, search_space
from privacy_audit.scoring.derived import rank_interval_note
from privacy_audit.stats.exposure import ranks_among
from privacy_audit.scoring.options import ScoringOptions
from privacy_audit.scoring.search import SearchResult
from privacy_audit.scoring.types import Mode, RunMode

Progress = Callable[[int, int], None]
# Candidates scored per call in exact mode: about 20 calls a space (so progress moves), 2,500 to 50,000 each.
EXACT_CHUNKS = 20


@dataclass(frozen=True)
class Ranking:
    """What a mode found: the log-probabilities the canaries were ranked on (in exact mode the space's own
    scores of them), each canary's rank among `pool` candidates (bounded: the certified upper end), its
    interval over the whole space, the sampled lower-rank table the gate's false alarms use, and how the
    search went."""

    mode: RunMode
    logprobs: np.ndarray
    ranks: tuple[int, ...]
    pools: tuple[int, ...]
    intervals: tuple[Interval, ...]
    sampled_table: tuple[int, ...] | None
    search: str

    @property
    def note(self) -> str:
        """How the rank intervals were obtained, for the report."""
        return rank_interval_note(self.mode, [s.method for s in self.intervals], self.search)


Ranker = Callable[[Context, CanarySet, np.ndarray, ScoringOptions, "Progress | None"], Ranking]


def resolve_mode(canary_set: CanarySet, options: ScoringOptions, exact_budget: int | None = None) -> RunMode:
    """`auto` is exact scoring up to the exact-mode limit (and the scorer's own budget: a served model states
    how many candidates it should be sent) and bounded mode beyond it."""
    mode: Mode = options.mode
    if mode != "auto":
        return mode
    limit = options.max_exact if exact_budget is None else min(options.max_exact, exact_budget)
    return "exact" if canary_set.secret_space.size <= limit else "bounded"


def check_mode(canary_set: CanarySet, options: ScoringOptions, mode: Mode | None = None) -> None:
    """Pre-flight: exact mode needs a space small enough to score whole; sampled mode needs references (`mode`: the
    mode `auto` resolved to, else the options' own)."""
    space = canary_set.secret_space
    mode = options.mode if mode is None else mode
    if mode == "exact" and space.size > options.max_exact:
        raise InputError(
            f"space {space.spec} holds {space.size:,} secrets, more than the exact-mode limit of "
            f"{options.max_exact:,}; "
            "use bounded mode (--bounded, the default beyond the limit) or raise --max-exact"
        )
    if mode == "sampled" and not canary_set.references:
        raise InputError("sampled mode needs references in the canary set; generate it with --references N")


def rank_exact(
    context: Context, canary_set: CanarySet, logprobs: np.ndarray, options: ScoringOptions, progress: Progress | None
) -> Ranking:
    """Every secret scored: a canary's rank counts the secrets at least as likely (ties against it), ranked on
    the space's own scores of the canaries, so each is ranked on exactly the numbers it is ranked against."""
    space = canary_set.secret_space
    space_lp = score_space(context, canary_set, progress)
    own = space_lp[[space.index(c.secret) for c in canary_set.canaries]]
    ranks = [int(r) for r in ranks_among(pool_logprobs=space_lp, logprobs=own, include_self=False)]
    planted = _planted(canary_set)
    spans, table = intervals(canary_set, own, planted, exact_ranks=ranks, search=None)
    note = "exact ranks over the whole space" if options.extraction else "not run"
    return Ranking("exact", own, tuple(ranks), (space.size,) * len(ranks), tuple(spans), table, note)


def rank_bounded(
    context: Context, canary_set: CanarySet, logprobs: np.ndarray, options: ScoringOptions, progress: Progress | None
) -> Ranking:
    """Best-first search certifies each canary's rank interval; its rank is the interval's upper end (conservative)."""
    planted = _planted(canary_set)
    search, note = _search(context, canary_set, logprobs, planted, options, progress)
    spans, table = intervals(canary_set, logprobs, planted, exact_ranks=None, search=search)
    size = canary_set.secret_space.size
    return Ranking("bounded", logprobs, tuple(s.upper for s in spans), (size,) * len(spans), tuple(spans), table, note)


def rank_sampled(
    context: Context, canary_set: CanarySet, logprobs: np.ndarray, options: ScoringOptions, progress: Progress | None
) -> Ranking:
    """Rank among the references (a planted canary joins the pool; ties count against it); with extraction, a
    search also looks for the planted canaries, so their guesses are known where it passes them."""
    planted = _planted(canary_set)
    search, note = None, "not run"
    if options.extraction:
        search, note = _search(context, canary_set, logprobs, planted, options, progress)
    spans, table = intervals(canary_set, logprobs, planted, exact_ranks=None, search=search)
    refs = logprobs[~planted]
    ranks = ranks_among(pool_logprobs=refs, logprobs=logprobs, include_self=False) + planted
    pools = [len(refs) + 1 if p else len(refs) for p in planted]
    return Ranking("sampled", logprobs, tuple(int(r) for r in ranks), tuple(pools), tuple(spans), table, note)


RANKERS: dict[RunMode, Ranker] = {"exact": rank_exact, "bounded": rank_bounded, "sampled": rank_sampled}


def _planted(canary_set: CanarySet) -> np.ndarray:
    return np.array([c.planted for c in canary_set.canaries])


def _search(
    context: Context, canary_set: CanarySet, logprobs: np.ndarray, planted: np.ndarray, options: ScoringOptions,
    progress: Progress | None,
) -> tuple[SearchResult | None, str]:
    """The best-first search, where the scorer gives next-token log-probabilities; else none, and why."""
    if not context.can_search:
        return (
            None,
            f"best-first search not run: {context.owner} gives no next-token log-probabilities (intervals from the "
            "references)",
        )
    budget = options.search_budget if options.search_budget is not None else default_budget(canary_set)
    return search_space(context, canary_set, logprobs, planted, budget=budget, progress=progress)


def score_space(context: Context, canary_set: CanarySet, progress: Progress | None) -> np.ndarray:
    """Log2-probability of every secret of the space in its template, in chunks."""
    space = canary_set.secret_space
    space_lp = np.empty(space.size, dtype=np.float64)
    chunk = min(50_000, max(2_500, space.size // EXACT_CHUNKS))
    for start in range(0, space.size, chunk):
        stop = min(start + chunk, space.size)
        texts = [canary_set.fill(s) for s in space.enumerate(start, stop)]
        space_lp[start:stop] = context(texts).totals(len(canary_set.prefix))
        if progress is not None:
            progress(stop, space.size)
    return space_lp
