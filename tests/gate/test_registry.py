"""The gate's settings and rules: every value checked against its range when given (never a disabled rule)."""

from __future__ import annotations

import math

import pytest

from privacy_audit.errors import InputError
from privacy_audit.gate.registry import RULES, SETTINGS, Thresholds


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, True, "3", -1])
def test_a_rule_value_out_of_its_range_or_not_a_finite_number_is_refused(value):
    with pytest.raises(InputError, match="max_exposure_bits"):
        Thresholds(max_exposure_bits=value)


def test_alpha_is_open_at_both_ends_and_thresholds_are_immutable():
    for bad in (0, 1):
        with pytest.raises(InputError, match=r"out of range \(0, 1\)"):
            Thresholds(alpha=bad)
    t = Thresholds(max_exposure_bits=3)
    with pytest.raises(AttributeError, match="immutable"):
        t.alpha = 0.5  # type: ignore[misc]
    assert t.merged(alpha=0.05).as_dict() == {"max_exposure_bits": 3.0, "alpha": 0.05, "fuzzy_distance": 0.1}
    assert set(SETTINGS) == {"alpha", "fuzzy_distance"} and "max_exposure_bits" in RULES
