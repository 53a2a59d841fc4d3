"""Verbatim and fuzzy leaks: how close generated text is to the private text it was made from.

The paper's distance (Mohtashami et al. 2023, App. D): the minimum Levenshtein distance with no
substitutions (insertions and deletions only) between a generated example and any substring of the
teacher's private prompt, divided by the example's length (so at most 1; 0 is a verbatim copy).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from privacy_audit.errors import InputError
from privacy_audit.pipelines.base import RoundArtifact, TeacherArtifact
from privacy_audit.scoring.types import LeakReport, LeakRow


def substring_indel_distance(example: str, text: str) -> int:
    """min over substrings t of `text` of the insert/delete edit distance between `example` and t.

    Semi-global dynamic programme, one numpy pass per character of `example`: D[i][j] is the best
    cost of aligning example[:i] with a substring of text ending at j; starting anywhere is free, so
    D[0][j] = 0, and a row is min(deletion from above, diagonal match) then a running min for
    insertions (D[i][j] = min_k (E[k] + j - k), computed with a cumulative minimum).
    """
    return substring_indel_distances([example], text)[0]


def substring_indel_distances(examples: Sequence[str], text: str) -> list[int]:
    """`substring_indel_distance` of each example against one text, the rows of the examples' common prefix
    computed once (canaries share their template's prefix, so each costs only its secret and what follows)."""
    n = len(text)
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32) if n else np.zeros(0, dtype=np.uint32)
    cols = np.arange(n + 1, dtype=np.int64 if n >= 2**30 else np.int32)
    far = cols.dtype.type(np.iinfo(cols.dtype).max // 4)

    def advance(row: np.ndarray, chars: str, start: int) -> np.ndarray:
        row, cand = row.copy(), np.empty_like(row)
        for i, ch in enumerate(chars, start=start + 1):
            np.add(row, 1, out=cand)
            np.minimum(cand[1:], np.where(codes == ord(ch), row[:-1], far), out=cand[1:])
            cand[0] = i
            cand -= cols
            np.minimum.accumulate(cand, out=row)
            row += cols
        return row

    shared = os.path.commonprefix(list(examples))
    after_shared = advance(np.zeros(n + 1, dtype=cols.dtype), shared, 0)
    return [int(advance(after_shared, e[len(shared):], len(shared)).min()) for e in examples]


def normalised_distance(example: str, text: str) -> float:
    """The paper's distance: substring_indel_distance / len(example), in [0, 1]."""
    if not example:
        raise InputError("cannot measure the distance of an empty example")
    return substring_indel_distance(example, text) / len(example)


def leak_rows(units: list[str], private_text: str) -> list[dict[str, float | bool | int]]:
    """Distance and verbatim flag for each generated unit (an example, or a paragraph of instructions)."""
    rows = []
    for i, unit in enumerate(units):
        if not unit.strip():
            continue
        d = normalised_distance(unit, private_text)
        rows.append({"unit": i, "chars": len(unit), "distance": d, "verbatim": unit in private_text})
    return rows


def leak_report(artifacts: Sequence[TeacherArtifact | RoundArtifact]) -> LeakReport | None:
    """Leaks of a teaching output's teacher artifacts: each generated unit against the private text it was made from."""
    rows = [
        LeakRow(teacher=a.teacher, **row)  # type: ignore[arg-type]
        for a in artifacts
        if isinstance(a, TeacherArtifact)
        for row in leak_rows(list(a.generated), a.private)
    ]
    if not rows:
        return None
    distances = np.array([r.distance for r in rows])
    copies = sum(r.verbatim for r in rows)
    return LeakReport(
        units=len(rows), verbatim_copies=copies, verbatim_rate=copies / len(rows),
        mean_distance=float(distances.mean()), min_distance=float(distances.min()), rows=tuple(rows),
    )
