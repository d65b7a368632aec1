"""Lines that bill no usage (SPEC §7): the plan variant's recurring fee, whole or
prorated to a final invoice's part of the period, and an order's one-off rated items.
Pure: no I/O. Each amount is rounded once, with `money.round_amount`, when its line is
made; everything before is exact.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final

from arrears.domain.invoices import InvoiceLine, LineKind
from arrears.domain.money import Currency, round_amount
from arrears.domain.periods import prorate

__all__ = ["prorated_fee_line", "rated_item_line", "recurring_fee_line"]

# Quantities and prices are bounded (money.MAX_INTEGER_DIGITS, 6 places), so every
# product here is exact at this precision; Inexact would be a bug.
_EXACT: Final = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact])
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)


def recurring_fee_line(
    fee: Decimal, period_start: datetime, period_end: datetime, currency: Currency
) -> InvoiceLine:
    """The plan variant's `RecurringFee` for the whole period `[period_start, period_end)`:
    quantity 1 at `fee`, the amount rounded once. `fee` must be finite and >= 0."""
    _require_amount(fee, "recurring fee")
    return InvoiceLine(
        kind=LineKind.RECURRING_FEE,
        description=f"Recurring fee {_day(period_start)} - {_day(period_end)}",
        quantity=_ONE,
        free_quantity=_ZERO,
        billable_quantity=_ONE,
        amount=round_amount(fee, currency),
        unit_price=fee,
    )


def prorated_fee_line(
    fee: Decimal,
    period_start: datetime,
    period_end: datetime,
    end_date: datetime,
    currency: Currency,
) -> InvoiceLine:
    """The `RecurringFee` of a final invoice: `fee` prorated to the exact share of
    `[period_start, period_end)` before `end_date` (`periods.prorate`), rounded once.

    A fee of 9.90 for a 30-day period ended after 10 days is 3.30. The line has
    quantity 1 and no `unit_price`, since its amount is not the fee; its text names
    the billed part of the period. `period_start <= end_date <= period_end` is
    required (`ValueError`), as is a finite fee >= 0.
    """
    _require_amount(fee, "recurring fee")
    if not period_start <= end_date <= period_end:
        raise ValueError(f"end date {end_date} lies outside [{period_start}, {period_end}]")
    return InvoiceLine(
        kind=LineKind.RECURRING_FEE,
        description=(
            f"Recurring fee {_day(period_start)} - {_day(end_date)}, prorated from the "
            f"period {_day(period_start)} - {_day(period_end)}"
        ),
        quantity=_ONE,
        free_quantity=_ZERO,
        billable_quantity=_ONE,
        amount=round_amount(prorate(fee, period_start, period_end, end_date), currency),
    )


def rated_item_line(
    description: str, quantity: Decimal, price_per_unit: Decimal, currency: Currency
) -> InvoiceLine:
    """An order's one-off rated item: `quantity x price_per_unit`, rounded once.

    Both must be finite and >= 0 (`ValueError`; the order validated them).
    """
    _require_amount(quantity, "quantity")
    _require_amount(price_per_unit, "price per unit")
    with localcontext(_EXACT):
        exact = quantity * price_per_unit
    return InvoiceLine(
        kind=LineKind.RATED_ITEM,
        description=description,
        quantity=quantity,
        free_quantity=_ZERO,
        billable_quantity=quantity,
        amount=round_amount(exact, currency),
        unit_price=price_per_unit,
    )


def _require_amount(value: Decimal, name: str) -> None:
    if not (value.is_finite() and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, not {value}")


def _day(instant: datetime) -> str:
    return instant.date().isoformat()
