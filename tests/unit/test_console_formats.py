"""The console's formats (the browser's language, exact numbers) and chart geometry."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from arrears.console.charts import bar_chart, days_between, nice_ceiling
from arrears.console.rendering import Formats, locale_of


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de_DE"),
        ("en;q=0.5, fr-CH", "fr_CH"),  # the weights decide, not the order
        ("xx-YY, nl;q=0.7", "nl"),  # a language CLDR does not know is passed over
        ("*", "en"),
        ("fr;q=0", "en"),  # q=0 means "not this one"
        (None, "en"),
        ("de;q=banana, it", "it"),
    ],
)
def test_the_language_is_the_best_one_cldr_knows_else_english(
    header: str | None, expected: str
) -> None:
    assert str(locale_of(header)) == expected


def test_quantities_show_every_digit_they_carry_and_no_stored_trailing_zeros() -> None:
    english = Formats(locale_of("en"))
    assert english.number(Decimal("32.000000")) == "32"
    assert english.number(Decimal("1234.500000")) == "1,234.5"
    assert english.number(Decimal("0.000001")) == "0.000001"
    assert Formats(locale_of("de")).number(Decimal("1234.5")) == "1.234,5"


def test_amounts_show_their_iso_minor_unit_even_where_cldr_differs() -> None:
    english = Formats(locale_of("en"))
    assert english.money(Decimal("1.500000"), "EUR") == "€1.50"
    assert english.money(Decimal("100"), "JPY") == "¥100"
    assert Formats(locale_of("de")).money(Decimal("1234.5"), "EUR") == "1.234,50\xa0€"
    # ISO 4217 gives the Iraqi dinar three decimals; CLDR shows none, and would round.
    assert english.money(Decimal("1.250"), "IQD") == "IQD1.250"


def test_days_and_months_are_written_in_the_language() -> None:
    german = Formats(locale_of("de"))
    assert german.day(datetime(2026, 2, 1, tzinfo=UTC)) == "01.02.2026"
    assert german.day("2026-02-03") == "03.02.2026"
    assert Formats(locale_of("en")).month("2026-03") == "Mar 2026"


@pytest.mark.parametrize(
    ("largest", "axis_top"),
    [("1.5", "2"), ("25", "25"), ("26", "50"), ("0.03", "0.05"), ("7", "10"), ("100", "100")],
)
def test_the_axis_ends_at_the_next_round_number(largest: str, axis_top: str) -> None:
    assert nice_ceiling(Decimal(largest)) == Decimal(axis_top)


def test_bars_are_as_tall_as_their_share_of_the_axis() -> None:
    chart = bar_chart([("a", Decimal(25)), ("b", Decimal(0)), ("c", Decimal("12.5"))])
    tallest, empty, half = chart.bars
    assert empty.height == 0
    assert half.height * 2 == tallest.height
    assert [tick.value for tick in chart.ticks] == [
        0,
        Decimal("6.25"),
        Decimal("12.5"),
        Decimal("18.75"),
        25,
    ]


def test_ninety_days_back_to_today_are_ninety_one_days() -> None:
    now = datetime(2026, 2, 15, tzinfo=UTC)
    days = days_between(datetime(2025, 11, 17, tzinfo=UTC), now)
    assert (len(days), days[0], days[-1]) == (91, "2025-11-17", "2026-02-15")
