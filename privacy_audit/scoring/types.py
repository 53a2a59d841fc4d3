"""The scoring stage's result types, as stored in reports (no numpy maths or scipy: reading or gating a
report imports only these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Mode = Literal["auto", "exact", "bounded", "sampled"]
Method = Literal["exact", "certified", "sampled"]


class CanaryScore(BaseModel):
    """Raw and derived measurements of one canary (planted) or reference (never planted).

    `rank` is among `rank_pool` candidates: the whole space (exact; bounded, where it is the certified
    upper end, so `exposure_bits` and `p_value` are the conservative ones) or the references (sampled).
    `rank_lower`..`rank_upper` is the rank over the whole space, by `exposure_method`: exact, certified
    (from the model's probabilities alone) or sampled (Clopper-Pearson from the references).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    planted: bool
    logprob_bits: float
    tokens: int
    rank: int
    rank_pool: int
    space_size: int
    exposure_bits: float
    p_value: float
    in_prompt: bool
    guesses: int | None = None
    greedy_extracted: bool | None = None
    extrapolated_exposure_bits: float | None = None
    extrapolated_beyond_references: bool | None = None
    normalised_logprob_bits: float | None = None
    protocol_rank: int | None = None
    secret: str | None = None
    rank_lower: int
    rank_upper: int
    exposure_bits_lower: float
    exposure_bits_upper: float
    exposure_method: Method


class PValueRecord(BaseModel):
    """A p-value with its log10 (finite where the p-value underflows to 0) and the null it was computed under."""

    model_config = ConfigDict(frozen=True)

    p: float
    log10_p: float
    method: str


class Summary(BaseModel):
    """Planted canaries against references scored the same way, with the null baseline.

    The p-values are exact under the null of the design: canaries ranked against one shared set of
    references are exchangeable with them (permutation null, ties against the canaries).
    """

    model_config = ConfigDict(frozen=True)

    max_exposure_bits: float
    mean_exposure_planted: float
    mean_exposure_references: float | None
    null_mean_exposure_bits: float
    max_possible_exposure_bits: float
    min_rank_planted: int
    planted_in_prompt: int
    planted_count: int
    reference_count: int
    planted_vs_references_p_value: float | None
    greedy_extracted: int | None = None
    min_guesses_planted: int | None = None
    protocol_mean_rank: float | None = None
    protocol_null_mean_rank: float | None = None
    protocol_mean_rank_p_value: float | None = None
    protocol_rank_zero_count: int | None = None
    protocol_rank_zero_p_value: float | None = None
    p_values: dict[str, PValueRecord] = {}


class SkewnormFit(BaseModel):
    """A skew-normal fit of reference log-perplexities, with a Kolmogorov-Smirnov test calibrated by a
    parametric bootstrap (each bootstrap sample refitted, so the test keeps its level).

    `poor_fit`: the fit is rejected at the 5% level, so its extrapolated exposures must not be trusted.
    `references_fitted`: how many references it was fitted to (a uniform random subsample of a larger set).
    """

    model_config = ConfigDict(frozen=True)

    a: float
    loc: float
    scale: float
    ks_statistic: float
    ks_p_value: float
    poor_fit: bool
    references_fitted: int | None = None
    calibration: str = "parametric bootstrap"


class EpsilonBound(BaseModel):
    """Largest epsilon the canaries' ranks certify at `confidence`, with the bound's design and assumptions."""

    model_config = ConfigDict(frozen=True)

    epsilon: float
    threshold_rank: int | None
    hits: int | None
    fpr: float
    delta: float
    confidence: float
    canaries: int
    grid: tuple[int, ...]
    design: str
    assumptions: str
    tpr_lower: float | None = None


class Statistics(BaseModel):
    """Uncertainty and derived bounds; every input is in the per-canary rows of the report."""

    model_config = ConfigDict(frozen=True)

    mean_exposure_planted_ci: tuple[float, float] | None
    mean_exposure_references_ci: tuple[float, float] | None
    extrapolation: SkewnormFit | None
    extrapolation_note: str
    epsilon: EpsilonBound | None
    interval_method: str = "percentile bootstrap"
    confidence: float = 0.95
    rank_interval_note: str = ""
    sampled_rank_lower_by_references_above: tuple[int, ...] | None = None


class TokenBoundary(BaseModel):
    """How the context was cut for canonical tokens, and the check that proved it (DESIGN.md §4)."""

    model_config = ConfigDict(frozen=True)

    rule: str
    head_tokens: int
    tail_chars: int
    checked: int
    mismatched: int
    fallback: bool
    joint_scored: int


class ScoringResult(BaseModel):
    """Everything `score_prompt` measured."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    separator: str
    search: str
    canaries: tuple[CanaryScore, ...]
    summary: Summary
    statistics: Statistics
    boundary: TokenBoundary


class LeakRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    teacher: int
    unit: int
    chars: int
    distance: float
    verbatim: bool


class LeakReport(BaseModel):
    """The paper's distance for every generated unit, against the private prompt it was generated from."""

    model_config = ConfigDict(frozen=True)

    units: int
    verbatim_copies: int
    verbatim_rate: float
    mean_distance: float
    min_distance: float
    rows: tuple[LeakRow, ...]


class Reconstruction(BaseModel):
    """Length-normalised log2-likelihoods (bits per token) of members and non-members, and their ROC."""

    model_config = ConfigDict(frozen=True)

    member_scores: tuple[float, ...]
    non_member_scores: tuple[float, ...]
    auc: float
    auc_ci: tuple[float, float] | None
    tpr_at_1pct_fpr: float
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]


class ProtocolSummary(BaseModel):
    """T independent Secret Sharer trials: the ranks, their mean and rank-0 count, with exact p-values."""

    model_config = ConfigDict(frozen=True)

    trials: int
    candidates: int
    ranks: tuple[int, ...]
    mean_rank: float
    null_mean_rank: float
    mean_rank_p: PValueRecord
    rank_zero_count: int
    null_rank_zero_count: float
    rank_zero_p: PValueRecord
    canary_in_prompt: int
