"""The component registry: options checked once against the factory's own signature (types strictly, ranges, no
infinity), carried as a `Configured` object to the factory; a duplicate name is an error."""

from __future__ import annotations

import math
from typing import Annotated

import pytest
from pydantic import Field

from privacy_audit._registry import _REGISTRY, component, create, register
from privacy_audit.errors import InputError


@pytest.fixture
def widget():
    @register("pipeline", "widget-test", fixed=("records", "model", "seed"))
    def make(records=(), *, model=None, seed=0, size: Annotated[int, Field(ge=1, le=10)] = 2,
             scale: Annotated[float, Field(gt=0)] = 1.0, label: str = "w"):
        return (size, scale, label, seed)

    yield component("pipeline", "widget-test")
    del _REGISTRY["pipeline"]["widget-test"]


def test_options_are_checked_once_and_carried_to_the_factory(widget):
    configured = widget.configure({"size": 3})
    assert configured.given == {"size": 3} and configured.build(records=(), model=None, seed=7) == (3, 1.0, "w", 7)
    assert create("pipeline", "widget-test", records=(), model=None, seed=1, label="x") == (2, 1.0, "x", 1)


@pytest.mark.parametrize("options, words", [
    ({"size": 0}, "option size: Input should be greater than or equal to 1"),
    ({"size": True}, "option size"),  # strict: `true` is not a count
    ({"size": "3"}, "option size"),  # "3" is not a number
    ({"scale": math.inf}, "option scale"),  # no option is infinite
    ({"scale": math.nan}, "option scale"),
    ({"colour": 1}, "has no option colour; its options: label, scale, size"),
])
def test_bad_options_are_one_line_input_errors_naming_the_option(widget, options, words):
    with pytest.raises(InputError, match=words) as caught:
        widget.configure(options)
    assert "\n" not in str(caught.value)


def test_a_duplicate_name_and_an_unknown_one_are_refused(widget):
    with pytest.raises(ValueError, match="already registered"):
        register("pipeline", "widget-test")(lambda records: None)
    with pytest.raises(InputError, match="unknown pipeline 'nope'; known: .*raw"):
        component("pipeline", "nope")
