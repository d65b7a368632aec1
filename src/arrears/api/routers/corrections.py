"""Contract usage API, corrections and payments (SPEC §10): credit notes, voids that
reopen what an invoice billed, payments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import Field, StringConstraints

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import AnyDecimal, ExactDecimal, Instant, PascalModel, list_response
from arrears.api.paging import Paging
from arrears.api.problems import problem_responses
from arrears.api.routers.documents import (
    BINARY,
    PDF,
    accepts_pdf,
    credit_note_pdf_response,
)
from arrears.api.routers.invoices import InvoiceOut, invoice_out
from arrears.domain.credit_notes import CreditNote, LineCredit
from arrears.domain.payments import Payment
from arrears.services import corrections as service
from arrears.services import invoices

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["corrections"])

InvoiceIdPath = Annotated[str, Path(alias="invoiceId")]
_Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class LineCreditIn(PascalModel):
    line_index: int = Field(ge=0, le=1_000_000, description="The invoice line's position, from 0.")
    amount: AnyDecimal = Field(description="Above 0, at most what the line has left.")


class NewCreditNote(PascalModel):
    reason: _Reason
    lines: list[LineCreditIn] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Without it: everything the invoice has not been credited yet.",
    )


class CreditLineOut(PascalModel):
    line_index: int
    description: str
    amount: ExactDecimal


class CreditNoteOut(PascalModel):
    id: str
    credit_note_number: str
    invoice_id: str
    customer_id: str
    contract_id: str
    reason: str
    currency: str
    document_date: datetime
    lines: list[CreditLineOut]
    subtotal: ExactDecimal
    tax_amount: ExactDecimal
    total: ExactDecimal


_OVERDRAWN = {
    409: "More than a line has left, or than the invoice's total, would be credited "
    "(the detail says by how much); or the invoice is voided."
}


@router.post(
    "/invoices/{invoiceId}/creditnotes",
    status_code=201,
    response_model=CreditNoteOut,
    responses=problem_responses(_OVERDRAWN),
)
def create_credit_note(
    invoice_id: InvoiceIdPath, body: NewCreditNote, seller_id: SellerId, context: Context
) -> Response:
    """Credit amounts of the invoice's lines (tax at the invoice's rate), or without
    `Lines` all it has not been credited yet, on a credit note numbered
    `<prefix>-CN-<year>-<000001>`."""
    lines = (
        None
        if body.lines is None
        else [LineCredit(line.line_index, line.amount) for line in body.lines]
    )
    with context.database.unit_of_work(seller_id) as work:
        note = service.issue_credit_note(
            work, context.clock, invoice_id, reason=body.reason, lines=lines
        )
    return json_response(credit_note_out(note), 201)


@router.get("/creditnotes", response_model=list[CreditNoteOut])
def list_credit_notes(
    *,
    seller_id: SellerId,
    context: Context,
    paging: Paging,
    invoice_id: Annotated[str | None, Query(alias="invoiceId")] = None,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    document_from: Annotated[Instant | None, Query(alias="from")] = None,
    document_to: Annotated[Instant | None, Query(alias="to", description="Exclusive.")] = None,
) -> Response:
    """The seller's credit notes, newest first, by invoice, customer and document date."""
    note_filter = service.CreditNoteFilter(invoice_id, customer_id, document_from, document_to)
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.credit_notes(work, note_filter, paging)
    return list_response([credit_note_out(note) for note in page.items], page.total)


@router.get(
    "/creditnotes/{creditNoteId}",
    response_model=CreditNoteOut,
    responses={
        200: {"content": {PDF: BINARY}, "description": "The credit note (a PDF on Accept)."}
    },
)
def get_credit_note(
    credit_note_id: Annotated[str, Path(alias="creditNoteId")],
    seller_id: SellerId,
    context: Context,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The credit note; its PDF (as `/pdf`) for `Accept: application/pdf`."""
    if accepts_pdf(accept):
        return credit_note_pdf_response(context, seller_id, credit_note_id)
    with context.database.unit_of_work(seller_id, "read") as work:
        note = service.credit_note(work, credit_note_id)
    return json_response(credit_note_out(note))


def credit_note_out(note: CreditNote) -> CreditNoteOut:
    draft = note.draft
    return CreditNoteOut(
        id=note.id,
        credit_note_number=note.credit_note_number,
        invoice_id=note.invoice_id,
        customer_id=note.customer_id,
        contract_id=note.contract_id,
        reason=note.reason,
        currency=note.currency,
        document_date=note.document_date,
        lines=[
            CreditLineOut(
                line_index=line.line_index, description=line.description, amount=line.amount
            )
            for line in draft.lines
        ],
        subtotal=draft.subtotal,
        tax_amount=draft.tax_amount,
        total=draft.total,
    )


# -- void ---------------------------------------------------------------------------------


class VoidRequest(PascalModel):
    reason: _Reason


@router.post(
    "/invoices/{invoiceId}/void",
    response_model=InvoiceOut,
    responses=problem_responses(
        {
            409: "The invoice is voided already, has payments (credit it instead), or a "
            "later invoice of its contract builds on it (void that first)."
        }
    ),
)
def void_invoice(
    invoice_id: InvoiceIdPath, body: VoidRequest, seller_id: SellerId, context: Context
) -> Response:
    """Void the invoice: what it has not been credited is credited (a credit note with
    `Reason`), its usage entries and rated items are unbilled again (so they can be
    deleted or corrected), and a regular or final invoice's period is billed again by
    the next billing run, as if it had never been billed. The invoice itself keeps every
    line; its `PaymentStatus` is `Voided`."""
    with context.database.unit_of_work(seller_id) as work:
        service.void_invoice(work, context.clock, invoice_id, reason=body.reason)
        invoice = invoices.invoice(work, invoice_id)
        standing = invoices.standings(work, [invoice_id])[invoice_id]
    return json_response(invoice_out(invoice, standing))


# -- payments ----------------------------------------------------------------------------


class NewPayment(PascalModel):
    amount: AnyDecimal = Field(description="Above 0, at most the invoice's AmountDue.")
    paid_at: Instant | None = Field(default=None, description="Default: now.")
    reference: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ] = Field(description="The payment's own reference: the same one twice is one payment.")


class PaymentOut(PascalModel):
    id: str
    invoice_id: str
    amount: ExactDecimal
    paid_at: datetime
    reference: str
    created_at: datetime


@router.post(
    "/invoices/{invoiceId}/payments",
    status_code=201,
    response_model=PaymentOut,
    responses={
        200: {
            "description": "The reference was recorded before: that payment.",
            "model": PaymentOut,
        },
        **problem_responses(
            {
                409: "Above the invoice's AmountDue, the invoice is voided, or the "
                "Reference was recorded with other values."
            }
        ),
    },
)
def create_payment(
    invoice_id: InvoiceIdPath, body: NewPayment, seller_id: SellerId, context: Context
) -> Response:
    """Record money received for the invoice, at most its `AmountDue`. Idempotent by
    `Reference`: sent again, the payment recorded before is answered with 200."""
    with context.database.unit_of_work(seller_id) as work:
        recorded = service.record_payment(
            work,
            context.clock,
            invoice_id,
            amount=body.amount,
            paid_at=body.paid_at,
            reference=body.reference,
        )
    return json_response(payment_out(recorded.payment), 201 if recorded.created else 200)


@router.get(
    "/invoices/{invoiceId}/payments", response_model=list[PaymentOut], operation_id="listPayments"
)
def list_payments(invoice_id: InvoiceIdPath, seller_id: SellerId, context: Context) -> Response:
    """The payments recorded for the invoice, by the time they were made."""
    with context.database.unit_of_work(seller_id, "read") as work:
        payments = service.payments_of(work, invoice_id)
    return list_response([payment_out(p) for p in payments], len(payments))


def payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        id=payment.id,
        invoice_id=payment.invoice_id,
        amount=payment.amount,
        paid_at=payment.paid_at,
        reference=payment.reference,
        created_at=payment.created_at,
    )
