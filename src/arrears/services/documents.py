"""Use case: the documents of an issued invoice (SPEC §12). Reads the invoice, its
seller and its customer through the caller's unit of work (tenant-scoped: a foreign id
is a 404) and maps them to the documents layer's `InvoiceDocument`; never commits.

The seller and customer parties are taken as the store has them. (Until invoices keep
a snapshot of both as issued, SPEC §8, they are today's: the mapping is the one place
to change when the snapshot exists.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from arrears.documents.model import (
    Address,
    DocumentKind,
    DocumentLine,
    DocumentTier,
    InvoiceDocument,
    Party,
    PrecedingInvoice,
)
from arrears.domain.catalog import Customer
from arrears.domain.errors import NotFound
from arrears.domain.invoices import Invoice, InvoiceLine
from arrears.store.sellers import SellerRecord
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "DEFAULT_PAYMENT_TERMS_DAYS",
    "CreditedLine",
    "credit_note_document_of",
    "document_of_invoice",
    "invoice_document",
]

DEFAULT_PAYMENT_TERMS_DAYS = 14  # SPEC §8: DueDate is DocumentDate + 14 days by default
_DEFAULT_LOCALE = "en-US"


def invoice_document(work: UnitOfWork, invoice_id: str) -> InvoiceDocument:
    """The document of the unit's seller's invoice `invoice_id` (`NotFound` for
    another's)."""
    invoice = work.invoices.invoice(invoice_id)
    seller = work.sellers.get(work.seller_id)
    if seller is None:  # sellers are never deleted, but a 500 is never the answer
        raise NotFound(f"There is no seller {work.seller_id}.")
    customer = work.catalog.customer(invoice.customer_id)
    return document_of_invoice(invoice, seller, customer)


def document_of_invoice(
    invoice: Invoice, seller: SellerRecord, customer: Customer
) -> InvoiceDocument:
    """`invoice` as its documents show it: dates as UTC days, the period's last day
    inclusive (a stored period ends at an exclusive instant), every line as issued."""
    draft = invoice.draft
    issue_day = invoice.document_date.date()
    terms = DEFAULT_PAYMENT_TERMS_DAYS
    return InvoiceDocument(
        kind=DocumentKind.INVOICE,
        number=invoice.invoice_number,
        issue_date=issue_day,
        currency=draft.currency.code,
        minor_unit=draft.currency.minor_unit,
        seller=Party(name=seller.name),
        customer=_customer_party(customer),
        lines=tuple(_line(line) for line in draft.lines),
        subtotal=draft.subtotal,
        tax_rate=draft.tax_rate,
        tax_amount=draft.tax_amount,
        total=draft.total,
        amount_due=draft.total,
        locale=customer.locale or _DEFAULT_LOCALE,
        due_date=issue_day + timedelta(days=terms),
        period_start=draft.period_start.date(),
        period_end=_last_day(draft.period_start, draft.period_end),
        payment_terms_days=terms,
        customer_reference=customer.external_customer_id or customer.id,
    )


@dataclass(frozen=True, slots=True)
class CreditedLine:
    description: str
    amount: Decimal


def credit_note_document_of(
    invoice: InvoiceDocument,
    *,
    number: str,
    document_date: datetime,
    reason: str,
    lines: Sequence[CreditedLine],
    subtotal: Decimal,
    tax_amount: Decimal,
    total: Decimal,
) -> InvoiceDocument:
    """A credit note (SPEC §10) as its documents show it: the invoice's parties, currency,
    rate and period, its own lines (one unit at the amount credited), referring to the
    invoice (EN 16931 BG-3); nothing is due on it."""
    return replace(
        invoice,
        kind=DocumentKind.CREDIT_NOTE,
        number=number,
        issue_date=document_date.date(),
        lines=tuple(
            DocumentLine(
                kind="Credit",
                description=line.description,
                amount=line.amount,
                unit_price=line.amount,
            )
            for line in lines
        ),
        subtotal=subtotal,
        tax_amount=tax_amount,
        total=total,
        amount_due=total,
        due_date=None,
        payment_terms_days=None,
        preceding_invoice=PrecedingInvoice(invoice.number, invoice.issue_date),
        reason=reason,
    )


def _last_day(start: datetime, end: datetime) -> date:
    return end.date() if end <= start else (end - timedelta(microseconds=1)).date()


def _customer_party(customer: Customer) -> Party:
    person = " ".join(part for part in (customer.first_name, customer.last_name) if part)
    name = customer.company_name or person or customer.external_customer_id or customer.id
    return Party(
        name=name,
        address=_address(customer.address),
        email=customer.email_address,
    )


def _address(stored: Mapping[str, str] | None) -> Address | None:
    """A stored address as a postal address, or None without a street, city or country.
    Reads both the SPEC §12 keys (`Line1`, `Region`) and the customer API's older ones
    (`address_line1`, `street` and `house_number`, `state`)."""
    if not stored:
        return None
    keys = {key.lower().replace("_", ""): value for key, value in stored.items() if value}
    street = " ".join(keys[k] for k in ("street", "housenumber") if k in keys)
    line1 = keys.get("line1") or keys.get("addressline1") or street
    city, country = keys.get("city"), keys.get("country")
    if not (line1 and city and country):
        return None
    return Address(
        line1=line1,
        line2=keys.get("line2") or keys.get("addressline2"),
        postal_code=keys.get("postalcode", ""),
        city=city,
        region=keys.get("region") or keys.get("state"),
        country=country,
    )


def _line(line: InvoiceLine) -> DocumentLine:
    return DocumentLine(
        kind=line.kind.value,
        description=line.description,
        amount=line.amount,
        quantity=line.quantity,
        free_quantity=line.free_quantity,
        billable_quantity=line.billable_quantity,
        unit_price=line.unit_price,
        tiers=tuple(DocumentTier(t.quantity, t.unit_price, t.amount) for t in line.tiers),
        late=line.late,
        override=line.override,
    )
