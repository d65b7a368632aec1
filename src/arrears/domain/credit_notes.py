"""Credit notes (SPEC §10): the documents that correct an issued invoice, which itself
never changes.

A credit note credits amounts of the invoice's lines, at most what each line has left,
and the tax on them at the invoice's rate, rounded once per credit note as an invoice's
tax is (SPEC §7). Two rules keep the credited tax from drifting off the invoice's by a
rounding: the tax credited never passes the invoice's tax, and the credit note that
credits the last of the lines credits the last of the tax. So crediting an invoice in
any number of pieces credits exactly its total.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Final

from arrears.domain.errors import Conflict, FieldError, Invalid
from arrears.domain.invoices import Invoice
from arrears.domain.money import Currency, amount_errors, round_amount
from arrears.domain.payments import EXACT

__all__ = [
    "CreditLine",
    "CreditNote",
    "CreditNoteDraft",
    "Credited",
    "LineCredit",
    "credit_note_draft",
    "credited_by",
    "fully_credited",
]

_PERCENT: Final = Decimal(100)


@dataclass(frozen=True, slots=True)
class LineCredit:
    """What a caller asks to credit: `amount` of the invoice's line `line_index`."""

    line_index: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CreditLine:
    line_index: int
    description: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class CreditNoteDraft:
    lines: tuple[CreditLine, ...]
    subtotal: Decimal
    tax_amount: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class CreditNote:
    """An issued credit note. Like an invoice, it never changes."""

    id: str
    credit_note_number: str
    invoice_id: str
    contract_id: str
    customer_id: str
    reason: str
    currency: str
    document_date: datetime
    draft: CreditNoteDraft


@dataclass(frozen=True, slots=True)
class Credited:
    """What the credit notes of one invoice credited so far."""

    by_line: dict[int, Decimal]
    subtotal: Decimal
    tax_amount: Decimal

    @property
    def total(self) -> Decimal:
        with localcontext(EXACT):
            return self.subtotal + self.tax_amount


def credited_by(notes: Iterable[CreditNote], currency: Currency) -> Credited:
    """The sums of `notes`, all of one invoice: per line, before tax, and of the tax."""
    with localcontext(EXACT):
        return _credited_by(notes, currency)


def _credited_by(notes: Iterable[CreditNote], currency: Currency) -> Credited:
    zero = Decimal(0) * currency.quantum
    by_line: dict[int, Decimal] = {}
    subtotal = tax = zero
    for note in notes:
        for line in note.draft.lines:
            by_line[line.line_index] = by_line.get(line.line_index, zero) + line.amount
        subtotal += note.draft.subtotal
        tax += note.draft.tax_amount
    return Credited(by_line, subtotal, tax)


def fully_credited(invoice: Invoice, credited: Credited) -> bool:
    """True when every line of the invoice is credited its whole amount."""
    return (
        all(
            line.amount == credited.by_line.get(index, 0)
            for index, line in enumerate(invoice.draft.lines)
        )
        and credited.total == invoice.draft.total
    )


def credit_note_draft(
    invoice: Invoice, credited: Credited, requested: Sequence[LineCredit] | None
) -> CreditNoteDraft:
    """The credit note that credits `requested` of `invoice` (None: everything not yet
    credited), after the earlier credit notes' `credited`.

    Raises `Invalid` naming every bad `Lines[i]` (a line the invoice does not have, a
    line named twice, an amount that is not positive or has more places than the
    currency), and `Conflict` when a line would be credited more than it has left, or
    the invoice more than its total, saying by how much; or when nothing is left."""
    with localcontext(EXACT):
        return _draft(invoice, credited, requested)


def _draft(
    invoice: Invoice, credited: Credited, requested: Sequence[LineCredit] | None
) -> CreditNoteDraft:
    draft = invoice.draft
    currency = draft.currency
    left = {
        index: line.amount - credited.by_line.get(index, Decimal(0))
        for index, line in enumerate(draft.lines)
    }
    if requested is None:
        asked = {index: amount for index, amount in left.items() if amount != 0}
    else:
        asked = _checked(requested, left, currency)
    if not asked and credited.total >= draft.total:
        raise Conflict(f"Invoice {invoice.invoice_number} is credited in full already.")
    _within_lines(asked, left, currency)
    lines = tuple(
        CreditLine(index, draft.lines[index].description, round_amount(amount, currency))
        for index, amount in sorted(asked.items())
    )
    subtotal = sum((line.amount for line in lines), Decimal(0) * currency.quantum)
    tax_left = draft.tax_amount - credited.tax_amount
    empties_lines = all(left[index] == asked.get(index, 0) for index in left)
    tax = round_amount(subtotal * draft.tax_rate / _PERCENT, currency)
    tax = tax_left if empties_lines else min(tax, tax_left)
    total = subtotal + tax
    excess = credited.total + total - draft.total
    if excess > 0:
        raise Conflict(
            f"Invoice {invoice.invoice_number} can be credited "
            f"{_amount(draft.total - credited.total, currency)} more; "
            f"this credit note of {_amount(total, currency)} is "
            f"{_amount(excess, currency)} too much."
        )
    return CreditNoteDraft(lines, subtotal, tax, total)


def _checked(
    requested: Sequence[LineCredit], left: dict[int, Decimal], currency: Currency
) -> dict[int, Decimal]:
    errors: list[FieldError] = []
    asked: dict[int, Decimal] = {}
    for position, credit in enumerate(requested):
        at = f"Lines[{position}]"
        if credit.line_index not in left:
            errors.append(
                FieldError(
                    f"{at}.LineIndex",
                    "unknown_line",
                    f"The invoice has lines 0 to {len(left) - 1}; there is no line "
                    f"{credit.line_index}.",
                )
            )
        elif credit.line_index in asked:
            errors.append(
                FieldError(f"{at}.LineIndex", "duplicate_line", "Each line is named at most once.")
            )
        errors.extend(amount_errors(f"{at}.Amount", credit.amount, currency))
        asked.setdefault(credit.line_index, credit.amount)
    if errors:
        raise Invalid(errors)
    return asked


def _within_lines(asked: dict[int, Decimal], left: dict[int, Decimal], currency: Currency) -> None:
    over = [
        f"line {index} has {_amount(max(left[index], Decimal(0)), currency)} left, "
        f"{_amount(amount, currency)} is {_amount(amount - left[index], currency)} too much"
        for index, amount in sorted(asked.items())
        if amount > 0 and amount > left[index]
    ]
    if over:
        raise Conflict("A line is credited at most its amount: " + "; ".join(over) + ".")


def _amount(value: Decimal, currency: Currency) -> str:
    return f"{round_amount(value, currency)} {currency.code}"
