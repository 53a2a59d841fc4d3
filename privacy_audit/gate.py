"""The CI gate: a pure function from a report and thresholds to pass/fail with one reason per failure."""

from __future__ import annotations

from dataclasses import dataclass, field

from privacy_audit.errors import InputError
from privacy_audit.reports.schema import AuditReport, GateOutcome


@dataclass(frozen=True)
class Thresholds:
    """Limits a report must stay within; None disables a rule."""

    max_exposure_bits: float | None = None
    max_verbatim: int | None = None

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: tuple[str, ...] = field(default_factory=tuple)

    def outcome(self, thresholds: Thresholds) -> GateOutcome:
        return GateOutcome(passed=self.passed, failures=self.failures, thresholds=thresholds.as_dict())


def gate(report: AuditReport, thresholds: Thresholds) -> GateResult:
    """Check every planted canary against the thresholds; references never fail the gate."""
    if not thresholds.as_dict():
        raise InputError("no gate threshold given; pass --max-exposure BITS (and/or --max-verbatim N)")
    if thresholds.max_exposure_bits is not None and thresholds.max_exposure_bits < 0:
        raise InputError("--max-exposure must be >= 0 bits")
    failures = []
    for c in report.canaries:
        if not c.planted:
            continue
        if thresholds.max_exposure_bits is not None and c.exposure_bits > thresholds.max_exposure_bits:
            failures.append(
                f"{c.id}: exposure {c.exposure_bits:.2f} bits > {thresholds.max_exposure_bits:g} "
                f"(rank {c.rank:,} of {c.rank_pool:,}, p = {c.p_value:.2g})"
            )
    if thresholds.max_verbatim is not None and report.summary.planted_in_prompt > thresholds.max_verbatim:
        failures.append(
            f"{report.summary.planted_in_prompt} planted secrets appear verbatim in the teaching prompt > {thresholds.max_verbatim}"
        )
    return GateResult(passed=not failures, failures=tuple(failures))
