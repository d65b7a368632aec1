"""SPEC §12, documents as HTML: the page shows the same as the PDF, in the customer's
language, escapes whatever a seller or customer typed, and never changes."""

from __future__ import annotations

from dataclasses import replace

from arrears.documents.html import render_html
from tests.document_factories import CUSTOMER, invoice_document


def test_the_page_is_in_the_customers_language_with_its_numbers() -> None:
    page = render_html(invoice_document(locale="de-DE"))
    assert '<html lang="de">' in page
    assert "<h1>Rechnung ZW-2026-000042</h1>" in page
    assert "263,25\u00a0€" in page
    assert "Nachberechnung aus früherem Zeitraum" in page


def test_what_a_customer_typed_is_shown_never_run() -> None:
    customer = replace(CUSTOMER, name='<script>alert("x")</script>')
    page = render_html(replace(invoice_document(), customer=customer))
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_the_logo_is_inlined_so_the_page_needs_nothing_else() -> None:
    page = render_html(invoice_document())
    assert 'src="data:image/svg+xml;base64,' in page
    assert "http" not in page.replace("http://www.w3.org", "")


def test_the_same_invoice_always_gives_the_same_page() -> None:
    assert render_html(invoice_document()) == render_html(invoice_document())
