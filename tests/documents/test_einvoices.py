"""SPEC §12, e-invoices: every CII and UBL document Arrears writes passes the official
EN 16931 business rules (CEN's artefacts in ../shared/einvoicing, SaxonC-HE) with no
fatal error, for every kind of line it bills; a party without what the standard
requires is refused, naming what is missing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from arrears.documents.cii import cii_xml
from arrears.documents.en16931 import MissingDocumentData
from arrears.documents.model import DocumentLine, DocumentTier, InvoiceDocument
from arrears.documents.ubl import ubl_xml
from tests.document_factories import (
    CUSTOMER,
    SELLER,
    credit_note_document,
    invoice_document,
    long_invoice,
    money,
)
from tests.einvoice_rules import failed_rules, rules_directory

D = Decimal
Writer = Callable[[InvoiceDocument], bytes]
SYNTAXES = pytest.mark.parametrize("write", [cii_xml, ubl_xml], ids=["cii", "ubl"])


def _volume_repricing(currency: str) -> tuple[DocumentLine, ...]:
    """A later interim invoice whose volume tier re-prices the period: a negative line."""
    return (
        DocumentLine(
            kind="Usage",
            description="API calls",
            quantity=D(500),
            billable_quantity=D(500),
            tiers=(DocumentTier(D(500), D("0.004"), D(2)),),
            amount=money(-3, currency),
        ),
        DocumentLine(
            kind="RecurringFee",
            description="Pro plan",
            unit_price=D(49),
            amount=money(49, currency),
        ),
    )


@SYNTAXES
@pytest.mark.parametrize(
    ("currency", "tax_rate"), [("EUR", 19), ("EUR", 0), ("JPY", 19), ("JPY", 0)]
)
def test_tiers_free_quota_late_usage_overrides_rated_items_and_a_discount_pass_the_rules(
    write: Writer, currency: str, tax_rate: int
) -> None:
    assert failed_rules(write(invoice_document(currency=currency, tax_rate=tax_rate))) == []


@SYNTAXES
def test_a_partly_paid_invoice_passes_the_rules_with_what_is_due(write: Writer) -> None:
    assert failed_rules(write(invoice_document(amount_paid=100))) == []


@SYNTAXES
@pytest.mark.parametrize("currency", ["EUR", "JPY"])
def test_a_negative_re_pricing_line_passes_the_rules(write: Writer, currency: str) -> None:
    document = invoice_document(currency=currency, lines=_volume_repricing(currency))
    assert failed_rules(write(document)) == []


@SYNTAXES
@pytest.mark.parametrize(
    ("currency", "credited"), [("EUR", (D("5.00"), D("3.10"))), ("JPY", (D(700), D(300)))]
)
@pytest.mark.parametrize("tax_rate", [19, 0])
def test_a_credit_note_is_type_381_refers_to_its_invoice_and_passes_the_rules(
    write: Writer, currency: str, credited: tuple[Decimal, ...], tax_rate: int
) -> None:
    invoice = invoice_document(currency=currency, tax_rate=tax_rate)
    xml = write(credit_note_document(invoice, amounts=credited))
    assert failed_rules(xml) == []
    text = xml.decode()
    assert "381" in text
    assert invoice.number in text


@SYNTAXES
def test_an_invoice_of_one_thousand_lines_passes_the_rules(write: Writer) -> None:
    assert failed_rules(write(long_invoice(1000))) == []


@SYNTAXES
def test_the_same_invoice_always_gives_the_same_bytes(write: Writer) -> None:
    assert write(invoice_document()) == write(invoice_document())


def test_a_discount_is_a_document_allowance_and_the_tax_basis_is_the_subtotal() -> None:
    document = invoice_document()
    root = etree.fromstring(cii_xml(document))
    ns = {
        "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
    }
    summation = root.find(".//ram:SpecifiedTradeSettlementHeaderMonetarySummation", ns)
    assert summation is not None
    assert summation.findtext("ram:LineTotalAmount", namespaces=ns) == "245.80"
    assert summation.findtext("ram:AllowanceTotalAmount", namespaces=ns) == "24.58"
    assert summation.findtext("ram:TaxBasisTotalAmount", namespaces=ns) == str(document.subtotal)
    assert summation.findtext("ram:GrandTotalAmount", namespaces=ns) == str(document.total)


def test_a_tiered_line_is_one_unit_at_its_amount_with_its_tiers_in_the_line_note() -> None:
    root = etree.fromstring(ubl_xml(invoice_document()))
    ns = {
        "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
        "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    }
    first = root.find("cac:InvoiceLine", ns)
    assert first is not None
    assert first.findtext("cbc:InvoicedQuantity", namespaces=ns) == "1"
    assert first.findtext("cac:Price/cbc:PriceAmount", namespaces=ns) == "112"
    note = first.findtext("cbc:Note", namespaces=ns)
    assert note == (
        "Quantity 12,500, free 1,000, billable 11,500; Tier: 10,000 at 0.01; Tier: 1,500 at 0.008"
    )


@SYNTAXES
def test_a_seller_without_vat_id_and_a_customer_without_address_are_refused_by_name(
    write: Writer,
) -> None:
    document = replace(
        invoice_document(),
        seller=replace(SELLER, vat_id=None),
        customer=replace(CUSTOMER, address=None),
    )
    with pytest.raises(MissingDocumentData) as refused:
        write(document)
    assert refused.value.missing == ("Customer.Address", "Seller.VatId")
    assert refused.value.status == 409
    assert "Seller.VatId" in refused.value.detail


def test_a_seller_without_address_is_refused_by_name() -> None:
    document = replace(invoice_document(), seller=replace(SELLER, address=None))
    with pytest.raises(MissingDocumentData) as refused:
        cii_xml(document)
    assert refused.value.missing == ("Seller.Address",)


@pytest.mark.parametrize(("write", "syntax"), [(cii_xml, "cii"), (ubl_xml, "ubl")])
def test_the_shared_validate_script_itself_finds_no_fatal_rule(
    write: Writer, syntax: str, tmp_path: Path
) -> None:
    """The helper above runs the same stylesheets in process; this runs `validate.py`."""
    xml = tmp_path / f"invoice.{syntax}.xml"
    xml.write_bytes(write(invoice_document(locale="de-DE")))
    script = rules_directory() / "validate.py"
    run = subprocess.run(  # noqa: S603 (our interpreter, the shared script, our file)
        [sys.executable, str(script), str(xml)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip().endswith(f"{syntax}: 0 fatal, 0 warnings")


@SYNTAXES
def test_a_name_typed_with_control_characters_still_gives_an_einvoice_without_them(
    write: Writer,
) -> None:
    document = replace(invoice_document(), customer=replace(CUSTOMER, name="Acme\x00\x1b Inc."))
    xml = write(document)
    assert b"Acme Inc." in xml
    assert failed_rules(xml) == []
