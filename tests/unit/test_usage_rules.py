"""The number rules every usage record meets (SPEC §5), as `check_decimal` applies them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.money import decimal_places
from arrears.domain.usage import check_decimal


def _code(value: str) -> str | None:
    error = check_decimal(Decimal(value), "quantity", 6)
    return None if error is None else error.code


@pytest.mark.parametrize(
    ("quantity", "code"),
    [
        ("0", None),
        ("130", None),
        ("0.000001", None),
        ("1.2500000000", None),  # trailing zeros are no decimal places
        ("1E+11", None),
        ("999999999999.999999", None),
        ("0.0000001", "too_many_decimals"),
        ("1.0000001", "too_many_decimals"),
        ("1E-7", "too_many_decimals"),
        ("-0.5", "negative"),
        ("1E+12", "too_large"),
        ("NaN", "not_finite"),
        ("Infinity", "not_finite"),
    ],
)
def test_a_quantity_is_finite_not_negative_below_10_to_12_with_6_places(
    quantity: str, code: str | None
) -> None:
    assert _code(quantity) == code


@given(
    st.decimals(
        min_value=0, max_value=Decimal("999999999999.999999999"), allow_nan=False, places=None
    )
)
def test_too_many_decimals_exactly_when_more_than_6_places_are_needed(value: Decimal) -> None:
    error = check_decimal(value, "quantity", 6)
    assert (error is not None and error.code == "too_many_decimals") == (decimal_places(value) > 6)
