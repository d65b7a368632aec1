"""SPEC §12, documents: the PDF of an invoice shows its number, every line's amount and
its total formatted in the customer's locale; a long invoice repeats its table header on
every page; a Factur-X PDF carries its CII, which passes the rules again; the same
invoice always gives the same bytes."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from pypdf import PdfReader

from arrears.documents.facturx import embedded_xml, facturx_pdf
from arrears.documents.model import InvoiceDocument
from arrears.documents.pdf import render_pdf
from tests.document_factories import credit_note_document, invoice_document, long_invoice
from tests.einvoice_rules import failed_rules


def _pages(pdf: bytes) -> list[str]:
    # Spaces as the reader sees them: babel writes no-break spaces ("1.234,56 €").
    return [
        " ".join((page.extract_text() or "").replace("\u00a0", " ").replace("\u202f", " ").split())
        for page in PdfReader(io.BytesIO(pdf)).pages
    ]


def _formatted(amount: Decimal, document: InvoiceDocument) -> str:
    text = format_currency(amount, document.currency, locale=document.locale.replace("-", "_"))
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


@pytest.mark.parametrize(
    ("locale", "title", "expected_total"),
    [("de-DE", "Rechnung", "263,25 €"), ("en-US", "Invoice", "€263.25")],
)
def test_the_pdf_shows_number_every_line_amount_and_total_in_the_customers_locale(
    locale: str, title: str, expected_total: str
) -> None:
    document = invoice_document(locale=locale)
    text = " ".join(_pages(render_pdf(document)))
    assert f"{title} ZW-2026-000042" in text
    for line in document.lines:
        assert _formatted(line.amount, document) in text, line.description
    assert _formatted(document.total, document) == expected_total
    assert expected_total in text


def test_german_texts_and_dates_for_a_german_customer() -> None:
    text = " ".join(_pages(render_pdf(invoice_document(locale="de-DE"))))
    assert "Fällig am 15.02.2026" in text
    assert "Zahlbar innerhalb von 14 Tagen bis 15.02.2026." in text
    assert "Nachberechnung aus früherem Zeitraum" in text


def test_a_locale_without_texts_reads_english_with_its_own_numbers() -> None:
    text = " ".join(_pages(render_pdf(invoice_document(locale="fr-FR"))))
    assert "Invoice ZW-2026-000042" in text
    assert "263,25 €" in text


def test_a_yen_invoice_shows_whole_yen() -> None:
    document = invoice_document(currency="JPY", locale="en-US")
    text = " ".join(_pages(render_pdf(document)))
    assert _formatted(document.total, document) == "¥39,488"
    assert "¥39,488" in text


def test_a_long_invoice_repeats_its_table_header_on_every_page() -> None:
    pages = _pages(render_pdf(long_invoice(300)))
    assert len(pages) > 3
    for number, page in enumerate(pages, start=1):
        assert "Description Quantity Free Billable Unit price Amount" in page
        assert f"Page {number} / {len(pages)}" in page


def test_a_credit_note_names_the_invoice_it_corrects() -> None:
    invoice = invoice_document(locale="en-US")
    document = credit_note_document(invoice, amounts=(Decimal("5.00"),))
    text = " ".join(_pages(render_pdf(document)))
    assert "Credit note ZW-CN-2026-000007" in text
    assert "Corrects invoice ZW-2026-000042 (Feb 1, 2026)" in text
    assert "Outage on 14 January" in text


def test_the_same_invoice_always_gives_the_same_pdf() -> None:
    assert render_pdf(invoice_document()) == render_pdf(invoice_document())


def test_a_facturx_pdf_carries_its_cii_which_passes_the_rules_again() -> None:
    document = invoice_document(locale="de-DE")
    pdf = facturx_pdf(document)
    reader = PdfReader(io.BytesIO(pdf))
    assert "factur-x.xml" in reader.attachments
    xml = embedded_xml(pdf)
    assert b"ZW-2026-000042" in xml
    assert failed_rules(xml) == []
    assert "263,25 €" in " ".join(_pages(pdf))


def test_the_same_invoice_always_gives_the_same_facturx_pdf() -> None:
    assert facturx_pdf(invoice_document()) == facturx_pdf(invoice_document())


def test_a_name_typed_with_control_characters_still_gives_a_pdf() -> None:
    document = invoice_document()
    customer = replace(document.customer, name="Acme\x00\x1b Inc.")
    assert "Invoice ZW-2026-000042" in " ".join(
        _pages(render_pdf(replace(document, customer=customer)))
    )


def test_a_name_no_font_can_show_still_gives_a_facturx_pdf_whose_xml_keeps_it() -> None:
    document = invoice_document()
    name = "Acme \U0004f40e \U00013000 \ue000 Inc."  # unassigned, hieroglyph, private use
    pdf = facturx_pdf(replace(document, customer=replace(document.customer, name=name)))
    assert "Invoice ZW-2026-000042" in " ".join(_pages(pdf))
    assert "Acme \U0004f40e \U00013000 \ue000 Inc.".encode() in embedded_xml(pdf)
