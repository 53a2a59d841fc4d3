"""Compare two reports: what got worse or better, and whether the change is beyond noise."""

from __future__ import annotations

import math
from dataclasses import dataclass

from privacy_audit.canaries.spaces import brief
from privacy_audit.errors import InputError
from privacy_audit.reports.schema import AuditReport
from privacy_audit.scoring.measures import similarity


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


@dataclass(frozen=True)
class Change:
    """One measure in both runs; `worse` follows the measure's direction (more exposure is worse)."""

    measure: str
    old: float | None
    new: float | None
    worse: bool
    better: bool
    beyond_noise: bool | None
    regression: bool

    def line(self) -> str:
        word = "worse" if self.worse else "better" if self.better else "same"
        noise = (
            ""
            if self.beyond_noise is None
            else (" (beyond noise: CIs do not overlap)" if self.beyond_noise else " (within noise: CIs overlap)")
        )
        flag = "REGRESSION " if self.regression else ""
        return f"{flag}{word}: {self.measure} {_fmt(self.old)} -> {_fmt(self.new)}{noise}"


@dataclass(frozen=True)
class Comparison:
    changes: tuple[Change, ...]
    warnings: tuple[str, ...]

    @property
    def regressed(self) -> bool:
        return any(c.regression for c in self.changes)


def _measures(r: AuditReport) -> dict[str, tuple[float | None, tuple[float, float] | None, bool]]:
    """name -> (value, 95% CI or None, higher_is_worse)."""
    s, st = r.summary, r.statistics
    out: dict[str, tuple[float | None, tuple[float, float] | None, bool]] = {
        "max exposure, planted (bits)": (s.max_exposure_bits, None, True),
        "mean exposure, planted (bits)": (s.mean_exposure_planted, st.mean_exposure_planted_ci if st else None, True),
        "planted secrets verbatim in prompt": (float(s.planted_in_prompt), None, True),
        "best similarity to the prompt, planted": (
            max((v for v in map(similarity.of, r.canaries) if v is not None and not isinstance(v, bool)), default=None),
            None, True,
        ),
        "planted secrets recovered by greedy decoding": (
            None if s.greedy_extracted is None else float(s.greedy_extracted), None, True,
        ),
        "fewest guesses to a planted secret": (
            None if s.min_guesses_planted is None else float(s.min_guesses_planted), None, False,
        ),
        "empirical epsilon lower bound": (st.epsilon.epsilon if st and st.epsilon else None, None, True),
    }
    if r.leaks is not None:
        out["generated units copied verbatim (rate)"] = (r.leaks.verbatim_rate, None, True)
        out["mean distance to private text"] = (r.leaks.mean_distance, None, False)
    if r.reconstruction is not None:
        for attack in r.reconstruction.attacks:
            out[f"membership AUC ({attack.name})"] = (attack.auc, attack.auc_ci, True)
    return out


def compare(old: AuditReport, new: AuditReport, *, tolerance: float = 0.5) -> Comparison:
    """Each shared measure's change. A regression is worse by more than `tolerance` (absolute units of
    the measure) and, where both runs carry confidence intervals, beyond noise (the intervals do not overlap)."""
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InputError(f"--tolerance must be a finite number >= 0, got {tolerance!r}")
    warnings = []
    if (old.run.space, old.run.template) != (new.run.space, new.run.template):
        warnings.append(
            f"the runs use different canaries ({old.run.template!r} in {brief(old.run.space)} vs {new.run.template!r} "
            f"in {brief(new.run.space)})"
        )
    if old.run.model.name != new.run.model.name:
        warnings.append(f"the runs use different scoring models ({old.run.model.name} vs {new.run.model.name})")
    a, b = _measures(old), _measures(new)
    changes = []
    for name in a:
        if name not in b:
            continue
        (va, ca, up), (vb, cb, _) = a[name], b[name]
        if va is None or vb is None:
            changes.append(Change(name, va, vb, False, False, None, False))
            continue
        delta = (vb - va) if up else (va - vb)
        beyond = None if ca is None or cb is None else (ca[1] < cb[0] or cb[1] < ca[0])
        worse, better = delta > 0, delta < 0
        regression = worse and delta > tolerance and beyond is not False
        changes.append(Change(name, va, vb, worse, better, beyond, regression))
    return Comparison(tuple(changes), tuple(warnings))
