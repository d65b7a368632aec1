"""Contract usage API, invoices (SPEC §8), contract previews and interim billing (§7)."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response
from pydantic import Field

from arrears.api.auth import SellerId
from arrears.api.context import AppContext, Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import ExactDecimal, Instant, PascalModel, PlainDecimal, list_response
from arrears.api.paging import Paging
from arrears.api.problems import problem_responses
from arrears.api.profiles import BankAccountDetails
from arrears.api.routers.catalog import Address
from arrears.api.routers.documents import BINARY, PDF, accepts_pdf, invoice_pdf_response
from arrears.api.routers.usage import UsageOut, usage_out
from arrears.domain.invoices import Invoice, InvoiceDraft, InvoiceKind, InvoiceLine, LineKind
from arrears.domain.payments import Balance, PaymentStatus, balance
from arrears.domain.profiles import DEFAULT_PAYMENT_TERMS_DAYS, Party, due_date
from arrears.services import contract_billing
from arrears.services import invoices as service

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["invoices"])

InvoiceIdPath = Annotated[str, Path(alias="invoiceId")]
ContractIdPath = Annotated[str, Path(alias="contractId")]

_CLOSED = {
    409: "The contract has its final invoice: nothing more is billed. Or it cannot be "
    "billed (`type` ending in `billing-failed`; the contract's `BillingError` says why)."
}


class InvoiceState(enum.StrEnum):
    """An issued invoice is Finalized; a preview, never saved, is a Preview."""

    FINALIZED = "Finalized"
    PREVIEW = "Preview"


class TierOut(PascalModel):
    quantity: PlainDecimal
    unit_price: PlainDecimal
    # Absent unless this part charges the tier's flat fee (SPEC §11): parts read as before.
    flat_fee: PlainDecimal = Field(
        default=Decimal(0), exclude_if=lambda fee: not fee, description="The tier's flat fee."
    )
    amount: PlainDecimal


class LineOut(PascalModel):
    kind: LineKind
    component_id: str | None
    description: str
    quantity: PlainDecimal
    free_quantity: PlainDecimal
    billable_quantity: PlainDecimal
    late: bool
    unit_price: PlainDecimal | None
    tiers: list[TierOut]
    # In the currency's minor unit, trailing zeros kept (3.00 EUR).
    amount: ExactDecimal
    usage_ids: list[str]
    # SPEC §11, absent where they do not apply (lines of one plan, lines of no discount).
    phase_from: datetime | None = Field(
        default=None,
        exclude_if=lambda instant: instant is None,
        description="The From of the plan phase whose variant rated the line.",
    )
    discount_id: str | None = Field(
        default=None,
        exclude_if=lambda id_: id_ is None,
        description="The discount a Discount line grants.",
    )


class PartyOut(PascalModel):
    """A seller or customer as the invoice was issued to or by (SPEC §8)."""

    name: str
    address: Address | None
    vat_id: str | None
    tax_number: str | None
    bank_account: BankAccountDetails | None


class InvoiceOut(PascalModel):
    id: str | None
    invoice_number: str | None
    customer_id: str
    contract_id: str
    kind: InvoiceKind
    currency: str
    document_date: datetime
    period_start: datetime
    period_end: datetime
    lines: list[LineOut]
    subtotal: ExactDecimal
    tax_rate: PlainDecimal
    tax_amount: ExactDecimal
    total: ExactDecimal
    status: InvoiceState
    due_date: datetime | None = Field(
        description="DocumentDate + the customer's PaymentTermsDays, else the seller's, "
        "else 14 days; null on a preview."
    )
    payment_status: PaymentStatus
    amount_credited: ExactDecimal
    amount_paid: ExactDecimal
    amount_due: ExactDecimal = Field(description="Total - AmountCredited - AmountPaid.")
    seller: PartyOut | None = Field(description="As issued; null on a preview.")
    customer: PartyOut | None = Field(description="As issued; null on a preview.")


@router.get("/invoices", response_model=list[InvoiceOut])
def list_invoices(
    *,
    seller_id: SellerId,
    context: Context,
    paging: Paging,
    contract_id: Annotated[str | None, Query(alias="contractId")] = None,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
    document_from: Annotated[Instant | None, Query(alias="from")] = None,
    document_to: Annotated[Instant | None, Query(alias="to", description="Exclusive.")] = None,
) -> Response:
    """The seller's invoices, newest first, by contract, customer and document date."""
    invoice_filter = service.InvoiceFilter(contract_id, customer_id, document_from, document_to)
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.invoices(work, invoice_filter, paging)
        standings = service.standings(work, [i.id for i in page.items])
    return list_response([invoice_out(i, standings[i.id]) for i in page.items], page.total)


@router.get(
    "/invoices/{invoiceId}",
    response_model=InvoiceOut,
    responses={200: {"content": {PDF: BINARY}, "description": "The invoice (a PDF on Accept)."}},
)
def get_invoice(
    invoice_id: InvoiceIdPath,
    seller_id: SellerId,
    context: Context,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The invoice; its PDF (as `/pdf`) for `Accept: application/pdf`."""
    if accepts_pdf(accept):
        return invoice_pdf_response(context, seller_id, invoice_id)
    with context.database.unit_of_work(seller_id, "read") as work:
        invoice = service.invoice(work, invoice_id)
        standing = service.standings(work, [invoice_id])[invoice_id]
    return json_response(invoice_out(invoice, standing))


@router.get(
    "/invoices/{invoiceId}/usage", response_model=list[UsageOut], operation_id="listInvoiceUsage"
)
def get_invoice_usage(invoice_id: InvoiceIdPath, seller_id: SellerId, context: Context) -> Response:
    """Every usage entry the invoice bills."""
    with context.database.unit_of_work(seller_id, "read") as work:
        entries = service.invoice_usage(work, invoice_id)
    return list_response([usage_out(e) for e in entries], len(entries))


@router.get(
    "/contracts/{contractId}/preview",
    response_model=InvoiceOut,
    responses=problem_responses(_CLOSED),
)
def preview_contract(
    contract_id: ContractIdPath, seller_id: SellerId, context: Context
) -> Response:
    """The invoice the contract would get if its current period closed now (its usage
    so far, the free quota left, the period's fee), with `Id` and `InvoiceNumber` null.
    Nothing is saved."""
    draft, customer_id = contract_billing.preview(
        context.database, context.clock, seller_id, contract_id
    )
    return json_response(preview_out(draft, contract_id, customer_id, context))


@router.post(
    "/contracts/{contractId}/interimbilling",
    status_code=201,
    response_model=InvoiceOut,
    responses={
        204: {"description": "Nothing was due to bill."},
        **problem_responses(_CLOSED),
    },
)
def bill_interim(contract_id: ContractIdPath, seller_id: SellerId, context: Context) -> Response:
    """Bill every unbilled usage entry due by now at once, on an interim invoice (after
    any regular invoice that is due). 204 when there is nothing to bill."""
    invoice = contract_billing.bill_interim(context.database, context.clock, seller_id, contract_id)
    if invoice is None:
        return Response(status_code=204)
    return json_response(invoice_out(invoice), 201)


def invoice_out(invoice: Invoice, standing: Balance | None = None) -> InvoiceOut:
    """The invoice as issued, with where it stands (`standing`; None: just issued)."""
    draft = invoice.draft
    if standing is None:
        zero = Decimal(0) * draft.currency.quantum
        standing = balance(draft.total, zero, zero, voided=False)
    return _out(
        draft,
        invoice_id=invoice.id,
        number=invoice.invoice_number,
        contract_id=invoice.contract_id,
        customer_id=invoice.customer_id,
        document_date=invoice.document_date,
        status=InvoiceState(invoice.status.value),
    ).model_copy(
        update={
            # Invoices issued before due dates were kept (migration 0014): 14 days.
            "due_date": invoice.due_date
            or due_date(invoice.document_date, DEFAULT_PAYMENT_TERMS_DAYS),
            "payment_status": standing.payment_status,
            "amount_credited": standing.amount_credited,
            "amount_paid": standing.amount_paid,
            "amount_due": standing.amount_due,
            "seller": _party_out(invoice.seller),
            "customer": _party_out(invoice.customer),
        }
    )


def _party_out(party: Party | None) -> PartyOut | None:
    if party is None:
        return None
    account = party.bank_account
    return PartyOut(
        name=party.name,
        address=None if party.address is None else Address.model_validate(party.address),
        vat_id=party.vat_id,
        tax_number=party.tax_number,
        bank_account=None
        if account is None
        else BankAccountDetails(
            iban=account.iban, bic=account.bic, account_holder=account.account_holder
        ),
    )


def preview_out(
    draft: InvoiceDraft, contract_id: str, customer_id: str, context: AppContext
) -> InvoiceOut:
    return _out(
        draft,
        invoice_id=None,
        number=None,
        contract_id=contract_id,
        customer_id=customer_id,
        document_date=context.clock.now(),
        status=InvoiceState.PREVIEW,
    )


def _out(
    draft: InvoiceDraft,
    *,
    invoice_id: str | None,
    number: str | None,
    contract_id: str,
    customer_id: str,
    document_date: datetime,
    status: InvoiceState,
) -> InvoiceOut:
    return InvoiceOut(
        id=invoice_id,
        invoice_number=number,
        customer_id=customer_id,
        contract_id=contract_id,
        kind=draft.kind.value,
        currency=draft.currency.code,
        document_date=document_date,
        period_start=draft.period_start,
        period_end=draft.period_end,
        lines=[_line_out(line) for line in draft.lines],
        subtotal=draft.subtotal,
        tax_rate=draft.tax_rate,
        tax_amount=draft.tax_amount,
        total=draft.total,
        status=status,
        due_date=None,
        payment_status=PaymentStatus.OPEN,
        amount_credited=Decimal(0) * draft.currency.quantum,
        amount_paid=Decimal(0) * draft.currency.quantum,
        amount_due=draft.total,
        seller=None,
        customer=None,
    )


def _line_out(line: InvoiceLine) -> LineOut:
    return LineOut(
        kind=line.kind.value,
        component_id=line.component_id,
        description=line.description,
        quantity=line.quantity,
        free_quantity=line.free_quantity,
        billable_quantity=line.billable_quantity,
        late=line.late,
        unit_price=line.unit_price,
        tiers=[
            TierOut(
                quantity=t.quantity, unit_price=t.unit_price, flat_fee=t.flat_fee, amount=t.amount
            )
            for t in line.tiers
        ],
        amount=line.amount,
        usage_ids=[str(i) for i in line.usage_ids],
        phase_from=line.phase_from,
        discount_id=line.discount_id,
    )
