"""SPEC §10 credit note arithmetic, pure: tax at the invoice's rate, the last credit
takes the last of the tax, and amounts past the default decimal context stay exact."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from arrears.domain.credit_notes import (
    CreditNote,
    LineCredit,
    credit_note_draft,
    credited_by,
    fully_credited,
)
from arrears.domain.errors import Conflict
from arrears.domain.invoices import Invoice, InvoiceKind, InvoiceLine, LineKind, draft_invoice
from arrears.domain.money import currency
from arrears.domain.payments import PaymentStatus, balance

EUR = currency("EUR")
DAY = datetime(2026, 2, 1, tzinfo=UTC)


def _invoice(*amounts: str, tax_rate: str = "19") -> Invoice:
    lines = [
        InvoiceLine(
            LineKind.RATED_ITEM, f"Item {n}", Decimal(1), Decimal(0), Decimal(1), Decimal(a)
        )
        for n, a in enumerate(amounts)
    ]
    draft = draft_invoice(
        kind=InvoiceKind.REGULAR,
        currency=EUR,
        period_start=DAY,
        period_end=DAY,
        lines=lines,
        tax_rate=Decimal(tax_rate),
    )
    return Invoice("i", "INV-2026-000001", "c", "k", DAY, 0, draft)


def _note(invoice: Invoice, *credits: tuple[int, str]) -> CreditNote:
    notes: list[CreditNote] = []
    draft = credit_note_draft(
        invoice,
        credited_by(notes, EUR),
        [LineCredit(i, Decimal(a)) for i, a in credits] or None,
    )
    return CreditNote("n", "INV-CN-2026-000001", "i", "c", "k", "Why", "EUR", DAY, draft)


def test_tax_is_credited_at_the_invoices_rate_rounded_half_up() -> None:
    note = _note(_invoice("50.00", "28.45", "10.90"), (2, "2.50"))
    assert (note.draft.subtotal, note.draft.tax_amount, note.draft.total) == (
        Decimal("2.50"),
        Decimal("0.48"),
        Decimal("2.98"),
    )


def test_credit_in_pieces_credits_exactly_the_invoices_total() -> None:
    # Two lines of 0.05 at 19 %: 0.10 + 0.02 tax; each half alone rounds to 0.01 tax.
    invoice = _invoice("0.05", "0.05")
    first = _note(invoice, (0, "0.05"))
    rest = credit_note_draft(invoice, credited_by([first], EUR), None)
    assert (first.draft.total, rest.total) == (Decimal("0.06"), Decimal("0.06"))
    assert first.draft.total + rest.total == invoice.draft.total
    second = CreditNote("m", "INV-CN-2026-000002", "i", "c", "k", "Why", "EUR", DAY, rest)
    assert fully_credited(invoice, credited_by([first, second], EUR))


def test_a_credit_beyond_a_line_says_by_how_much() -> None:
    invoice = _invoice("10.90")
    told = "line 0 has 10.90 EUR left, 11.00 EUR is 0.10 EUR too much"
    with pytest.raises(Conflict, match=re.escape(told)):
        _note(invoice, (0, "11.00"))


def test_amounts_past_28_digits_are_credited_and_owed_exactly() -> None:
    wide = "99999999999999999999999999999.99"  # 31 digits
    invoice = _invoice(wide, tax_rate="0")
    note = _note(invoice, (0, "0.01"))
    assert note.draft.total == Decimal("0.01")
    standing = balance(invoice.draft.total, note.draft.total, Decimal("0.00"), voided=False)
    assert standing.amount_due == Decimal("99999999999999999999999999999.98")
    assert standing.payment_status is PaymentStatus.OPEN
