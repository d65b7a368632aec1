"""Payments received for invoices (SPEC §10), unique per invoice and reference."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from arrears.domain.money import currency, round_amount
from arrears.domain.payments import Payment
from arrears.store.tables import PaymentRow
from arrears.store.tenancy import TenantRepository

__all__ = ["PaymentRepository"]


class PaymentRepository(TenantRepository):
    def find(self, invoice_id: str, reference: str, code: str) -> Payment | None:
        query = self._scoped(PaymentRow).where(
            PaymentRow.invoice_id == invoice_id, PaymentRow.reference == reference
        )
        row = self._session.execute(query).scalar_one_or_none()
        return None if row is None else _payment(row, code)

    def add(self, payment: Payment) -> bool:
        """Store `payment`; False when its reference is stored for the invoice already
        (the unique key decides, not a lookup before, and nothing is written)."""
        try:
            with self._session.begin_nested():
                self._session.add(
                    PaymentRow(
                        id=payment.id,
                        seller_id=self.seller_id,
                        created_at=payment.created_at,
                        invoice_id=payment.invoice_id,
                        amount=payment.amount,
                        paid_at=payment.paid_at,
                        reference=payment.reference,
                    )
                )
        except IntegrityError:
            return False
        return True

    def of_invoice(self, invoice_id: str, code: str) -> list[Payment]:
        query = (
            self._scoped(PaymentRow)
            .where(PaymentRow.invoice_id == invoice_id)
            .order_by(PaymentRow.paid_at, PaymentRow.id)
        )
        return [_payment(row, code) for row in self._session.execute(query).scalars()]


def _payment(row: PaymentRow, code: str) -> Payment:
    return Payment(
        id=row.id,
        invoice_id=row.invoice_id,
        amount=round_amount(row.amount, currency(code)),
        paid_at=row.paid_at,
        reference=row.reference,
        created_at=row.created_at,
    )
