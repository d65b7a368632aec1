"""Small typed factories of `InvoiceDocument`s: every kind of line Arrears bills."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from arrears.documents.model import (
    Address,
    BankAccount,
    DocumentKind,
    DocumentLine,
    DocumentTier,
    InvoiceDocument,
    Logo,
    Party,
    PrecedingInvoice,
)

D = Decimal
MINOR_UNITS = {"EUR": 2, "JPY": 0, "USD": 2}

LOGO = Logo(
    media_type="image/svg+xml",
    data=(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="64" viewBox="0 0 240 64">'
        b'<rect x="0" y="8" width="48" height="48" rx="10" fill="#1f5f8b"/>'
        b'<path d="M12 40 L22 26 L30 34 L38 20" stroke="#fff" stroke-width="4" fill="none"/>'
        b'<text x="60" y="42" font-family="DejaVu Sans" font-size="26" fill="#1f5f8b">'
        b"Z\xc3\xa4hlerwerk</text></svg>"
    ),
)
SELLER = Party(
    name="Zählerwerk GmbH",
    address=Address(line1="Torstraße 12", postal_code="10119", city="Berlin", country="DE"),
    vat_id="DE123456789",
    tax_number="37/123/45678",
    email="billing@zaehlerwerk.example",
    phone="+49 30 1234567",
    bank_account=BankAccount(
        iban="DE89370400440532013000", bic="COBADEFFXXX", account_holder="Zählerwerk GmbH"
    ),
    logo=LOGO,
)
CUSTOMER = Party(
    name="Acme Robotics Inc.",
    address=Address(
        line1="1 Market Street",
        line2="Suite 400",
        postal_code="94105",
        city="San Francisco",
        region="CA",
        country="US",
    ),
    vat_id=None,
    email="ap@acme.example",
)


def money(value: Decimal | str | int, currency: str = "EUR") -> Decimal:
    quantum = D(1).scaleb(-MINOR_UNITS[currency])
    return D(value).quantize(quantum, rounding=ROUND_HALF_UP)


def every_kind_of_line(currency: str = "EUR") -> tuple[DocumentLine, ...]:
    """Tiers with free quota, one price per unit, late usage, an override price, a
    recurring fee, a rated item, and a discount of ten per cent of them."""
    scale = D(1) if currency != "JPY" else D(150)  # yen: about the same money
    lines = (
        DocumentLine(
            kind="Usage",
            description="API calls",
            quantity=D(12500),
            free_quantity=D(1000),
            billable_quantity=D(11500),
            tiers=(
                DocumentTier(D(10000), D("0.01") * scale, D(100) * scale),
                DocumentTier(D(1500), D("0.008") * scale, D(12) * scale),
            ),
            amount=money(112 * scale, currency),
        ),
        DocumentLine(
            kind="Usage",
            description="Storage GB-hours",
            quantity=D(250),
            billable_quantity=D(250),
            unit_price=D("0.12") * scale,
            amount=money(D(30) * scale, currency),
        ),
        DocumentLine(
            kind="Usage",
            description="Storage GB-hours",
            quantity=D(40),
            billable_quantity=D(40),
            unit_price=D("0.12") * scale,
            amount=money(D("4.80") * scale, currency),
            late=True,
        ),
        DocumentLine(
            kind="Usage",
            description="Support minutes",
            quantity=D(10),
            billable_quantity=D(10),
            unit_price=D("0.5") * scale,
            amount=money(5 * scale, currency),
            override=True,
        ),
        DocumentLine(
            kind="RecurringFee",
            description="Pro plan",
            unit_price=D(49) * scale,
            amount=money(49 * scale, currency),
        ),
        DocumentLine(
            kind="RatedItem",
            description="Onboarding session",
            quantity=D(3),
            billable_quantity=D(3),
            unit_price=D(15) * scale,
            amount=money(45 * scale, currency),
        ),
    )
    discount = -money(sum(line.amount for line in lines) / 10, currency)
    return (
        *lines,
        DocumentLine(kind="Discount", description="Launch discount 10 %", amount=discount),
    )


def invoice_document(
    *,
    currency: str = "EUR",
    tax_rate: Decimal | int = 19,
    lines: tuple[DocumentLine, ...] | None = None,
    locale: str = "en-US",
    amount_paid: Decimal | int = 0,
) -> InvoiceDocument:
    """An invoice of `lines` (every kind by default) with totals as SPEC §7 makes them."""
    kept = every_kind_of_line(currency) if lines is None else lines
    subtotal = sum((line.amount for line in kept), money(0, currency))
    tax = money(subtotal * D(tax_rate) / 100, currency)
    total = subtotal + tax
    return InvoiceDocument(
        kind=DocumentKind.INVOICE,
        number="ZW-2026-000042",
        issue_date=date(2026, 2, 1),
        currency=currency,
        minor_unit=MINOR_UNITS[currency],
        seller=SELLER,
        customer=CUSTOMER,
        lines=kept,
        subtotal=subtotal,
        tax_rate=D(tax_rate),
        tax_amount=tax,
        total=total,
        amount_due=total - money(amount_paid, currency),
        locale=locale,
        due_date=date(2026, 2, 15),
        period_start=date(2026, 1, 1),
        period_end=date(2026, 1, 31),
        payment_terms_days=14,
        customer_reference="cus_acme",
        footer="Zählerwerk GmbH · Torstraße 12, 10119 Berlin · AG Charlottenburg HRB 123456",
    )


def credit_note_document(
    invoice: InvoiceDocument, *, amounts: tuple[Decimal, ...]
) -> InvoiceDocument:
    """A credit note of `amounts` on the invoice's first lines, taxed at its rate."""
    lines = tuple(
        DocumentLine(kind="Credit", description=line.description, amount=amount, unit_price=amount)
        for line, amount in zip(invoice.lines, amounts, strict=False)
    )
    subtotal = sum(amounts, money(0, invoice.currency))
    tax = money(subtotal * invoice.tax_rate / 100, invoice.currency)
    return replace(
        invoice,
        kind=DocumentKind.CREDIT_NOTE,
        number="ZW-CN-2026-000007",
        issue_date=date(2026, 2, 10),
        lines=lines,
        subtotal=subtotal,
        tax_amount=tax,
        total=subtotal + tax,
        amount_due=subtotal + tax,
        due_date=None,
        payment_terms_days=None,
        preceding_invoice=PrecedingInvoice(invoice.number, invoice.issue_date),
        reason="Outage on 14 January",
    )


def long_invoice(line_count: int, *, currency: str = "EUR") -> InvoiceDocument:
    """An invoice of `line_count` usage lines priced per unit."""
    lines = tuple(
        DocumentLine(
            kind="Usage",
            description=f"Component {index:04d}",
            quantity=D(index + 1),
            billable_quantity=D(index + 1),
            unit_price=D("0.25"),
            amount=money(D(index + 1) * D("0.25"), currency),
            late=index % 7 == 0,
        )
        for index in range(line_count)
    )
    return invoice_document(currency=currency, lines=lines)
