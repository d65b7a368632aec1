"""The stored forms of instants and decimals that bulk inserts bind themselves: the same
as SQLAlchemy's column processing writes, and never rounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

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
