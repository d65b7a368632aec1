"""Corrections and payments (SPEC §10): credit notes, payments and voids of issued invoices.

An issued invoice never changes; what corrects it are documents that refer to it. Each
use case locks the invoice's row first (`InvoiceBalances.lock`), so that credit notes
and payments of one invoice queue: none of them can overdraw what another just took.

Webhooks (SPEC §13): `creditnote.issued` and `invoice.paid` are events of these use
cases, to be written in the same transaction where the comments `event:` stand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext

from arrears.domain.clock import Clock
from arrears.domain.credit_notes import (
    CreditNote,
    LineCredit,
    credit_note_draft,
    credited_by,
    fully_credited,
)
from arrears.domain.errors import Conflict, NotFound
from arrears.domain.ids import new_id
from arrears.domain.invoices import InvoiceKind
from arrears.domain.money import currency
from arrears.domain.paging import Page, PageRequest
from arrears.domain.payments import (
    EXACT,
    Balance,
    Payment,
    PaymentStatus,
    balance,
    check_payment,
)
from arrears.domain.voids import check_voidable, reopened
from arrears.domain.webhooks import EventType
from arrears.services import webhooks
from arrears.store.credit_notes import CreditNoteFilter
from arrears.store.invoice_balances import LockedInvoice
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "CreditNoteFilter",
    "RecordedPayment",
    "VoidedInvoice",
    "credit_note",
    "credit_notes",
    "issue_credit_note",
    "payments_of",
    "record_payment",
    "void_invoice",
]


def issue_credit_note(
    work: UnitOfWork,
    clock: Clock,
    invoice_id: str,
    *,
    reason: str,
    lines: Sequence[LineCredit] | None,
) -> CreditNote:
    """Credit `lines` of the invoice (None: all it has not credited yet) on a new,
    numbered credit note, and the invoice's `AmountCredited` with it. `Invalid` for
    lines the invoice does not have; `Conflict` beyond a line's amount or the invoice's
    total; `NotFound` for an invoice of no one this seller knows."""
    locked = work.invoice_balances.lock(invoice_id)
    if locked.balance.payment_status is PaymentStatus.VOIDED:
        raise Conflict(f"Invoice {locked.invoice_number} is voided: its credit note is issued.")
    return _credit(work, clock, locked, reason=reason, lines=lines)


def _credit(
    work: UnitOfWork,
    clock: Clock,
    locked: LockedInvoice,
    *,
    reason: str,
    lines: Sequence[LineCredit] | None,
) -> CreditNote:
    invoice = work.invoices.invoice(locked.id)
    notes = work.credit_notes
    code = currency(locked.currency)
    draft = credit_note_draft(invoice, credited_by(notes.of_invoice(locked.id), code), lines)
    now = clock.now()
    note = CreditNote(
        id=new_id(),
        credit_note_number=notes.reserve_number(_prefix(work), now.year),
        invoice_id=locked.id,
        contract_id=locked.contract_id,
        customer_id=locked.customer_id,
        reason=reason,
        currency=locked.currency,
        document_date=now,
        draft=draft,
    )
    notes.add(note)
    before = locked.balance
    with localcontext(EXACT):  # amounts may pass the default context's 28 digits
        credited = before.amount_credited + draft.total
    after = balance(
        locked.total,
        credited,
        before.amount_paid,
        voided=before.payment_status is PaymentStatus.VOIDED,
    )
    work.invoice_balances.save(locked.id, after)
    webhooks.credit_note_issued(work, now, note)
    _paid_if_settled(work, now, locked.id, before, after)
    return note


def _paid_if_settled(
    work: UnitOfWork, now: datetime, invoice_id: str, before: Balance, after: Balance
) -> None:
    """`invoice.paid` when a payment or a credit settles what was left of the invoice."""
    if before.payment_status is not PaymentStatus.PAID and after.payment_status is (
        PaymentStatus.PAID
    ):
        invoice = work.invoices.invoice(invoice_id)
        webhooks.invoice_settled(work, now, EventType.INVOICE_PAID, invoice, after)


def _prefix(work: UnitOfWork) -> str:
    seller = work.sellers.get(work.seller_id)
    if seller is None:  # sellers are never deleted; a 500 is never the answer
        raise NotFound(f"There is no seller {work.seller_id}.")
    return seller.invoice_prefix


@dataclass(frozen=True, slots=True)
class RecordedPayment:
    payment: Payment
    created: bool
    """False when the reference was recorded before: the same payment, answered again."""


def record_payment(
    work: UnitOfWork,
    clock: Clock,
    invoice_id: str,
    *,
    amount: Decimal,
    paid_at: datetime | None,
    reference: str,
) -> RecordedPayment:
    """Record money received for the invoice, at most its `AmountDue` (`Conflict`
    above, saying by how much). The same `reference` with the same amount and date is
    the payment recorded before (nothing is written); with others it is `Conflict`."""
    locked = work.invoice_balances.lock(invoice_id)
    payments = work.payments
    stored = payments.find(locked.id, reference, locked.currency)
    if stored is not None:
        if stored.amount != amount or (paid_at is not None and stored.paid_at != paid_at):
            raise Conflict(
                f"Payment {reference!r} of invoice {locked.invoice_number} was recorded "
                f"with other values ({stored.amount} {locked.currency} paid at "
                f"{stored.paid_at.isoformat()})."
            )
        return RecordedPayment(stored, created=False)
    code = currency(locked.currency)
    check_payment(amount, locked.balance, code, locked.invoice_number)
    now = clock.now()
    payment = Payment(
        id=new_id(),
        invoice_id=locked.id,
        amount=amount.quantize(code.quantum, context=EXACT),
        paid_at=paid_at or now,
        reference=reference,
        created_at=now,
    )
    payments.add(payment)
    before = locked.balance
    with localcontext(EXACT):
        paid = before.amount_paid + payment.amount
    after = balance(locked.total, before.amount_credited, paid, voided=False)
    work.invoice_balances.save(locked.id, after)
    _paid_if_settled(work, now, locked.id, before, after)
    return RecordedPayment(payment, created=True)


def payments_of(work: UnitOfWork, invoice_id: str) -> list[Payment]:
    """The invoice's payments, by when they were made (`NotFound` for a foreign id)."""
    code = work.invoices.invoice(invoice_id).draft.currency.code
    return work.payments.of_invoice(invoice_id, code)


def credit_note(work: UnitOfWork, credit_note_id: str) -> CreditNote:
    """The credit note; `NotFound` for a foreign id."""
    return work.credit_notes.credit_note(credit_note_id)


def credit_notes(
    work: UnitOfWork, note_filter: CreditNoteFilter, page: PageRequest
) -> Page[CreditNote]:
    """The seller's credit notes, newest first, by invoice, customer and document date."""
    return work.credit_notes.credit_notes(note_filter, page)


@dataclass(frozen=True, slots=True)
class VoidedInvoice:
    invoice_id: str
    credit_note: CreditNote | None
    """What the void credited; None when earlier credit notes had credited everything."""
    usage_entries: int
    rated_items: int
    """How many usage entries and rated items became unbilled again."""


def void_invoice(work: UnitOfWork, clock: Clock, invoice_id: str, *, reason: str) -> VoidedInvoice:
    """Void the invoice (SPEC §10): its usage entries and rated items unbilled again, a
    regular invoice's period (a final invoice's contract) reopened for the next billing
    run, what is not yet credited credited, `PaymentStatus` Voided. All in the caller's
    transaction: a void is whole or not at all.

    The contract is locked before the invoice, in the order billing locks them.
    `Conflict` for a paid or voided invoice, or one a later invoice builds on
    (`domain.voids`)."""
    contract_id = work.invoices.invoice(invoice_id).contract_id
    contracts = work.contracts
    contract = contracts.get(contract_id, for_update=True)
    balances = work.invoice_balances
    locked = balances.lock(invoice_id)
    kind = InvoiceKind(locked.kind)
    check_voidable(locked.invoice_number, kind, locked.period_index, locked.balance, contract)
    entries, items = work.reopening.unbill(invoice_id)
    if kind is not InvoiceKind.INTERIM:
        contracts.save_billing_state(reopened(kind, locked.period_index, contract))
    invoice = work.invoices.invoice(invoice_id)
    credited = credited_by(work.credit_notes.of_invoice(invoice_id), invoice.draft.currency)
    note = None
    if not fully_credited(invoice, credited):
        note = _credit(work, clock, locked, reason=reason, lines=None)
    after = balances.lock(invoice_id).balance
    voided = balance(locked.total, after.amount_credited, after.amount_paid, voided=True)
    balances.save(invoice_id, voided, voided_at=clock.now())
    # After the credit note's own event, if the void credited anything.
    webhooks.invoice_settled(work, clock.now(), EventType.INVOICE_VOIDED, invoice, voided)
    return VoidedInvoice(invoice_id, note, entries, items)
