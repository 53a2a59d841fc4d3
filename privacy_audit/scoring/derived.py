"""Figures that follow from the canaries' rows: each row's exposure and p-value, the summary, the intervals of the mean
exposures, the extrapolation fit's note, the epsilon bound and the rank intervals' note. Scoring a prompt computes
them here, and checking a stored report runs the same functions on the report's own rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from privacy_audit.canaries.canary import Inclusion
from privacy_audit.scoring.measures import greedy_extracted, protocol_rank
from privacy_audit.scoring.types import CanaryScore, PValueRecord, RunMode, Summary
from privacy_audit.stats.bounds import CONFIDENCE as RANK_CONFIDENCE
from privacy_audit.stats.epsilon import EpsilonBound, epsilon_lower_bound, epsilon_randomized_inclusion
from privacy_audit.stats.fdp import GdpBound, gdp_randomized_inclusion
from privacy_audit.stats.exposure import null_mean_exposure
from privacy_audit.stats.fit import SkewnormFit
from privacy_audit.stats.intervals import betting_mean_ci
from privacy_audit.stats.permutation import PValue

Interval = tuple[float, float] | None
INTERVAL_METHOD = "betting confidence interval for a bounded mean (Waudby-Smith and Ramdas), valid at every n"
CONFIDENCE = 0.95


@dataclass(frozen=True)
class RowExposure:
    """A rank's exposure and p-value among its pool, and its rank interval's exposure interval over the space."""

    exposure_bits: float
    p_value: float
    exposure_bits_lower: float
    exposure_bits_upper: float


def row_exposure(*, rank: int, pool: int, lower: int, upper: int, space_size: int) -> RowExposure:
    """exposure = log2 pool - log2 rank, p = rank / pool (a never-planted secret's rank is uniform), and the
    interval's ends log2|S| - log2 rank at each end of the rank interval."""
    bits = math.log2(space_size)
    return RowExposure(math.log2(pool) - math.log2(rank), rank / pool, bits - math.log2(upper), bits - math.log2(lower))


def summarise(
    rows: Sequence[CanaryScore], *, mode: RunMode, space_size: int, secrets_in_prompt: int | None,
    p_values: Mapping[str, PValue | PValueRecord],
) -> Summary:
    """Planted canaries against references: their exposures against the null baseline, counts of what leaked, the
    paper's mean rank and rank-0 count, and the summary tests' p-values."""
    planted = [r for r in rows if r.planted]
    refs = [r for r in rows if not r.planted]
    exposures = np.array([r.exposure_bits for r in planted])
    pool = len(refs) + 1 if mode == "sampled" else space_size
    greedy = [v for v in (greedy_extracted.of(r) for r in planted) if v is not None]
    known = [r.guesses for r in planted if r.guesses is not None]
    ranks = np.array([protocol_rank.of(r) or 0 for r in planted], dtype=np.int64)
    return Summary(
        max_exposure_bits=float(exposures.max()), mean_exposure_planted=float(exposures.mean()),
        mean_exposure_references=float(np.mean([r.exposure_bits for r in refs])) if refs else None,
        null_mean_exposure_bits=null_mean_exposure(pool), max_possible_exposure_bits=math.log2(pool),
        min_rank_planted=min(r.rank for r in planted), planted_in_prompt=sum(r.in_prompt for r in planted),
        planted_count=len(planted), reference_count=len(refs), secrets_in_prompt=secrets_in_prompt,
        greedy_extracted=sum(greedy) if greedy else None, min_guesses_planted=min(known) if known else None,
        protocol_mean_rank=float(ranks.mean()) if refs else None,
        protocol_null_mean_rank=len(refs) / 2 if refs else None,
        protocol_rank_zero_count=int(np.sum(ranks == 0)) if refs else None,
        p_values={name: PValueRecord(p=p.p, log10_p=p.log10_p, method=p.method, monte_carlo_error=p.monte_carlo_error)
                  for name, p in p_values.items()},
    )


def exposure_intervals(rows: Sequence[CanaryScore], rng: np.random.Generator) -> tuple[Interval, Interval]:
    """Betting intervals of the planted canaries' and the references' mean exposure (bounded in [0, log2 pool]),
    the first draws of a scoring's seeded generator (so a stored report's are drawn again from its canary seed)."""
    top = math.log2(max(r.rank_pool for r in rows))
    planted = np.array([r.exposure_bits for r in rows if r.planted])
    refs = np.array([r.exposure_bits for r in rows if not r.planted])
    planted_ci = betting_mean_ci(planted, low=0.0, high=top, rng=rng, confidence=CONFIDENCE)
    refs_ci = betting_mean_ci(refs, low=0.0, high=top, rng=rng, confidence=CONFIDENCE) if refs.size else None
    return planted_ci, refs_ci


# The delta at which a report reads its mu bound as the epsilon of a Gaussian mechanism (the gate: at a claim's).
GDP_DELTA = 1e-5


def gdp_of(rows: Sequence[CanaryScore], *, inclusion: Inclusion, delta: float = GDP_DELTA) -> GdpBound | None:
    """The f-DP (Gaussian) mu bound where each canary was planted by a coin (from every candidate's score), read as
    epsilon at `delta` for a Gaussian mechanism; None for other designs."""
    if inclusion != "randomized":
        return None
    return gdp_randomized_inclusion(scores=np.array([r.logprob_bits for r in rows]),
                                    planted=np.array([r.planted for r in rows]), delta=delta)


def epsilon_of(
    rows: Sequence[CanaryScore], *, space_size: int, inclusion: Inclusion, delta: float = 0.0,
) -> EpsilonBound:
    """The epsilon bound of the design at `delta`: randomized inclusion when each canary was planted by a coin (from
    every candidate's score), else the one-run bound on the planted canaries' known ranks (unknown ones count as
    |S|)."""
    if inclusion == "randomized":
        return epsilon_randomized_inclusion(scores=np.array([r.logprob_bits for r in rows]),
                                            planted=np.array([r.planted for r in rows]), delta=delta)
    ranks = np.array([space_size if r.guesses is None else r.guesses for r in rows if r.planted])
    return epsilon_lower_bound(ranks=ranks, space_size=space_size, design="one_run", delta=delta)


def total_leak(rows: Sequence[CanaryScore]) -> list[CanaryScore]:
    """The rows as the strongest leak would leave them: every planted canary scored above every other and guessed
    first. The bounds over them are the most these canaries can ever certify (a claim above that cannot be refuted
    by them, however much leaks)."""
    return [r.model_copy(update={"logprob_bits": 0.0, "guesses": 1}) if r.planted else
            r.model_copy(update={"logprob_bits": -1.0}) for r in rows]


def fit_note(fit: SkewnormFit, references: int) -> str:
    """What the extrapolation fit says about its own estimates."""
    note = (
        "poor fit (calibrated Kolmogorov-Smirnov p < 0.05): do not rely on extrapolated exposure" if fit.poor_fit else
        "fit not rejected (calibrated Kolmogorov-Smirnov p >= 0.05); an estimate beside the rank-based exposure, "
        "not a bound, and an extrapolation wherever a canary lies beyond every reference"
    )
    if fit.references_fitted is not None and fit.references_fitted != references:
        note += f"; fitted to a random {fit.references_fitted:,} of the {references:,} references"
    return note


def rank_interval_note(mode: RunMode, methods: Sequence[str], search: str = "") -> str:
    """How the rank intervals were obtained, for the report: certified ones only where a best-first search ran
    (`search` says how it went, or why it did not)."""
    if mode == "exact":
        return "exact: every secret of the space scored"
    searched = search.startswith("best-first search") and not search.startswith(("best-first search not",))
    used = sorted(set(methods))
    parts = []
    if searched and "certified" in used:
        parts.append("certified intervals follow from the model's own probabilities (best-first search)")
    elif not searched:
        parts.append(f"no best-first search ran ({search or 'not asked'}), so a canary the references do not place "
                     "spans the whole space")
    if "sampled" in used:
        parts.append(f"sampled ones are Clopper-Pearson intervals from the references at {RANK_CONFIDENCE:.0%} "
                     "confidence")
    return f"{', '.join(used)}: " + "; ".join(parts)
