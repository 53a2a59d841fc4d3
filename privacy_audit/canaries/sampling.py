"""Uniform sampling of distinct indices without replacement from spaces of any size (beyond 2^64 too), unbiased."""

from __future__ import annotations

import numpy as np

from privacy_audit.errors import InputError


def sample_indices_array(size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` distinct uniform indices in [0, size) as a uint64 array, for size <= 2^64 (draw order kept).

    numpy's bounded integers are unbiased (rejection, no modulo bias); repeats are dropped and redrawn.
    """
    if n < 0 or n > size:
        raise InputError(f"cannot draw {n} distinct secrets from a space of {size}; use a larger space")
    if size <= 2**62:
        return rng.choice(size, size=n, replace=False).astype(np.uint64)
    out = np.empty(0, dtype=np.uint64)
    while len(out) < n:
        draws = np.concatenate([out, rng.integers(0, size, size=n - len(out), dtype=np.uint64, endpoint=False)])
        _, first = np.unique(draws, return_index=True)
        out = draws[np.sort(first)]
    return out[:n]


def sample_indices(size: int, n: int, rng: np.random.Generator) -> list[int]:
    """`n` distinct integers uniform in [0, size), for any size (Python int), in draw order.

    Up to 2^64: `sample_indices_array`. Beyond: rejection sampling on ceil(log2 size) random bits
    (no modulo bias), duplicates redrawn.
    """
    if n < 0:
        raise InputError(f"cannot draw {n} secrets")
    if n > size:
        raise InputError(f"cannot draw {n} distinct secrets from a space of {size}; use a larger space")
    if size <= 2**64:
        return [int(i) for i in sample_indices_array(size, n, rng)]
    bits = (size - 1).bit_length()
    nbytes = (bits + 7) // 8
    mask = (1 << bits) - 1
    seen: set[int] = set()
    out: list[int] = []
    while len(out) < n:
        value = int.from_bytes(rng.bytes(nbytes), "big") & mask
        if value < size and value not in seen:
            seen.add(value)
            out.append(value)
    return out
