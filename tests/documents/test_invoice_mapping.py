"""SPEC §12: a stored invoice becomes the document its PDF and e-invoices are made
from, with every line as issued, the period's last day inclusive, the due date after
the payment terms, and the customer's locale and address."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

from arrears.documents.cii import cii_xml
from arrears.documents.model import Address, Party
from arrears.documents.ubl import ubl_xml
from arrears.domain.catalog import Customer
from arrears.domain.invoices import Invoice, InvoiceKind, InvoiceLine, LineKind, draft_invoice
from arrears.domain.money import currency
from arrears.domain.pricing import TierCharge
from arrears.domain.profiles import Party as IssuedParty
from arrears.services.documents import CreditedLine, credit_note_document_of, document_of_invoice
from tests.einvoice_rules import failed_rules

D = Decimal
JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)
SELLER = IssuedParty(name="Zählerwerk GmbH")


def _invoice() -> Invoice:
    lines = (
        InvoiceLine(
            kind=LineKind.USAGE,
            description="API calls",
            quantity=D(1500),
            free_quantity=D(1000),
            billable_quantity=D(500),
            amount=D("5.00"),
            component_id="cmp_1",
            tiers=(TierCharge(D(500), D("0.01"), D("5.00")),),
        ),
        InvoiceLine(
            kind=LineKind.RECURRING_FEE,
            description="Pro plan",
            quantity=D(1),
            free_quantity=D(0),
            billable_quantity=D(1),
            amount=D("49.00"),
            unit_price=D(49),
        ),
    )
    draft = draft_invoice(
        kind=InvoiceKind.REGULAR,
        currency=currency("EUR"),
        period_start=JANUARY,
        period_end=FEBRUARY,
        lines=lines,
        tax_rate=D(19),
    )
    return Invoice(
        id="inv_1",
        invoice_number="ZW-2026-000001",
        contract_id="con_1",
        customer_id="cus_1",
        document_date=FEBRUARY,
        period_index=0,
        draft=draft,
    )


def _customer(**fields: object) -> Customer:
    return Customer(id="cus_1", created_at=JANUARY, **fields)  # type: ignore[arg-type]


def test_the_document_has_every_line_the_last_day_of_the_period_and_the_due_date() -> None:
    document = document_of_invoice(_invoice(), SELLER, _customer(company_name="Acme"))
    assert document.number == "ZW-2026-000001"
    assert (document.issue_date, document.due_date) == (date(2026, 2, 1), date(2026, 2, 15))
    assert (document.period_start, document.period_end) == (date(2026, 1, 1), date(2026, 1, 31))
    assert [line.amount for line in document.lines] == [D("5.00"), D("49.00")]
    assert document.lines[0].tiers[0].unit_price == D("0.01")
    assert (document.subtotal, document.tax_amount, document.total) == (
        D("54.00"),
        D("10.26"),
        D("64.26"),
    )
    assert document.locale == "en-US"


def test_the_customers_locale_name_and_address_are_taken_as_stored() -> None:
    customer = _customer(
        first_name="Ada",
        last_name="Lovelace",
        locale="de-DE",
        address={
            "street": "Torstraße",
            "house_number": "12",
            "postal_code": "10119",
            "city": "Berlin",
            "country": "DE",
        },
    )
    document = document_of_invoice(_invoice(), SELLER, customer)
    assert document.locale == "de-DE"
    assert document.customer == Party(
        name="Ada Lovelace",
        address=Address(line1="Torstraße 12", postal_code="10119", city="Berlin", country="DE"),
    )


def test_a_mapped_invoice_with_the_parties_complete_passes_the_rules() -> None:
    address = Address(line1="Torstraße 12", postal_code="10119", city="Berlin", country="DE")
    document = document_of_invoice(_invoice(), SELLER, _customer(company_name="Acme"))
    document = replace(
        document,
        seller=replace(document.seller, address=address, vat_id="DE123456789"),
        customer=replace(document.customer, address=address),
    )
    assert failed_rules(cii_xml(document)) == []


def test_a_credit_note_refers_to_its_invoice_and_passes_the_rules() -> None:
    address = Address(line1="Torstraße 12", postal_code="10119", city="Berlin", country="DE")
    invoice = document_of_invoice(_invoice(), SELLER, _customer(company_name="Acme"))
    invoice = replace(
        invoice,
        seller=replace(invoice.seller, address=address, vat_id="DE123456789"),
        customer=replace(invoice.customer, address=address),
    )
    note = credit_note_document_of(
        invoice,
        number="ZW-CN-2026-000001",
        document_date=datetime(2026, 2, 10, 9, 30, tzinfo=UTC),
        reason="Outage",
        lines=[CreditedLine("API calls", D("2.50"))],
        subtotal=D("2.50"),
        tax_amount=D("0.48"),
        total=D("2.98"),
    )
    assert note.preceding_invoice is not None
    assert (note.preceding_invoice.number, note.issue_date) == ("ZW-2026-000001", date(2026, 2, 10))
    assert failed_rules(cii_xml(note)) == []
    assert failed_rules(ubl_xml(note)) == []
