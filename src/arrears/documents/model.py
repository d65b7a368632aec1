"""What a document is made from: an invoice or a credit note exactly as it was issued.

The documents layer knows nothing of the database or the API: the caller maps its
stored invoice (and the seller and customer as they were when it was issued) to these
plain values, and every renderer (HTML, PDF, CII, UBL, Factur-X) reads only them. So
the same `InvoiceDocument` always yields the same bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

__all__ = [
    "Address",
    "BankAccount",
    "DocumentKind",
    "DocumentLine",
    "DocumentTier",
    "InvoiceDocument",
    "Logo",
    "Party",
    "PrecedingInvoice",
]


class DocumentKind(enum.StrEnum):
    """An invoice (UNTDID 1001 code 380) or a credit note (381)."""

    INVOICE = "Invoice"
    CREDIT_NOTE = "CreditNote"

    @property
    def type_code(self) -> str:
        return "380" if self is DocumentKind.INVOICE else "381"


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address; `country` is ISO 3166 alpha-2."""

    line1: str
    postal_code: str
    city: str
    country: str
    line2: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class BankAccount:
    iban: str
    bic: str | None = None
    account_holder: str | None = None


@dataclass(frozen=True, slots=True)
class Logo:
    """The seller's logo: PNG or SVG bytes and their media type."""

    media_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Party:
    """A seller or a customer as it was when the document was issued.

    `address` is None where none was known; the e-invoices refuse such a party
    (`MissingDocumentData`), the PDF shows the name alone.
    """

    name: str
    address: Address | None = None
    vat_id: str | None = None
    tax_number: str | None = None
    email: str | None = None
    phone: str | None = None
    bank_account: BankAccount | None = None
    logo: Logo | None = None


@dataclass(frozen=True, slots=True)
class DocumentTier:
    """One tier of a line's charge: `quantity` x `unit_price` = `amount`, unrounded."""

    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DocumentLine:
    """One line as issued. `kind` is the SPEC's wire name (`Usage`, `RecurringFee`,
    `RatedItem`, `Discount`, `Commitment`, `Quantity`, or `Credit` on a credit note).

    `amount` is rounded to the currency's minor unit and may be negative (a discount,
    a volume tier reached later in the period). `unit_price` is set when the whole
    line is one price per unit; `tiers` is the exact breakdown otherwise.
    """

    kind: str
    description: str
    amount: Decimal
    quantity: Decimal = Decimal(1)
    free_quantity: Decimal = Decimal(0)
    billable_quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    tiers: tuple[DocumentTier, ...] = ()
    late: bool = False
    override: bool = False

    @property
    def is_discount(self) -> bool:
        return self.kind == "Discount"


@dataclass(frozen=True, slots=True)
class PrecedingInvoice:
    """The invoice a credit note corrects (EN 16931 BG-3)."""

    number: str
    issue_date: date


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """An invoice or credit note as issued; every amount carries the currency's minor
    unit (`minor_unit` places). `amount_due` is what is still to pay; on a credit note
    it is the total to refund. `locale` is the customer's (`de-DE`, `en-US`, ...)."""

    kind: DocumentKind
    number: str
    issue_date: date
    currency: str
    minor_unit: int
    seller: Party
    customer: Party
    lines: tuple[DocumentLine, ...]
    subtotal: Decimal
    tax_rate: Decimal
    tax_amount: Decimal
    total: Decimal
    amount_due: Decimal
    locale: str = "en-US"
    due_date: date | None = None
    period_start: date | None = None
    period_end: date | None = None
    """The last day of the period, inclusive (a stored period ends at an exclusive
    instant; the mapping subtracts the day)."""
    payment_terms_days: int | None = None
    customer_reference: str | None = None
    """The customer's id at the seller (EN 16931 BT-10 buyer reference)."""
    preceding_invoice: PrecedingInvoice | None = None
    reason: str | None = None
    footer: str | None = None
    notes: tuple[str, ...] = field(default=())
