"""The scoring stage's result types, as stored in reports: each canary's row, the summary, the statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from privacy_audit.scoring.registry import CANARY_FIGURES, SUMMARY_TESTS, Value
from privacy_audit.stats.epsilon import EpsilonBound
from privacy_audit.stats.fdp import GdpBound
from privacy_audit.stats.fit import SkewnormFit

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
# An unknown field is refused, never ignored: a report says what this version reads, or it is not read.
FROZEN = ConfigDict(frozen=True, allow_inf_nan=False, extra="forbid")


class CanaryScore(BaseModel):
    """Raw and derived measurements of one canary (planted) or reference (never planted).

    `rank` is among `rank_pool` candidates: the whole space (exact; bounded, where it is the certified
    upper end, so `exposure_bits` and `p_value` are the conservative ones) or the references (sampled).
    `rank_lower`..`rank_upper` is the rank over the whole space, by `exposure_method`: exact, certified
    (from the model's probabilities alone) or sampled (Clopper-Pearson from the references).
    Every other field is a registered per-canary figure (`scoring.figures`: greedy extraction, the paper's rank,
    the verbatim and similarity tests, extrapolated exposure, and any figure registered since): each is validated
    by its figure's type and range, None where it was not measured, and an unknown one is refused.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, extra="allow")

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
    normalised_logprob_bits: float | None = None
    secret: str | None = None
    rank_lower: Rank
    rank_upper: Rank
    exposure_bits_lower: Bits
    exposure_bits_upper: Bits
    exposure_method: Method

    @model_validator(mode="after")
    def _figures(self) -> CanaryScore:
        extra = self.__pydantic_extra__
        if extra is None:  # never with extra="allow"; keeps the type checker content
            return self
        figures = CANARY_FIGURES
        unknown = sorted(set(extra) - set(figures))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a registered per-canary figure")
        for name, figure in figures.items():
            extra[name] = figure.validate(extra.get(name))
        return self

    def figure(self, name: str) -> Value | None:
        """The value of the registered figure `name` (None where it was not measured)."""
        return (self.__pydantic_extra__ or {}).get(name)

    def with_figures(self, values: Mapping[str, Value | None]) -> CanaryScore:
        """This row with registered figures' values set (each validated by its figure)."""
        return CanaryScore(**{**self.model_dump(), **values})


class PValueRecord(BaseModel):
    """A p-value with its log10 (finite where the p-value underflows to 0) and the null it was computed under."""

    model_config = FROZEN

    p: Probability
    log10_p: Log10P
    method: str
    monte_carlo_error: Probability | None = None


class Summary(BaseModel):
    """Planted canaries against references scored the same way, with the null baseline.

    `p_values` holds each registered summary test the design supports, by name (`scoring.figures`): exact under
    the null of the design (canaries ranked against one shared set of references are exchangeable with them;
    the planted canaries found verbatim in the prompt against the `secrets_in_prompt` members of the space it
    holds), or by Monte Carlo with its error recorded.
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
    secrets_in_prompt: Count | None = None
    greedy_extracted: Count | None = None
    min_guesses_planted: Rank | None = None
    protocol_mean_rank: Bits | None = None
    protocol_null_mean_rank: Bits | None = None
    protocol_rank_zero_count: Count | None = None
    p_values: dict[str, PValueRecord] = {}

    @field_validator("p_values")
    @classmethod
    def _registered(cls, value: dict[str, PValueRecord]) -> dict[str, PValueRecord]:
        """Each p-value is a registered summary test's (`scoring.figures`)."""
        unknown = sorted(set(value) - set(SUMMARY_TESTS))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a registered summary test")
        return value


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
    gdp: GdpBound | None = None  # the f-DP (Gaussian) bound, for randomized inclusion


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


class MembershipRoc(BaseModel):
    """One membership score's ROC, "higher score = member": the private examples (members) against held-out ones,
    with the AUC's interval and the true-positive rates at 1% and 0.1% false positives (`stats.roc`)."""

    model_config = FROZEN

    name: str
    member_scores: tuple[float, ...]
    non_member_scores: tuple[float, ...]
    auc: Probability
    auc_ci: tuple[Probability, Probability] | None
    tpr_at_1pct_fpr: Probability
    tpr_at_0_1pct_fpr: Probability
    fpr: tuple[Probability, ...]
    tpr: tuple[Probability, ...]


class NotRun(BaseModel):
    """A membership attack a run could not make, and why (the scorer lacks what it needs)."""

    model_config = FROZEN

    name: str
    reason: str


class Reconstruction(BaseModel):
    """Membership inference on the teacher's private examples against held-out ones: each registered attack's ROC
    (`scoring.membership`, the loss first), and the blind control's, a classifier that reads only the texts
    (None where the split is too small to cross-validate). Heuristic evidence, beside the canaries' sound tests."""

    model_config = FROZEN

    attacks: tuple[MembershipRoc, ...] = Field(min_length=1)
    blind: MembershipRoc | None
    not_run: tuple[NotRun, ...] = ()


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
