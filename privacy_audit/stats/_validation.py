"""The one input check of the statistics: a flat float64 array of finite values, long enough, or an InputError."""

from __future__ import annotations

import numpy as np

from privacy_audit.errors import InputError


def finite(name: str, values: object, *, min_size: int = 0) -> np.ndarray:
    """`values` as a 1-D float64 array; an InputError naming `name` when a value is not finite or there are fewer
    than `min_size` of them."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite")
    if arr.size < min_size:
        raise InputError(f"{name} needs at least {min_size} values, got {arr.size}")
    return arr
