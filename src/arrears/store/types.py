"""Column types that keep money, quantities and instants exact on every database.

SQLite has no decimal type (its NUMERIC affinity stores floats), so decimals are stored
there as integers scaled by 10**scale (`ExactDecimal`: exact, comparable and summable in
SQL, below 2**63 scaled), or, for amounts and sums too wide for 64 bits, as text
(`WideDecimal`: exact, not summed in SQL). PostgreSQL stores both as NUMERIC(precision,
scale). Instants are always timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Dialect,
    Numeric,
    Text,
    TypeDecorator,
    func,
    type_coerce,
)
from sqlalchemy.types import TypeEngine

from arrears.domain.limits import DECIMAL_PRECISION

__all__ = ["ExactDecimal", "ExactJSON", "UTCDateTime", "WideDecimal"]

_json_decoder = msgspec.json.Decoder(float_hook=Decimal)
# Shifting the decimal point must never round, whatever the thread's decimal context: a
# value with more significant digits than this (trailing zeros aside) raises instead.
_UNROUNDED = Context(prec=40, traps=[Inexact])
_json_encoder = msgspec.json.Encoder(decimal_format="number")
_INT64 = 2**63  # SQLite's integers are signed 64-bit
# Wide enough for every value `domain.limits` allows, with traps: a value that would
# need rounding, or more digits than that, raises instead.
_WIDE = Context(prec=DECIMAL_PRECISION, traps=[Inexact, InvalidOperation])
# SQLite's SUM fails on 64-bit overflow, which a sum of scaled quantities reaches past
# 9.2e12 units. Summing each value in three 21-bit parts cannot overflow: a stored
# value below 2**63 has a top part below 2**21, so a part's sum would need 2**42 rows,
# and a SQLite file (at most 2**48 bytes) holds fewer rows of any table we sum.
_PART_BITS = 21
_PART_MASK = 2**_PART_BITS - 1


class ExactDecimal(TypeDecorator[Decimal]):
    """A decimal with a fixed number of places, exact on SQLite and PostgreSQL."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 24, scale: int = 6) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale
        self._unit = Decimal(1).scaleb(-scale)
        self._factor = 10**scale

    def __repr__(self) -> str:
        # Alembic writes this into migrations; without it the places would be lost.
        return f"ExactDecimal(precision={self.precision}, scale={self.scale})"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        return self.to_driver(value, dialect.name)

    def to_driver(self, value: Decimal | int | None, dialect_name: str) -> Any:
        """What the DB-API driver is given for `value` on `dialect_name`: an integer scaled
        by 10**scale on SQLite, the Decimal on PostgreSQL. Bulk inserts that bypass
        SQLAlchemy's binding call this, so both paths store the same thing."""
        if value is None:
            return None
        # Bulk inserts call this for every row: the checks are ordered for the common case.
        if isinstance(value, Decimal):
            decimal = value
        elif isinstance(value, int) and not isinstance(value, bool):
            decimal = Decimal(value)
        else:
            raise TypeError(f"{value!r} is not a Decimal; binary floats never reach storage")
        if dialect_name == "sqlite":
            try:
                scaled = decimal.scaleb(self.scale, _UNROUNDED)  # positional: half the call cost
                units = int(scaled)  # truncates: compared next, so that nothing is rounded
                if units != scaled:
                    raise Inexact
                if not -_INT64 <= units < _INT64:
                    # Bound as a parameter it would overflow; read from JSON by a bulk
                    # insert it would silently become a float.
                    raise ValueError(f"{value} is too large to store")
            except Inexact:
                raise ValueError(f"{value} has more than {self.scale} decimal places") from None
            return units
        exact = decimal.quantize(self._unit)
        if exact != value:
            # Rounding here would silently change money; callers validate places first.
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return Decimal(value)

    @staticmethod
    def sqlite_sum(column: str) -> str:
        """SQL summing the non-negative column `column` (SQL text) on SQLite exactly,
        however many rows: three sums, of which `sqlite_total` makes the total."""
        return (
            f"SUM({column} >> {2 * _PART_BITS}), "
            f"SUM(({column} >> {_PART_BITS}) & {_PART_MASK}), SUM({column} & {_PART_MASK})"
        )

    @staticmethod
    def sqlite_sums(column: ColumnElement[Any]) -> list[ColumnElement[Any]]:
        """`sqlite_sum` as SQLAlchemy expressions over `column`."""
        scaled = type_coerce(column, BigInteger)
        return [
            func.sum(scaled.bitwise_rshift(2 * _PART_BITS)),
            func.sum(scaled.bitwise_rshift(_PART_BITS).bitwise_and(_PART_MASK)),
            func.sum(scaled.bitwise_and(_PART_MASK)),
        ]

    def sqlite_total(self, high: int, middle: int, low: int) -> Decimal:
        """The decimal sum of the three sums `sqlite_sum` selects, exactly."""
        scaled = (high << (2 * _PART_BITS)) + (middle << _PART_BITS) + low
        return Decimal(scaled).scaleb(-self.scale)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class WideDecimal(TypeDecorator[Decimal]):
    """A decimal with a fixed number of places and up to `precision` digits in all, too
    wide for SQLite's 64-bit integers: invoice amounts and line quantities, whose size
    `domain.limits.MAX_AMOUNT_DIGITS` bounds. PostgreSQL stores NUMERIC(precision,
    scale); SQLite the decimal as text with exactly `scale` places (`12.500000`), exact
    and read back as it was, but neither ordered nor summed in SQL (nothing does)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int = 6) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale
        self._unit = Decimal(1).scaleb(-scale)
        self._limit = Decimal(10) ** (precision - scale)

    def __repr__(self) -> str:
        return f"WideDecimal(precision={self.precision}, scale={self.scale})"

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | int | None, dialect: Dialect) -> Any:
        return self.to_driver(value, dialect.name)

    def to_driver(self, value: Decimal | int | None, dialect_name: str) -> Any:
        """What the DB-API driver is given for `value` on `dialect_name` (see
        `ExactDecimal.to_driver`): the text `12.500000` on SQLite, the Decimal with
        `scale` places on PostgreSQL. Never rounds: more places, or more digits than
        `precision`, raise `ValueError`."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, Decimal | int):
            raise TypeError(f"{value!r} is not a Decimal; binary floats never reach storage")
        try:
            exact = Decimal(value).quantize(self._unit, None, _WIDE)
        except Inexact:
            raise ValueError(f"{value} has more than {self.scale} decimal places") from None
        except InvalidOperation:
            raise ValueError(f"{value} is not a finite decimal") from None
        if not -self._limit < exact < self._limit:
            raise ValueError(f"{value} is too large to store")
        if exact.is_zero():
            exact = exact.copy_abs()  # -0 and 0 are one amount; store one text
        return f"{exact:f}" if dialect_name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored as UTC, always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = _utc(value)
        # SQLite keeps text; a fixed naive UTC form makes text order equal time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def to_driver(self, value: datetime | None, dialect_name: str) -> datetime | str | None:
        """What the DB-API driver is given for `value` on `dialect_name`, for bulk inserts
        that bypass SQLAlchemy's binding: on SQLite the text SQLAlchemy's DATETIME writes
        (`YYYY-MM-DD HH:MM:SS.ffffff`, naive UTC, microseconds always present), on
        PostgreSQL the aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is not UTC:  # most instants are UTC already: skip the conversion
            value = _utc(value)
        if dialect_name == "sqlite":
            return _sqlite_text(value)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def _sqlite_text(instant: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for a UTC instant.

    Cut from msgspec's RFC 3339 form, `"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"` (six digits of
    fraction, or none when there are no microseconds), which msgspec writes in C:
    three times as fast as `isoformat`, and bulk inserts call this for every row."""
    rfc3339 = _rfc3339(instant)
    if len(rfc3339) == _WITH_MICROSECONDS:
        return (rfc3339[1:11] + b" " + rfc3339[12:27]).decode()
    return (rfc3339[1:11] + b" " + rfc3339[12:20] + b".000000").decode()


_rfc3339 = msgspec.json.Encoder().encode
_WITH_MICROSECONDS = len(b'"2026-01-01T00:00:00.000000Z"')


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
    return value.astimezone(UTC)


class ExactJSON(TypeDecorator[Any]):
    """A JSON document stored as text, with its decimals written and read exactly."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else _json_encoder.encode(value).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else _json_decoder.decode(value)
