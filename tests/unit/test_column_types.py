"""The stored forms of instants and decimals that bulk inserts bind themselves: the same
as SQLAlchemy's column processing writes, and never rounded."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from arrears.domain.limits import MAX_AMOUNT_DIGITS
from arrears.store.tables import InvoiceRow
from arrears.store.types import ExactDecimal, UTCDateTime

_SQLITE = sqlite.dialect()
_instants = st.datetimes(
    min_value=datetime(1900, 1, 2),  # noqa: DTZ001 (hypothesis bounds are naive)
    max_value=datetime(7999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min]),
)


@given(_instants)
def test_an_instant_for_sqlite_is_the_text_sqlalchemy_writes(instant: datetime) -> None:
    column = UTCDateTime()
    bound = column.process_bind_param(instant, _SQLITE)
    processor = column.impl_instance.dialect_impl(_SQLITE).bind_processor(_SQLITE)
    assert processor is not None
    assert column.to_driver(instant, "sqlite") == processor(bound)


def test_an_instant_for_sqlite_has_microseconds_always() -> None:
    column = UTCDateTime()
    on_the_second = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert column.to_driver(on_the_second, "sqlite") == "2026-01-15 12:00:00.000000"
    a_microsecond_later = on_the_second + timedelta(microseconds=1)
    assert column.to_driver(a_microsecond_later, "sqlite") == "2026-01-15 12:00:00.000001"


@given(st.decimals(min_value=0, max_value=Decimal("1E+12"), places=6))
def test_a_decimal_for_sqlite_is_an_integer_of_millionths(value: Decimal) -> None:
    assert ExactDecimal(24, 6).to_driver(value, "sqlite") == int(value * 10**6)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    "value",
    ["0.0000001", "1.0000000000000000000000000001", "123456789012.0000000000000000000000009"],
)
def test_a_decimal_with_more_places_than_its_column_is_refused_not_rounded(
    value: str, dialect: str
) -> None:
    # The last two have more digits than Python's default precision (28).
    with pytest.raises(ValueError, match="more than 6 decimal places"):
        ExactDecimal(24, 6).to_driver(Decimal(value), dialect)


@pytest.mark.parametrize("value", ["9223372036854.775808", "-9223372036854.775809"])
def test_a_decimal_for_sqlite_beyond_its_64_bit_integers_is_refused(value: str) -> None:
    # 9223372036854.775807 millionths is 2**63 - 1, SQLite's largest integer.
    with pytest.raises(ValueError, match="too large"):
        ExactDecimal(24, 6).to_driver(Decimal(value), "sqlite")
    assert ExactDecimal(24, 6).to_driver(Decimal("9223372036854.775807"), "sqlite") == 2**63 - 1


# -- wide decimals: invoice amounts and line quantities ------------------------------------

_AMOUNT = InvoiceRow.__table__.c.total.type
_MOST = Decimal("9" * MAX_AMOUNT_DIGITS + ".999999")  # below 10**50, with 6 places
# From integers of millionths: hypothesis's own decimals round past 28 digits.
_widest = st.integers(-(10 ** (MAX_AMOUNT_DIGITS + 6)) + 1, 10 ** (MAX_AMOUNT_DIGITS + 6) - 1).map(
    lambda millionths: Decimal(f"{millionths}E-6")
)


@given(_widest)
def test_every_amount_the_limits_allow_is_stored_on_sqlite_as_its_exact_decimal_text(
    value: Decimal,
) -> None:
    stored = _AMOUNT.to_driver(value, "sqlite")
    assert stored == f"{value:f}"
    assert _AMOUNT.process_result_value(stored, _SQLITE) == value


@given(_widest)
def test_every_amount_the_limits_allow_is_stored_on_postgresql_with_six_places(
    value: Decimal,
) -> None:
    stored = _AMOUNT.to_driver(value, "postgresql")
    assert (stored, stored.as_tuple().exponent) == (value, -6)


def test_the_widest_amount_is_50_digits_and_6_places_on_both_databases() -> None:
    assert _AMOUNT.to_driver(_MOST, "sqlite") == "9" * 50 + "." + "9" * 6
    for dialect in ("sqlite", "postgresql"):
        with pytest.raises(ValueError, match="too large to store"):
            _AMOUNT.to_driver(Decimal(10) ** 50, dialect)
        with pytest.raises(ValueError, match="more than 6 decimal places"):
            _AMOUNT.to_driver(Decimal("12.3400001"), dialect)


def test_a_wide_zero_is_stored_without_its_sign() -> None:
    assert _AMOUNT.to_driver(Decimal("-0.00"), "sqlite") == "0.000000"


# -- SQLite sums of scaled quantities ------------------------------------------------------


def test_sqlite_sums_11_quantities_of_999999999999_999999_exactly_past_64_bits() -> None:
    quantity = ExactDecimal(24, 6)
    rows = [(quantity.to_driver(Decimal("999999999999.999999"), "sqlite"),)] * 11
    with sqlite3.connect(":memory:") as connection:
        connection.execute("CREATE TABLE usage (quantity INTEGER)")
        connection.executemany("INSERT INTO usage VALUES (?)", rows)
        with pytest.raises(sqlite3.OperationalError, match="integer overflow"):
            connection.execute("SELECT SUM(quantity) FROM usage").fetchone()
        parts = connection.execute(
            f"SELECT {quantity.sqlite_sum('quantity')} FROM usage"  # noqa: S608
        ).fetchone()
    # 11 x 999999999999.999999
    assert quantity.sqlite_total(*parts) == Decimal("10999999999999.999989")


@given(st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=40))
def test_sqlite_sums_any_stored_quantities_exactly(scaled: list[int]) -> None:
    quantity = ExactDecimal(24, 6)
    with sqlite3.connect(":memory:") as connection:
        connection.execute("CREATE TABLE usage (quantity INTEGER)")
        connection.executemany("INSERT INTO usage VALUES (?)", [(v,) for v in scaled])
        parts = connection.execute(
            f"SELECT {quantity.sqlite_sum('quantity')} FROM usage"  # noqa: S608
        ).fetchone()
    total = quantity.sqlite_total(*(part or 0 for part in parts))
    assert total == Decimal(sum(scaled)).scaleb(-6)
