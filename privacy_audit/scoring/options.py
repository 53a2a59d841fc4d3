"""How a prompt is scored: one typed bundle, built once from CLI flags or a config and passed down whole.

Every scoring default lives here and nowhere else.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from privacy_audit.errors import InputError, first_problem

from privacy_audit.scoring.types import Mode


class ScoringOptions(BaseModel):
    """Mode, separator, limits and what to measure besides the ranks."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    mode: Mode = Field(
        "auto", description="auto: exact up to max_exact, else bounded; exact: rank over the whole space; "
        "bounded: certified rank intervals by best-first search; sampled: rank among the references",
    )
    separator: str = Field("\n", description="text between the teaching prompt and each candidate")
    max_exact: int = Field(1_000_000, ge=1, le=100_000_000, description="largest space scored in exact mode")
    include_secrets: bool = Field(False, description="put secrets and the prompt in the report")
    extraction: bool = Field(True, description="greedy decoding and best-first guesses for planted canaries")
    search_budget: int | None = Field(
        None, ge=0,
        description="token steps best-first search may spend (bounded and sampled modes; default: sized to the space)",
    )
    extrapolation: bool = Field(
        True,
        description="skew-normal fit of the references (with its calibrated test); never in bounded mode, whose "
                    "intervals replace it",
    )

    @classmethod
    def checked(cls, **values: object) -> ScoringOptions:
        """Options from flags or a program, each against its range here (an InputError naming the option)."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InputError(f"scoring option {first_problem(exc)}") from None


DEFAULT_SCORING = ScoringOptions()
