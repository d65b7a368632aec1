"""Currencies and the one rounding rule: half-up to the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.errors import Invalid
from arrears.domain.money import Currency, currency, decimal_places, round_amount

EUR = currency("EUR")
JPY = currency("JPY")
KWD = currency("KWD")


def test_minor_units_are_eur_2_jpy_0_kwd_3_usd_2() -> None:
    assert (EUR.minor_unit, JPY.minor_unit, KWD.minor_unit) == (2, 0, 3)
    assert currency("USD") == Currency(code="USD", minor_unit=2)


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("2.345", "2.35"),
        ("2.344", "2.34"),
        ("-2.345", "-2.35"),
        ("-2.344", "-2.34"),
        ("2.355", "2.36"),
        ("0.005", "0.01"),
        ("0.004999999", "0.00"),
        ("7", "7.00"),
    ],
)
def test_eur_rounds_half_up_away_from_zero_to_2_places(amount: str, rounded: str) -> None:
    result = round_amount(Decimal(amount), EUR)
    assert result == Decimal(rounded)
    assert str(result) == rounded


def test_jpy_12_5_rounds_to_13_and_12_4999_to_12() -> None:
    assert str(round_amount(Decimal("12.5"), JPY)) == "13"
    assert str(round_amount(Decimal("12.4999"), JPY)) == "12"


def test_kwd_1_0005_rounds_to_1_001() -> None:
    assert str(round_amount(Decimal("1.0005"), KWD)) == "1.001"


def test_rounding_a_31_digit_amount_does_not_hit_the_default_28_digit_precision() -> None:
    assert round_amount(Decimal("1234567890123456789012345678.905"), EUR) == Decimal(
        "1234567890123456789012345678.91"
    )


@pytest.mark.parametrize("amount", ["-0.001", "-0.004999", "-0"])
def test_a_negative_amount_that_rounds_to_0_is_0_00_not_minus_0_00(amount: str) -> None:
    assert str(round_amount(Decimal(amount), EUR)) == "0.00"


def test_rounding_nan_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        round_amount(Decimal("NaN"), EUR)


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=6, min_value=-(10**9), max_value=10**9
    )
)
def test_rounding_moves_an_amount_by_at_most_half_a_minor_unit_and_is_idempotent(
    amount: Decimal,
) -> None:
    rounded = round_amount(amount, EUR)
    assert abs(rounded - amount) <= Decimal("0.005")
    assert round_amount(rounded, EUR) == rounded
    assert round_amount(-amount, EUR) == -rounded


@pytest.mark.parametrize(
    "code",
    ["ABC", "XXX", "XTS", "XAU", "DEM", "HRK", "eur", "Eur", "EURO", "", " EUR", "EUR "],
)
def test_unknown_withdrawn_non_tender_or_lower_case_codes_are_rejected(code: str) -> None:
    with pytest.raises(Invalid) as caught:
        currency(code)
    [error] = caught.value.errors
    assert (error.field, error.code) == ("Currency", "unknown_currency")


def test_a_lower_case_code_is_rejected_with_a_hint_at_the_upper_case_one() -> None:
    with pytest.raises(Invalid) as caught:
        currency("eur", field="currency")
    [error] = caught.value.errors
    assert error.field == "currency"
    assert "'EUR'" in error.message


def test_a_non_string_code_is_rejected_not_crashed_on() -> None:
    with pytest.raises(Invalid):
        currency(978)  # type: ignore[arg-type]


def test_a_long_bad_code_is_not_echoed_in_full() -> None:
    with pytest.raises(Invalid) as caught:
        currency("Q" * 10_000)
    assert len(caught.value.errors[0].message) < 200


@pytest.mark.parametrize(
    ("value", "places"),
    [
        ("1.2500", 2),
        ("100", 0),
        ("1E+2", 0),
        ("0.000", 0),
        ("0.000001", 6),
        ("1E-7", 7),
        ("-0.5", 1),
    ],
)
def test_decimal_places_ignore_trailing_zeros(value: str, places: int) -> None:
    assert decimal_places(Decimal(value)) == places


@pytest.mark.parametrize(
    ("code", "minor_unit"), [("EUR", 2), ("JPY", 0), ("KWD", 3), ("IQD", 3), ("IRR", 2)]
)
def test_minor_units_are_iso_4217s_not_cldrs(code: str, minor_unit: int) -> None:
    # CLDR says IQD 0 and IRR 0; the spec says ISO 4217, which says 3 and 2.
    assert currency(code).minor_unit == minor_unit


@pytest.mark.parametrize("code", ["XAU", "XDR", "XTS", "XXX", "DEM"])
def test_metals_test_codes_and_withdrawn_currencies_are_not_currencies(code: str) -> None:
    with pytest.raises(Invalid):
        currency(code)
