"""The paper's distance of generated text to private text (Mohtashami et al. 2023, App. D): the minimum Levenshtein
distance with no substitutions (insertions and deletions only) between an example and any substring of a text,
divided by the example's length (so at most 1; 0 is a verbatim copy)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from privacy_audit.errors import InputError


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
