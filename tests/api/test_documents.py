"""SPEC §12 over HTTP: an issued invoice's PDF, HTML page and e-invoice; the PDF also
for `Accept: application/pdf` on the invoice's JSON URL; an e-invoice of a seller
without what EN 16931 requires is 409 naming it; another seller's invoice is 404."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from arrears.cli import app as cli
from arrears.config import Settings
from arrears.documents.facturx import embedded_xml
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    Metered,
    PricedContract,
    app_without_worker,
    bill_at,
    graduated,
    new_billing_seller,
    new_priced_contract,
    only_invoice,
    post_usage,
)
from tests.correction_factories import credit
from tests.einvoice_rules import failed_rules
from tests.ingest_factories import problem


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _billed(client: TestClient) -> tuple[PricedContract, dict[str, object]]:
    """A January invoice of 1,500 GB over a free quota of 1,000, in two tiers."""
    storage = Metered(pricing=graduated(("200", "0.10"), (None, "0.05")), free_quota="1000")
    contract = new_priced_contract(client, None, storage, recurring_fee="49.00", tax_rate="19")
    post_usage(client, contract, "1500", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    return contract, only_invoice(client, contract)


def _text(pdf: bytes) -> str:
    pages = PdfReader(io.BytesIO(pdf)).pages
    return " ".join(" ".join((page.extract_text() or "").split()) for page in pages)


def test_the_pdf_of_an_invoice_shows_its_number_lines_and_total(client: TestClient) -> None:
    contract, invoice = _billed(client)
    response = client.get(f"/api/v1/invoices/{invoice['Id']}/pdf", headers=contract.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    number = str(invoice["InvoiceNumber"])
    assert response.headers["content-disposition"] == f'inline; filename="{number}.pdf"'
    text = _text(response.content)
    assert f"Invoice {number}" in text
    lines = invoice["Lines"]
    assert isinstance(lines, list)
    assert len(lines) == 2
    for line in lines:
        assert f"€{line['Amount']}" in text
    assert f"€{invoice['Total']}" in text


def test_accept_application_pdf_on_the_invoice_url_answers_the_same_pdf(
    client: TestClient,
) -> None:
    contract, invoice = _billed(client)
    url = f"/api/v1/invoices/{invoice['Id']}"
    pdf = client.get(url, headers={**contract.headers, "Accept": "application/pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == client.get(f"{url}/pdf", headers=contract.headers).content
    json = client.get(url, headers={**contract.headers, "Accept": "application/json"})
    assert json.json()["Id"] == invoice["Id"]


def test_the_html_of_an_invoice_is_one_page_with_its_number(client: TestClient) -> None:
    contract, invoice = _billed(client)
    response = client.get(f"/api/v1/invoices/{invoice['Id']}/html", headers=contract.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert f"<h1>Invoice {invoice['InvoiceNumber']}</h1>" in response.text


@pytest.mark.parametrize("syntax", ["cii", "ubl", "facturx"])
def test_an_einvoice_of_a_seller_without_address_and_vat_id_is_409_naming_them(
    client: TestClient, syntax: str
) -> None:
    contract, invoice = _billed(client)
    response = client.get(
        f"/api/v1/invoices/{invoice['Id']}/einvoice?syntax={syntax}", headers=contract.headers
    )
    body = problem(response, 409)
    assert "Seller.Address" in body["detail"]
    assert "Seller.VatId" in body["detail"]


def test_an_unknown_syntax_is_422(client: TestClient) -> None:
    contract, invoice = _billed(client)
    response = client.get(
        f"/api/v1/invoices/{invoice['Id']}/einvoice?syntax=pdf", headers=contract.headers
    )
    problem(response, 422)


@pytest.mark.parametrize("suffix", ["pdf", "html", "einvoice?syntax=cii"])
def test_another_sellers_invoice_document_is_404(client: TestClient, suffix: str) -> None:
    _, invoice = _billed(client)
    other = new_billing_seller(client, "Initech")
    response = client.get(f"/api/v1/invoices/{invoice['Id']}/{suffix}", headers=other.headers)
    problem(response, 404)


def test_the_cli_writes_the_same_pdf_as_the_api(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    contract, invoice = _billed(client)
    output = tmp_path / "invoice.pdf"
    url = database.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["invoices", "pdf", str(invoice["Id"]), "-o", str(output)],
        env={"ARREARS_DATABASE_URL": url, "ARREARS_SELLER_ID": contract.seller.seller_id},
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {invoice['InvoiceNumber']} to {output}" in result.output
    api = client.get(f"/api/v1/invoices/{invoice['Id']}/pdf", headers=contract.headers)
    assert output.read_bytes() == api.content


def test_the_cli_names_what_an_einvoice_lacks(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    contract, invoice = _billed(client)
    url = database.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli,
        ["invoices", "einvoice", str(invoice["Id"]), "-o", str(tmp_path / "x.xml")],
        env={"ARREARS_DATABASE_URL": url, "ARREARS_SELLER_ID": contract.seller.seller_id},
    )
    assert result.exit_code == 1
    assert "Seller.VatId" in result.output


# -- with the seller's profile and the customer's address (issue 18) ----------------------

PROFILE = {
    "LegalName": "Zählerwerk GmbH",
    "Address": {"Line1": "Torstraße 12", "PostalCode": "10119", "City": "Berlin", "Country": "DE"},
    "VatId": "DE136695976",
    "Email": "billing@zaehlerwerk.example",
    "BankAccount": {"Iban": "DE89370400440532013000", "Bic": "COBADEFFXXX"},
    "PaymentTermsDays": 30,
    "Footer": "Amtsgericht Charlottenburg HRB 123456",
}
CUSTOMER_ADDRESS = {
    "Line1": "Hauptstraße 5",
    "PostalCode": "80331",
    "City": "München",
    "Country": "DE",
}


def _billed_with_profile(client: TestClient) -> tuple[PricedContract, dict[str, object]]:
    """As `_billed`, for a seller with its profile and a German customer with an address."""
    storage = Metered(pricing=graduated(("200", "0.10"), (None, "0.05")), free_quota="1000")
    contract = new_priced_contract(client, None, storage, recurring_fee="49.00", tax_rate="19")
    assert client.put("/api/v1/seller", json=PROFILE, headers=contract.headers).status_code == 200
    patched = client.patch(
        f"/api/v1/customers/{contract.customer_id}",
        json={"Address": CUSTOMER_ADDRESS, "Locale": "de-DE"},
        headers=contract.headers,
    )
    assert patched.status_code == 200, patched.text
    post_usage(client, contract, "1500", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    return contract, only_invoice(client, contract)


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_an_invoice_of_a_seller_with_its_profile_is_an_einvoice_that_passes_the_rules(
    client: TestClient, syntax: str
) -> None:
    contract, invoice = _billed_with_profile(client)
    response = client.get(
        f"/api/v1/invoices/{invoice['Id']}/einvoice?syntax={syntax}", headers=contract.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    assert failed_rules(response.content) == []
    assert b"DE136695976" in response.content
    assert b"2026-03-03" in response.content or b"20260303" in response.content  # 30 days


def test_the_facturx_pdf_of_an_invoice_is_german_and_carries_its_cii(client: TestClient) -> None:
    contract, invoice = _billed_with_profile(client)
    response = client.get(
        f"/api/v1/invoices/{invoice['Id']}/einvoice?syntax=facturx", headers=contract.headers
    )
    assert response.status_code == 200, response.text
    assert failed_rules(embedded_xml(response.content)) == []
    text = _text(response.content)
    assert f"Rechnung {invoice['InvoiceNumber']}" in text
    assert "Zählerwerk GmbH" in text
    assert "IBAN: DE89370400440532013000" in text
    assert "Amtsgericht Charlottenburg HRB 123456" in text


def test_a_credit_note_has_its_pdf_html_and_einvoice_of_type_381(client: TestClient) -> None:
    contract, invoice = _billed_with_profile(client)
    note = credit(client, contract, str(invoice["Id"]), (0, "2.50"), reason="Ausfall")
    url = f"/api/v1/creditnotes/{note['Id']}"
    pdf = client.get(f"{url}/pdf", headers=contract.headers)
    assert pdf.status_code == 200, pdf.text
    text = _text(pdf.content)
    assert f"Gutschrift {note['CreditNoteNumber']}" in text
    assert f"Korrigiert Rechnung {invoice['InvoiceNumber']}" in text
    assert "2,98 €" in " ".join(text.replace("\u00a0", " ").split())  # 2.50 + 0.48 tax
    accepted = client.get(url, headers={**contract.headers, "Accept": "application/pdf"})
    assert accepted.content == pdf.content
    html = client.get(f"{url}/html", headers=contract.headers)
    assert f"<h1>Gutschrift {note['CreditNoteNumber']}</h1>" in html.text
    for syntax in ("cii", "ubl"):
        xml = client.get(f"{url}/einvoice?syntax={syntax}", headers=contract.headers)
        assert xml.status_code == 200, xml.text
        assert failed_rules(xml.content) == []
        assert b">381<" in xml.content
