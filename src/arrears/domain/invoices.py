"""The invoice a billing run drafts (SPEC §8) and the arithmetic of its totals (SPEC §7).

Every amount here is a `Decimal` carrying exactly its currency's minor unit. A line's
amount is rounded once, where the line is made (`arrears.domain.rating`); the totals
add those amounts exactly, and only the tax is rounded, again with `round_amount`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final

from arrears.domain.money import Currency, round_amount
from arrears.domain.pricing import TierCharge
from arrears.domain.profiles import Party

__all__ = [
    "Invoice",
    "InvoiceDraft",
    "InvoiceKind",
    "InvoiceLine",
    "InvoiceStatus",
    "InvoiceTotals",
    "LineKind",
    "draft_invoice",
    "effective_tax_rate",
    "invoice_totals",
]

# Amounts stay below 10**30 and tax rates have few digits, so sums and products are
# exact at this precision; trapping Inexact makes any surprise an error, never a cent.
_EXACT: Final = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact])
_PERCENT: Final = Decimal(100)


class InvoiceKind(enum.StrEnum):
    """Why an invoice was issued; the values are the SPEC's wire names."""

    REGULAR = "Regular"
    INTERIM = "Interim"
    FINAL = "Final"


class LineKind(enum.StrEnum):
    """What an invoice line charges for; the values are the SPEC's wire names."""

    USAGE = "Usage"
    RECURRING_FEE = "RecurringFee"
    RATED_ITEM = "RatedItem"
    QUANTITY = "Quantity"
    COMMITMENT = "Commitment"
    DISCOUNT = "Discount"


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One line of an invoice (SPEC §8 `Lines`).

    - `quantity` is what the line bills; `free_quantity` the part of it covered by
      the free quota; `billable_quantity = quantity - free_quantity`, exactly.
    - `amount` is rounded half-up to the currency's minor unit, exactly once. It may
      be negative: a volume tier reached later in a period re-prices the period.
    - `tiers` is the exact, unrounded breakdown of the charge (see `rating` for what
      it shows on an interim-shared line); empty when the line has none.
    - `unit_price` is set when the whole line is one price per unit (per-unit
      pricing, an override price, a rated item, a full recurring fee).
    - `late` marks usage due before the period (rated without free quota);
      `override` marks a line priced by the entry's `ProductOverride`. Neither kind
      of line counts toward the period's free quota and tier position.
    - `usage_ids` are the usage entries the line bills, ascending.
    - `phase_from` is the `From` of the plan phase whose variant rated the line, on a
      contract that changed plans (SPEC §11); None otherwise.
    - `discount_id` is the discount a `Discount` line grants.
    """

    kind: LineKind
    description: str
    quantity: Decimal
    free_quantity: Decimal
    billable_quantity: Decimal
    amount: Decimal
    component_id: str | None = None
    late: bool = False
    override: bool = False
    unit_price: Decimal | None = None
    tiers: tuple[TierCharge, ...] = ()
    usage_ids: tuple[int, ...] = ()
    phase_from: datetime | None = None
    discount_id: str | None = None

    @property
    def counts_toward_period(self) -> bool:
        """True for a line of current-period usage priced by the plan: the lines whose
        quantities and amounts later invoices of the same period build on."""
        return (
            self.kind is LineKind.USAGE
            and self.component_id is not None
            and not self.late
            and not self.override
        )


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    """`subtotal` = Σ line amounts; `tax_amount` = round(subtotal x tax_rate / 100);
    `total` = subtotal + tax_amount. `tax_rate` is in percent."""

    subtotal: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    """An invoice before it is numbered and stored; build it with `draft_invoice`.

    `period_start`/`period_end` are the billing period the invoice belongs to (for a
    final invoice the period ends at the contract's `EndDate`).
    """

    kind: InvoiceKind
    currency: Currency
    period_start: datetime
    period_end: datetime
    lines: tuple[InvoiceLine, ...]
    subtotal: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    total: Decimal


class InvoiceStatus(enum.StrEnum):
    FINALIZED = "Finalized"


@dataclass(frozen=True, slots=True)
class Invoice:
    """An issued invoice: a numbered draft of one contract. It never changes."""

    id: str
    invoice_number: str
    contract_id: str
    customer_id: str
    document_date: datetime
    period_index: int
    """The contract's billing period the invoice belongs to (0 is the first)."""
    draft: InvoiceDraft
    status: InvoiceStatus = InvoiceStatus.FINALIZED
    due_date: datetime | None = None
    """`document_date` + the payment terms; None on invoices issued before due dates."""
    seller: Party | None = None
    customer: Party | None = None
    """Who issued and who received it, as they were when it was issued (SPEC §8)."""


def effective_tax_rate(customer_rate: Decimal | None, plan_variant_rate: Decimal) -> Decimal:
    """The tax rate (percent) of an invoice: the customer's when set, else the plan
    variant's (SPEC §3: the customer's `TaxRate` overrides the plan variant's).

    A customer rate of 0 is a set rate and wins over the plan variant's.
    """
    return plan_variant_rate if customer_rate is None else customer_rate


def invoice_totals(
    lines: Iterable[InvoiceLine], tax_rate: Decimal, currency: Currency
) -> InvoiceTotals:
    """The totals of an invoice of `lines` at `tax_rate` percent (SPEC §7 "Money").

    Every line amount must already be rounded to `currency`, with exactly its minor
    unit's places as `round_amount` leaves it (`ValueError` otherwise), so the subtotal
    is their exact sum and never rounds again. The tax is the one rounding here:
    `round_amount(subtotal x tax_rate / 100)`, half-up (10.05 at 19 % is 1.9095,
    charged 1.91). All three amounts carry the currency's minor unit, also for an
    invoice without lines (EUR 0.00). Exact: `total == subtotal + tax_amount`.
    """
    if not tax_rate.is_finite():
        raise ValueError(f"a tax rate must be finite, not {tax_rate}")
    with localcontext(_EXACT):
        subtotal = Decimal(0) * currency.quantum  # zero with the currency's places
        for line in lines:
            if line.amount.as_tuple().exponent != -currency.minor_unit:
                raise ValueError(
                    f"line amount {line.amount} is not rounded to {currency.code}'s minor unit"
                )
            subtotal += line.amount
        tax_amount = round_amount(subtotal * tax_rate / _PERCENT, currency)
        return InvoiceTotals(
            subtotal=subtotal,
            tax_rate=tax_rate,
            tax_amount=tax_amount,
            total=subtotal + tax_amount,
        )


def draft_invoice(
    *,
    kind: InvoiceKind,
    currency: Currency,
    period_start: datetime,
    period_end: datetime,
    lines: Iterable[InvoiceLine],
    tax_rate: Decimal,
) -> InvoiceDraft:
    """An invoice of `lines` in their given order, with its totals from `invoice_totals`.

    `period_start <= period_end` is required (`ValueError`); the two are equal only
    for a final invoice of a contract that ends on its last billing date.
    """
    if period_end < period_start:
        raise ValueError(f"an invoice period must not end before it starts: {period_start}")
    kept = tuple(lines)
    totals = invoice_totals(kept, tax_rate, currency)
    return InvoiceDraft(
        kind=kind,
        currency=currency,
        period_start=period_start,
        period_end=period_end,
        lines=kept,
        subtotal=totals.subtotal,
        tax_rate=totals.tax_rate,
        tax_amount=totals.tax_amount,
        total=totals.total,
    )
