"""What corrections change on an issued invoice (SPEC §10): the amounts credited and
paid and the payment status, read and written under the invoice's row lock, so that
concurrent credit notes and payments of one invoice queue instead of overdrawing it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update

from arrears.domain.money import currency, round_amount
from arrears.domain.payments import Balance, PaymentStatus, balance
from arrears.store.tables import InvoiceRow
from arrears.store.tenancy import TenantRepository
from arrears.store.usage import batched

__all__ = ["InvoiceBalances", "LockedInvoice"]


@dataclass(frozen=True, slots=True)
class LockedInvoice:
    id: str
    invoice_number: str
    contract_id: str
    customer_id: str
    kind: str
    period_index: int
    currency: str
    total: Decimal
    balance: Balance


class InvoiceBalances(TenantRepository):
    def balances(self, invoice_ids: Sequence[str]) -> dict[str, Balance]:
        """Where each of these invoices stands (no lock), a query per 2,000."""
        found: dict[str, Balance] = {}
        for chunk in batched(invoice_ids, 2_000):
            query = select(
                InvoiceRow.id,
                InvoiceRow.currency,
                InvoiceRow.total,
                InvoiceRow.amount_credited,
                InvoiceRow.amount_paid,
                InvoiceRow.payment_status,
            ).where(InvoiceRow.seller_id == self.seller_id, InvoiceRow.id.in_(chunk))
            for id_, code, total, credited, paid, status in self._session.execute(query):
                found[id_] = _balance(code, total, credited, paid, status)
        return found

    def lock(self, invoice_id: str) -> LockedInvoice:
        """The invoice's balance, its row locked until the transaction ends (`NotFound`
        for an id this seller has no invoice of)."""
        row = self._row(InvoiceRow, invoice_id, "invoice", for_update=True)
        return LockedInvoice(
            id=row.id,
            invoice_number=row.invoice_number,
            contract_id=row.contract_id,
            customer_id=row.customer_id,
            kind=row.kind,
            period_index=row.period_index,
            currency=row.currency,
            total=round_amount(row.total, currency(row.currency)),
            balance=_balance(
                row.currency, row.total, row.amount_credited, row.amount_paid, row.payment_status
            ),
        )

    def save(self, invoice_id: str, new: Balance, voided_at: datetime | None = None) -> None:
        """Store the invoice's new balance (the caller holds its lock)."""
        values: dict[str, object] = {
            "amount_credited": new.amount_credited,
            "amount_paid": new.amount_paid,
            "payment_status": new.payment_status.value,
        }
        if voided_at is not None:
            values["voided_at"] = voided_at
        self._session.execute(
            update(InvoiceRow)
            .where(InvoiceRow.seller_id == self.seller_id, InvoiceRow.id == invoice_id)
            .values(**values)
        )


def _balance(code: str, total: Decimal, credited: Decimal, paid: Decimal, status: str) -> Balance:
    unit = currency(code)
    return balance(
        round_amount(total, unit),
        round_amount(credited, unit),
        round_amount(paid, unit),
        voided=status == PaymentStatus.VOIDED,
    )
