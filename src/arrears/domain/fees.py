"""Lines that bill no usage (SPEC §7): the plan variant's recurring fee, whole or
prorated to a final invoice's part of the period, an order's one-off rated items, and
the minimum commitment's true-up (SPEC §11). Pure: no I/O. Each amount is rounded
once, with `money.round_amount`, when its line is made; everything before is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final

from arrears.domain.invoices import InvoiceLine, LineKind
from arrears.domain.money import Currency, round_amount
from arrears.domain.periods import prorate

__all__ = [
    "COMMITTED_KINDS",
    "commitment_line",
    "committed_amount",
    "prorated_fee_line",
    "rated_item_line",
    "recurring_fee_line",
]

COMMITTED_KINDS: Final = frozenset({LineKind.USAGE, LineKind.RECURRING_FEE, LineKind.QUANTITY})
"""The kinds of line a minimum commitment counts: the period's usage and fee charges.
Late usage (another period's) is not counted, nor rated items, discounts or the
commitment line itself."""

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


def committed_amount(lines: Iterable[InvoiceLine]) -> Decimal:
    """What `lines` count toward a minimum commitment: the sum of the amounts of the
    current-period lines of a `COMMITTED_KINDS` kind. Exact."""
    with localcontext(_EXACT):
        return sum(
            (line.amount for line in lines if line.kind in COMMITTED_KINDS and not line.late),
            _ZERO,
        )


def commitment_line(
    commitment: Decimal,
    lines: Iterable[InvoiceLine],
    period_start: datetime,
    period_end: datetime,
    currency: Currency,
    *,
    end_date: datetime | None = None,
) -> InvoiceLine | None:
    """The `Commitment` line of a period's closing (regular or final) invoice: what
    the period's usage and fee charges (`committed_amount` of `lines`, every line of
    the period's invoices, this closing one's included) fall short of `commitment`.

    Minimum commitment 100.00 with a fee of 50.00 and 3 x 10.00 usage is a 20.00 line;
    None when the charges reach the commitment. A final invoice passes its `end_date`:
    the commitment is then prorated like the fee (`periods.prorate`), and rounded once.
    Since it is computed on the whole period's lines, interim invoices change nothing
    in what the period is charged in all. `commitment` must be finite and >= 0.
    """
    _require_amount(commitment, "minimum commitment")
    due = (
        commitment if end_date is None else prorate(commitment, period_start, period_end, end_date)
    )
    with localcontext(_EXACT):
        shortfall = round_amount(due, currency) - committed_amount(lines)
    if shortfall <= 0:
        return None
    last = period_end if end_date is None else end_date
    return InvoiceLine(
        kind=LineKind.COMMITMENT,
        description=f"Minimum commitment {_day(period_start)} - {_day(last)}",
        quantity=_ONE,
        free_quantity=_ZERO,
        billable_quantity=_ONE,
        amount=shortfall,
    )


def _require_amount(value: Decimal, name: str) -> None:
    if not (value.is_finite() and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0, not {value}")


def _day(instant: datetime) -> str:
    return instant.date().isoformat()
