"""The scoring stage's result types, as stored in reports (no numpy maths or scipy: reading or gating a
report imports only these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["auto", "exact", "bounded", "sampled"]
RunMode = Literal["exact", "bounded", "sampled"]
Method = Literal["exact", "certified", "sampled"]
# Every number a report stores is finite (NaN and infinities are refused when a report is built or read);
# these add the ranges the measurements live in, so no gate rule ever sees a value outside them.
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Bits = Annotated[float, Field(ge=0.0)]
Count = Annotated[int, Field(ge=0)]
Rank = Annotated[int, Field(ge=1)]
# log10 of a p-value: -inf only where the p-value underflowed to 0
Log10P = Annotated[float, Field(le=0.0, allow_inf_nan=True)]
FROZEN = ConfigDict(frozen=True, allow_inf_nan=False)


class CanaryScore(BaseModel):
    """Raw and derived measurements of one canary (planted) or reference (never planted).

    `rank` is among `rank_pool` candidates: the whole space (exact; bounded, where it is the certified
    upper end, so `exposure_bits` and `p_value` are the conservative ones) or the references (sampled).
    `rank_lower`..`rank_upper` is the rank over the whole space, by `exposure_method`: exact, certified
    (from the model's probabilities alone) or sampled (Clopper-Pearson from the references).
    `verbatim_p_value` (planted canaries): the chance that a never-planted secret appears in the prompt as this
    one does (the space's members found in the prompt, over |S|), or 1 when it does not appear.
    `similarity`: 1 - the fuzzy-leak distance of the canary's text to its closest part of the prompt (1: verbatim);
    `similarity_p_value` (planted canaries, with references): its exact rank among the references' similarities,
    (1 + references at least as similar) / (references + 1).
    """

    model_config = FROZEN

    id: str
    planted: bool
    logprob_bits: float
    tokens: Rank
    rank: Rank
    rank_pool: Rank
    space_size: Rank
    exposure_bits: Bits
    p_value: Probability
    in_prompt: bool
    guesses: Rank | None = None
    greedy_extracted: bool | None = None
    extrapolated_exposure_bits: Bits | None = None
    extrapolated_beyond_references: bool | None = None
    normalised_logprob_bits: float | None = None
    protocol_rank: Count | None = None
    secret: str | None = None
    rank_lower: Rank
    rank_upper: Rank
    exposure_bits_lower: Bits
    exposure_bits_upper: Bits
    exposure_method: Method
    verbatim_p_value: Probability | None = None
    similarity: Probability | None = None
    similarity_p_value: Probability | None = None


class PValueRecord(BaseModel):
    """A p-value with its log10 (finite where the p-value underflows to 0) and the null it was computed under."""

    model_config = FROZEN

    p: Probability
    log10_p: Log10P
    method: str
    monte_carlo_error: Probability | None = None


class Summary(BaseModel):
    """Planted canaries against references scored the same way, with the null baseline.

    The p-values are exact under the null of the design: canaries ranked against one shared set of
    references are exchangeable with them (permutation null, ties against the canaries); the planted
    canaries found verbatim in the prompt against the `secrets_in_prompt` members of the space it holds
    (hypergeometric: k canaries drawn from |S|).
    """

    model_config = FROZEN

    max_exposure_bits: Bits
    mean_exposure_planted: Bits
    mean_exposure_references: Bits | None
    null_mean_exposure_bits: Bits
    max_possible_exposure_bits: Bits
    min_rank_planted: Rank
    planted_in_prompt: Count
    planted_count: Rank
    reference_count: Count
    planted_vs_references_p_value: Probability | None
    secrets_in_prompt: Count | None = None
    greedy_extracted: Count | None = None
    min_guesses_planted: Rank | None = None
    protocol_mean_rank: Bits | None = None
    protocol_null_mean_rank: Bits | None = None
    protocol_mean_rank_p_value: Probability | None = None
    protocol_rank_zero_count: Count | None = None
    protocol_rank_zero_p_value: Probability | None = None
    p_values: dict[str, PValueRecord] = {}


class SkewnormFit(BaseModel):
    """A skew-normal fit of reference log-perplexities, with a Kolmogorov-Smirnov test calibrated by a
    parametric bootstrap (each bootstrap sample refitted, so the test keeps its level).

    `poor_fit`: the fit is rejected at the 5% level, so its extrapolated exposures must not be trusted.
    `references_fitted`: how many references it was fitted to (a uniform random subsample of a larger set).
    """

    model_config = FROZEN

    a: float
    loc: float
    scale: float
    ks_statistic: Probability
    ks_p_value: Probability
    poor_fit: bool
    references_fitted: Rank | None = None
    calibration: str = "parametric bootstrap"
    # how many bootstrap samples were refitted (sequential: fewer the farther the fit is from rejection)
    bootstrap_refits: Count | None = None


SEQUENTIAL_BOOTSTRAP = "sequential parametric bootstrap, Besag-Clifford"


class EpsilonBound(BaseModel):
    """Largest epsilon the canaries' ranks certify at `confidence`, with the bound's design and assumptions."""

    model_config = FROZEN

    epsilon: Bits
    threshold_rank: Rank | None
    hits: Count | None
    fpr: Probability
    delta: Probability
    confidence: Probability
    canaries: Rank
    grid: tuple[Rank, ...]
    design: str
    assumptions: str
    tpr_lower: Probability | None = None


class Statistics(BaseModel):
    """Uncertainty and derived bounds; every input is in the per-canary rows of the report."""

    model_config = FROZEN

    mean_exposure_planted_ci: tuple[float, float] | None
    mean_exposure_references_ci: tuple[float, float] | None
    extrapolation: SkewnormFit | None
    extrapolation_note: str
    epsilon: EpsilonBound | None
    interval_method: str
    confidence: Probability = 0.95
    rank_interval_note: str = ""
    sampled_rank_lower_by_references_above: tuple[Rank, ...] | None = None


class TokenBoundary(BaseModel):
    """How the context was cut for canonical tokens (every score is the one the whole text tokenized at
    once gets), and the check that proved it."""

    model_config = FROZEN

    rule: str
    head_tokens: Count
    tail_chars: Count
    checked: Count
    mismatched: Count
    fallback: bool
    joint_scored: Count


class ScoreCheck(BaseModel):
    """Scores computed twice and compared (a served model's stability: another order and batch; a lower precision's
    error: rescored in float32): the largest difference, the tolerance, and whether it held. A report whose check
    failed fails the gate."""

    model_config = FROZEN

    check: Literal["stability", "precision"]
    compared: Rank
    max_difference_bits: Bits
    tolerance_bits: Bits
    passed: bool
    note: str = ""


class ScoringResult(BaseModel):
    """Everything `score_prompt` measured."""

    model_config = FROZEN

    mode: Mode
    separator: str
    search: str
    canaries: tuple[CanaryScore, ...]
    summary: Summary
    statistics: Statistics
    boundary: TokenBoundary
    checks: tuple[ScoreCheck, ...] = ()


class LeakRow(BaseModel):
    model_config = FROZEN

    teacher: Count
    unit: Count
    chars: Rank
    distance: Probability
    verbatim: bool


class LeakReport(BaseModel):
    """The paper's distance for every generated unit, against the private prompt it was generated from."""

    model_config = FROZEN

    units: Rank
    verbatim_copies: Count
    verbatim_rate: Probability
    mean_distance: Probability
    min_distance: Probability
    rows: tuple[LeakRow, ...]


class Reconstruction(BaseModel):
    """Length-normalised log2-likelihoods (bits per token) of members and non-members, and their ROC."""

    model_config = FROZEN

    member_scores: tuple[float, ...]
    non_member_scores: tuple[float, ...]
    auc: Probability
    auc_ci: tuple[Probability, Probability] | None
    tpr_at_1pct_fpr: Probability
    fpr: tuple[Probability, ...]
    tpr: tuple[Probability, ...]
    # (reports before this field have none)
    tpr_at_0_1pct_fpr: Probability | None = None


class ProtocolSummary(BaseModel):
    """T independent Secret Sharer trials: the ranks, their mean and rank-0 count, with exact p-values."""

    model_config = FROZEN

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
    # The trials as a membership test, "flag the canary when its rank is below k": each canary beats this fraction
    # of its comparisons on average (a tie counts half), and its true-positive rate where at most a fraction
    # alpha of never-planted candidates would be flagged (k = floor(alpha N); None when N < 1 / alpha).
    auc: Probability | None = None
    tpr_at_1pct_fpr: Probability | None = None
    tpr_at_0_1pct_fpr: Probability | None = None
