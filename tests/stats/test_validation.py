"""The statistics' one input check."""

from __future__ import annotations

import numpy as np
import pytest

from privacy_audit.errors import InputError
from privacy_audit.stats._validation import finite


def test_finite_flattens_and_refuses_nan_inf_and_short_inputs():
    assert finite("x", [[1, 2], [3, 4]]).tolist() == [1.0, 2.0, 3.0, 4.0]
    for bad in ([1.0, np.nan], [np.inf], [-np.inf, 0.0]):
        with pytest.raises(InputError, match="x must be finite"):
            finite("x", bad)
    with pytest.raises(InputError, match="x needs at least 3 values, got 2"):
        finite("x", [1, 2], min_size=3)
