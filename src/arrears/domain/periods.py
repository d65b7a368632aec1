"""Billing periods anchored at a contract's start (SPEC §4), and proration within one.

Boundary n of a contract is always computed from the anchor as anchor + n x step,
never by stepping from the previous boundary, so month-end clamping does not drift:
a contract started on Jan 31 renews on Feb 28 (29), Mar 31, Apr 30, ... Instants are
timezone-aware UTC; a naive datetime or one with a non-zero offset is a programming
error and raises `ValueError`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from typing import Final

from dateutil.relativedelta import relativedelta

from arrears.domain.errors import FieldError, Invalid
from arrears.domain.limits import MAX_PERIOD_QUANTITY

__all__ = [
    "MAX_PERIOD_QUANTITY",
    "BillingPeriod",
    "PeriodUnit",
    "billing_period_to_json",
    "fraction_of_period",
    "next_boundary_after",
    "parse_billing_period",
    "period_boundary",
    "period_index_at",
    "prorate",
]

# 34 significant digits (IEEE decimal128) leave a proration exact whenever its true
# value terminates, and otherwise correct far below any currency's minor unit.
_PRORATION = Context(prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
_MICROSECOND = timedelta(microseconds=1)


class PeriodUnit(enum.StrEnum):
    """The unit of a billing period; the values are the SPEC's wire names."""

    DAY = "Day"
    WEEK = "Week"
    MONTH = "Month"
    YEAR = "Year"


_UNITS: Final = {unit.value: unit for unit in PeriodUnit}


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """`quantity` units of `unit`, e.g. 3 months; 1 <= quantity <= MAX_PERIOD_QUANTITY."""

    unit: PeriodUnit
    quantity: int

    def __post_init__(self) -> None:
        if not 1 <= self.quantity <= MAX_PERIOD_QUANTITY:
            raise ValueError(f"period quantity must be 1..{MAX_PERIOD_QUANTITY}")


def parse_billing_period(data: object, *, at: str = "") -> BillingPeriod:
    """The `BillingPeriod` described by `{"Unit": "Month", "Quantity": 1}`.

    `Quantity` must be an integer (an `int`, or an integral `Decimal` such as 1.0;
    never a `float` or `bool`) from 1 to `MAX_PERIOD_QUANTITY`. Unknown keys are
    rejected. Raises `Invalid` naming every bad field at once (`Unit`, `Quantity`,
    prefixed by `at` and a dot when `at` is given; a problem with `data` itself is
    reported on `at`). Codes: `not_an_object`, `required`, `unknown_field`,
    `unknown_unit`, `not_an_integer`, `not_positive`, `too_large`.
    """
    if not isinstance(data, Mapping):
        raise Invalid.one(at, "not_an_object", "BillingPeriod must be a JSON object.")
    errors: list[FieldError] = [
        FieldError(_join(at, str(key)), "unknown_field", f"{key} is not a field.")
        for key in data
        if key not in ("Unit", "Quantity")
    ]

    unit: PeriodUnit | None = None
    raw_unit = data.get("Unit")
    if "Unit" not in data:
        errors.append(FieldError(_join(at, "Unit"), "required", "Unit is required."))
    elif isinstance(raw_unit, str) and raw_unit in _UNITS:
        unit = _UNITS[raw_unit]
    else:
        errors.append(
            FieldError(
                _join(at, "Unit"),
                "unknown_unit",
                f"Unit must be one of {', '.join(PeriodUnit)}.",
            )
        )

    quantity = _period_quantity(data, _join(at, "Quantity"), errors)

    if errors:
        raise Invalid(errors)
    if unit is None or quantity is None:
        raise AssertionError("validated billing period without unit or quantity")
    return BillingPeriod(unit=unit, quantity=quantity)


def billing_period_to_json(period: BillingPeriod) -> dict[str, object]:
    """`period` as its SPEC §3 JSON object; `parse_billing_period` reads it back."""
    return {"Unit": period.unit.value, "Quantity": period.quantity}


def period_boundary(anchor: datetime, period: BillingPeriod, n: int) -> datetime:
    """Boundary `n` of the periods anchored at `anchor`: anchor + n x period, in UTC.

    Boundary 0 is the anchor; `n` may be negative. Month and year steps keep the
    anchor's day of month and clamp it to the target month's last day, always from
    the anchor (Jan 31 + 1 month = Feb 28/29, + 2 months = Mar 31; Feb 29 + 1 year =
    Feb 28). Boundaries strictly increase with `n`. Raises `OverflowError` when the
    boundary falls outside the years 1..9999.
    """
    start = _utc(anchor, "anchor")
    steps = n * period.quantity
    try:
        if period.unit is PeriodUnit.DAY:
            return start + timedelta(days=steps)
        if period.unit is PeriodUnit.WEEK:
            return start + timedelta(weeks=steps)
        if period.unit is PeriodUnit.MONTH:
            return start + relativedelta(months=steps)
        return start + relativedelta(years=steps)
    except ValueError as error:  # relativedelta's way of saying "year out of range"
        raise OverflowError(f"boundary {n} of {period} from {anchor} is out of range") from error


def period_index_at(anchor: datetime, period: BillingPeriod, instant: datetime) -> int:
    """The n with boundary(n) <= instant < boundary(n + 1): the period holding `instant`.

    Negative for instants before the anchor. Constant time: n is computed
    arithmetically, then corrected by at most a step or two for month-end clamping.
    """
    start = _utc(anchor, "anchor")
    at = _utc(instant, "instant")
    if period.unit in (PeriodUnit.DAY, PeriodUnit.WEEK):
        days = period.quantity * (7 if period.unit is PeriodUnit.WEEK else 1)
        # Day and week steps are fixed durations, so floor division is already exact.
        return (at - start) // timedelta(days=days)

    months = period.quantity * (12 if period.unit is PeriodUnit.YEAR else 1)
    elapsed_months = (at.year - start.year) * 12 + (at.month - start.month)
    n = elapsed_months // months
    # The estimate counts calendar months, so a boundary clamped to a month end (or an
    # instant earlier in its month than the anchor's day and time) can put it one off.
    while (boundary := _boundary_or_none(start, period, n)) is None or boundary > at:
        n -= 1
    while (following := _boundary_or_none(start, period, n + 1)) is not None and following <= at:
        n += 1
    return n


def next_boundary_after(anchor: datetime, period: BillingPeriod, instant: datetime) -> datetime:
    """The first boundary strictly after `instant` (the end of the period holding it).

    Raises `OverflowError` if that boundary is past the year 9999.
    """
    return period_boundary(anchor, period, period_index_at(anchor, period, instant) + 1)


def fraction_of_period(start: datetime, end: datetime, cut: datetime) -> Decimal:
    """The share of `[start, end)` that lies before `cut`: (cut - start) / (end - start).

    Computed from whole microseconds, clamped to [0, 1]: 0 when `cut <= start`, 1 when
    `cut >= end`. Exact whenever the quotient has at most 34 significant digits,
    otherwise correctly rounded to 34. To prorate an amount, prefer `prorate`, which
    divides once and so never rounds a halfway amount the wrong way. Raises
    `ValueError` unless `start < end`.
    """
    elapsed, length = _elapsed_and_length(start, end, cut)
    with localcontext(_PRORATION):
        return Decimal(elapsed) / Decimal(length)


def prorate(amount: Decimal, start: datetime, end: datetime, cut: datetime) -> Decimal:
    """`amount` x `fraction_of_period(start, end, cut)`, multiplied before dividing.

    A fee of 1.5 JPY for a third of a period is exactly 0.5 here (which then rounds
    half-up to 1), where 1.5 x a rounded third would give 0.4999... and round to 0.
    Exact whenever the result has at most 34 significant digits. Not rounded to the
    currency: that is `round_amount`'s job, once per line.
    """
    if not amount.is_finite():
        raise ValueError(f"cannot prorate a non-finite amount: {amount}")
    elapsed, length = _elapsed_and_length(start, end, cut)
    with localcontext(_PRORATION) as context:
        # Microseconds between years 1 and 9999 have fewer than 20 digits, so this
        # precision keeps the product exact; only the one division rounds.
        context.prec = len(amount.as_tuple().digits) + 20
        numerator = amount * elapsed
        context.prec = _PRORATION.prec
        return numerator / Decimal(length)


def _elapsed_and_length(start: datetime, end: datetime, cut: datetime) -> tuple[int, int]:
    begin, finish, at = _utc(start, "start"), _utc(end, "end"), _utc(cut, "cut")
    if not begin < finish:
        raise ValueError(f"a period must end after it starts: [{start}, {end})")
    clamped = min(max(at, begin), finish)
    return (clamped - begin) // _MICROSECOND, (finish - begin) // _MICROSECOND


def _boundary_or_none(start: datetime, period: BillingPeriod, n: int) -> datetime | None:
    try:
        return period_boundary(start, period, n)
    except OverflowError:
        return None


def _utc(value: datetime, name: str) -> datetime:
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{name} must be timezone-aware UTC, not naive: {value}")
    if offset:
        raise ValueError(f"{name} must be in UTC, not at offset {offset}: {value}")
    # A zero-offset zone such as Europe/London in winter would do calendar arithmetic
    # in local time and change offset in summer; pinning to UTC keeps steps in UTC.
    return value.replace(tzinfo=UTC)


def _join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def _period_quantity(
    data: Mapping[str, object], field: str, errors: list[FieldError]
) -> int | None:
    if "Quantity" not in data:
        errors.append(FieldError(field, "required", "Quantity is required."))
        return None
    raw = data["Quantity"]
    quantity: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        quantity = raw
    elif isinstance(raw, Decimal) and raw.is_finite() and raw == raw.to_integral_value():
        quantity = int(raw)
    if quantity is None:
        errors.append(
            FieldError(field, "not_an_integer", "Quantity must be a whole number, e.g. 1.")
        )
        return None
    if quantity < 1:
        errors.append(FieldError(field, "not_positive", "Quantity must be at least 1."))
        return None
    if quantity > MAX_PERIOD_QUANTITY:
        errors.append(
            FieldError(field, "too_large", f"Quantity must be at most {MAX_PERIOD_QUANTITY}.")
        )
        return None
    return quantity
