"""Verbatim and fuzzy leaks: how close each generated unit is to the private text it was made from, by the
paper's distance (`stats.distance`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from privacy_audit.pipelines.base import RoundArtifact, TeacherArtifact
from privacy_audit.scoring.types import LeakReport, LeakRow
from privacy_audit.stats.distance import normalised_distance


def leak_rows(units: Sequence[str], private_text: str, *, teacher: int = 0) -> list[LeakRow]:
    """Distance and verbatim flag for each generated unit (an example, or a paragraph of instructions)."""
    return [
        LeakRow(teacher=teacher, unit=i, chars=len(unit), distance=normalised_distance(unit, private_text),
                verbatim=unit in private_text)
        for i, unit in enumerate(units) if unit.strip()
    ]


def summarise_leaks(rows: Sequence[LeakRow]) -> LeakReport | None:
    """The leak report of these rows: copies, their rate, mean and least distance (None without a unit). A stored
    report's figures are checked by this same function on its rows."""
    if not rows:
        return None
    distances = np.array([r.distance for r in rows])
    copies = sum(r.verbatim for r in rows)
    return LeakReport(
        units=len(rows), verbatim_copies=copies, verbatim_rate=copies / len(rows),
        mean_distance=float(distances.mean()), min_distance=float(distances.min()), rows=tuple(rows),
    )


def leak_report(artifacts: Sequence[TeacherArtifact | RoundArtifact]) -> LeakReport | None:
    """Leaks of a teaching output's teacher artifacts: each generated unit against the private text it was made from."""
    return summarise_leaks([
        row for a in artifacts if isinstance(a, TeacherArtifact)
        for row in leak_rows(a.generated, a.private, teacher=a.teacher)
    ])
