"""What an invoice's customer still owes (SPEC §10): payments, credits and the status
they give the invoice."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal, Inexact, InvalidOperation, localcontext
from typing import Final

from arrears.domain.errors import Conflict, Invalid
from arrears.domain.limits import DECIMAL_PRECISION
from arrears.domain.money import Currency, amount_errors

__all__ = ["EXACT", "Balance", "Payment", "PaymentStatus", "balance", "check_payment"]


# Amounts reach 30 digits and more (domain.limits), past the default context's 28: sums
# and differences are made exact in this one, and any rounding would be an error.
EXACT: Final = Context(prec=DECIMAL_PRECISION, traps=[Inexact, InvalidOperation])


class PaymentStatus(enum.StrEnum):
    """The values are the SPEC's wire names."""

    OPEN = "Open"
    PAID = "Paid"
    VOIDED = "Voided"


@dataclass(frozen=True, slots=True)
class Payment:
    """Money received for an invoice; `reference` makes recording it idempotent."""

    id: str
    invoice_id: str
    amount: Decimal
    paid_at: datetime
    reference: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Balance:
    amount_credited: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    payment_status: PaymentStatus


def balance(
    total: Decimal, amount_credited: Decimal, amount_paid: Decimal, *, voided: bool
) -> Balance:
    """`AmountDue = Total - AmountCredited - AmountPaid`; the invoice is `Paid` when
    that reaches 0 (also by credits alone), `Voided` once voided, else `Open`."""
    with localcontext(EXACT):
        due = total - amount_credited - amount_paid
    if voided:
        status = PaymentStatus.VOIDED
    elif due <= 0:
        status = PaymentStatus.PAID
    else:
        status = PaymentStatus.OPEN
    return Balance(amount_credited, amount_paid, due, status)


def check_payment(amount: Decimal, due: Balance, currency: Currency, invoice_number: str) -> None:
    """A payment is above 0, in the currency's minor unit, and at most what is due:
    `Invalid` or `Conflict` (saying by how much) otherwise; a voided invoice takes none."""
    if errors := amount_errors("Amount", amount, currency):
        raise Invalid(errors)
    if due.payment_status is PaymentStatus.VOIDED:
        raise Conflict(f"Invoice {invoice_number} is voided: nothing is due.")
    if amount > due.amount_due:
        with localcontext(EXACT):
            excess = amount - due.amount_due
        raise Conflict(
            f"Invoice {invoice_number} has {max(due.amount_due, Decimal(0))} {currency.code} "
            f"due; {amount} is {excess} too much."
        )
