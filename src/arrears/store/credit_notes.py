"""Credit notes in storage (SPEC §10): their own gapless number sequence per seller and
year, stored once, read by invoice, customer and document date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, update
from sqlalchemy.exc import IntegrityError

from arrears.domain.credit_notes import CreditLine, CreditNote, CreditNoteDraft
from arrears.domain.money import currency, round_amount
from arrears.domain.paging import Page, PageRequest
from arrears.store.tables import CreditNoteRow, CreditNoteSequenceRow
from arrears.store.tenancy import TenantRepository

__all__ = ["CreditNoteFilter", "CreditNoteRepository"]


@dataclass(frozen=True, slots=True)
class CreditNoteFilter:
    invoice_id: str | None = None
    customer_id: str | None = None
    document_from: datetime | None = None
    document_to: datetime | None = None


class CreditNoteRepository(TenantRepository):
    def reserve_number(self, prefix: str, year: int) -> str:
        """The next number `<prefix>-CN-<year>-<000001>` of this seller's gapless credit
        note sequence for `year`. The sequence row stays locked until the transaction
        ends, so concurrent credit notes of one seller queue here, and a rollback gives
        the number back. The same statements on both databases: the year's first number
        inserts the row, and a concurrent first insert waits on its key, then counts on."""
        number = self._advance(year)
        if number is None:
            try:
                with self._session.begin_nested():
                    self._session.add(
                        CreditNoteSequenceRow(seller_id=self.seller_id, year=year, last=0)
                    )
            except IntegrityError:
                pass  # another transaction made the year's row: count on from its number
            number = self._advance(year)
        if number is None:  # the row exists now, ours or committed by another
            raise RuntimeError(f"the credit note sequence of {year} was not made")
        return f"{prefix}-CN-{year}-{number:06d}"

    def _advance(self, year: int) -> int | None:
        result: int | None = self._session.execute(
            update(CreditNoteSequenceRow)
            .where(
                CreditNoteSequenceRow.seller_id == self.seller_id,
                CreditNoteSequenceRow.year == year,
            )
            .values(last=CreditNoteSequenceRow.last + 1)
            .returning(CreditNoteSequenceRow.last)
        ).scalar_one_or_none()
        return result

    def add(self, note: CreditNote) -> None:
        draft = note.draft
        self._session.add(
            CreditNoteRow(
                id=note.id,
                seller_id=self.seller_id,
                created_at=note.document_date,
                invoice_id=note.invoice_id,
                contract_id=note.contract_id,
                customer_id=note.customer_id,
                credit_note_number=note.credit_note_number,
                reason=note.reason,
                currency=note.currency,
                document_date=note.document_date,
                lines=[
                    {
                        "LineIndex": line.line_index,
                        "Description": line.description,
                        "Amount": line.amount,
                    }
                    for line in draft.lines
                ],
                subtotal=draft.subtotal,
                tax_amount=draft.tax_amount,
                total=draft.total,
            )
        )
        self._session.flush()

    def credit_note(self, credit_note_id: str) -> CreditNote:
        return _credit_note(self._row(CreditNoteRow, credit_note_id, "credit note"))

    def of_invoice(self, invoice_id: str) -> list[CreditNote]:
        """The invoice's credit notes, in the order they were issued."""
        query = (
            self._scoped(CreditNoteRow)
            .where(CreditNoteRow.invoice_id == invoice_id)
            .order_by(CreditNoteRow.credit_note_number)
        )
        return [_credit_note(row) for row in self._session.execute(query).scalars()]

    def credit_notes(self, note_filter: CreditNoteFilter, page: PageRequest) -> Page[CreditNote]:
        query: Select[tuple[CreditNoteRow]] = self._scoped(CreditNoteRow)
        if note_filter.invoice_id is not None:
            query = query.where(CreditNoteRow.invoice_id == note_filter.invoice_id)
        if note_filter.customer_id is not None:
            query = query.where(CreditNoteRow.customer_id == note_filter.customer_id)
        if note_filter.document_from is not None:
            query = query.where(CreditNoteRow.document_date >= note_filter.document_from)
        if note_filter.document_to is not None:
            query = query.where(CreditNoteRow.document_date < note_filter.document_to)
        return self._page(query, CreditNoteRow, page, _credit_note)


def _credit_note(row: CreditNoteRow) -> CreditNote:
    code = currency(row.currency)
    lines = tuple(
        CreditLine(
            int(str(line["LineIndex"])),
            str(line["Description"]),
            round_amount(Decimal(str(line["Amount"])), code),
        )
        for line in row.lines
    )
    return CreditNote(
        id=row.id,
        credit_note_number=row.credit_note_number,
        invoice_id=row.invoice_id,
        contract_id=row.contract_id,
        customer_id=row.customer_id,
        reason=row.reason,
        currency=row.currency,
        document_date=row.document_date,
        draft=CreditNoteDraft(
            lines,
            round_amount(row.subtotal, code),
            round_amount(row.tax_amount, code),
            round_amount(row.total, code),
        ),
    )
