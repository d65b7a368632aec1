"""Use cases: the documents of an issued invoice or credit note (SPEC §12). They read
the invoice (or credit note), its balance, the seller's profile and the customer in the
caller's unit of work (tenant-scoped: a foreign id is a 404) and map them to the documents
layer's `InvoiceDocument`; they never commit.

The parties are the invoice's own, as they were when it was issued (SPEC §8); an invoice
issued before invoices kept them shows today's. The logo, the footer and the contact
details are the seller profile's as it is now.
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
    Logo,
    PrecedingInvoice,
)
from arrears.documents.model import BankAccount as DocumentBankAccount
from arrears.documents.model import Party as DocumentParty
from arrears.domain.catalog import Customer
from arrears.domain.invoices import Invoice, InvoiceLine
from arrears.domain.profiles import DEFAULT_PAYMENT_TERMS_DAYS, Party, SellerProfile
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "CreditedLine",
    "credit_note_document",
    "credit_note_document_of",
    "document_of_invoice",
    "invoice_document",
]

_DEFAULT_LOCALE = "en-US"


def invoice_document(work: UnitOfWork, invoice_id: str) -> InvoiceDocument:
    """The document of the unit's seller's invoice `invoice_id` (`NotFound` for
    another's)."""
    invoice = work.invoices.invoice(invoice_id)
    balance = work.invoice_balances.balances([invoice_id])[invoice_id]
    profiles = work.seller_profiles
    seller = invoice.seller or profiles.seller_party()[0]
    customer = work.catalog.customer(invoice.customer_id)
    return document_of_invoice(
        invoice, seller, customer, profile=profiles.get(), amount_due=balance.amount_due
    )


def credit_note_document(work: UnitOfWork, credit_note_id: str) -> InvoiceDocument:
    """The document of the unit's seller's credit note `credit_note_id` (`NotFound` for
    another's): its invoice's parties, referring to the invoice."""
    note = work.credit_notes.credit_note(credit_note_id)
    invoice = invoice_document(work, note.invoice_id)
    return credit_note_document_of(
        invoice,
        number=note.credit_note_number,
        document_date=note.document_date,
        reason=note.reason,
        lines=[CreditedLine(line.description, line.amount) for line in note.draft.lines],
        subtotal=note.draft.subtotal,
        tax_amount=note.draft.tax_amount,
        total=note.draft.total,
    )


def document_of_invoice(
    invoice: Invoice,
    seller: Party,
    customer: Customer,
    *,
    profile: SellerProfile | None = None,
    amount_due: Decimal | None = None,
) -> InvoiceDocument:
    """`invoice` as its documents show it: dates as UTC days, the period's last day
    inclusive (a stored period ends at an exclusive instant), every line as issued,
    `amount_due` (default: the total) still to pay."""
    draft = invoice.draft
    issue_day = invoice.document_date.date()
    due = invoice.due_date or invoice.document_date + timedelta(days=DEFAULT_PAYMENT_TERMS_DAYS)
    return InvoiceDocument(
        kind=DocumentKind.INVOICE,
        number=invoice.invoice_number,
        issue_date=issue_day,
        currency=draft.currency.code,
        minor_unit=draft.currency.minor_unit,
        seller=_seller_party(seller, profile),
        customer=_customer_party(invoice.customer, customer),
        lines=tuple(_line(line) for line in draft.lines),
        subtotal=draft.subtotal,
        tax_rate=draft.tax_rate,
        tax_amount=draft.tax_amount,
        total=draft.total,
        amount_due=draft.total if amount_due is None else amount_due,
        locale=customer.locale or _DEFAULT_LOCALE,
        due_date=due.date(),
        period_start=draft.period_start.date(),
        period_end=_last_day(draft.period_start, draft.period_end),
        payment_terms_days=(due.date() - issue_day).days,
        customer_reference=customer.external_customer_id or customer.id,
        footer=None if profile is None else profile.footer,
    )


def _seller_party(seller: Party, profile: SellerProfile | None) -> DocumentParty:
    bank = seller.bank_account
    logo = None if profile is None else profile.logo
    return DocumentParty(
        name=seller.name,
        address=_address(seller.address),
        vat_id=seller.vat_id,
        tax_number=seller.tax_number,
        email=None if profile is None else profile.email,
        phone=None if profile is None else profile.phone,
        bank_account=None
        if bank is None
        else DocumentBankAccount(bank.iban, bank.bic, bank.account_holder),
        logo=None if logo is None else Logo(_media_type(logo), logo),
    )


def _media_type(image: bytes) -> str:
    # The profile keeps a PNG or an SVG (SPEC §12); a PNG starts with its signature.
    return "image/png" if image.startswith(b"\x89PNG") else "image/svg+xml"


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


def _customer_party(issued: Party | None, customer: Customer) -> DocumentParty:
    if issued is not None:
        return DocumentParty(
            name=issued.name, address=_address(issued.address), vat_id=issued.vat_id
        )
    person = " ".join(part for part in (customer.first_name, customer.last_name) if part)
    name = customer.company_name or person or customer.external_customer_id or customer.id
    return DocumentParty(
        name=name, address=_address(customer.address), email=customer.email_address
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
