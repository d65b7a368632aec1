"""SPEC §10 credit notes: partial by line and amount or whole, tax at the invoice's rate
rounded as §7, never more than a line's amount or the invoice's total, numbered
`<prefix>-CN-<year>-<000001>` in a sequence of their own."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.credit_notes import LineCredit
from arrears.services.corrections import issue_credit_note
from arrears.store.database import Database
from tests.billing_factories import app_without_worker, get_invoice, totals
from tests.correction_factories import credit, credit_raw, invoice_of_89_35, note_totals
from tests.ingest_factories import exact
from tests.threads import all_at_once


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    with TestClient(app) as test_client:
        yield test_client


def test_a_line_credited_in_part_credits_its_tax_at_the_invoices_rate(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    assert totals(invoice) == ("89.35", "19", "16.98", "106.33")
    assert [str(line["Amount"]) for line in invoice["Lines"]] == ["50.00", "28.45", "10.90"]

    note = credit(client, contract, invoice["Id"], (2, "2.50"))

    assert note_totals(note) == ("2.50", "0.48", "2.98")
    assert note["Lines"] == [
        {
            "LineIndex": 2,
            "Description": invoice["Lines"][2]["Description"],
            "Amount": Decimal("2.50"),
        }
    ]
    assert note["CreditNoteNumber"] == "INV-CN-2026-000001"
    credited = get_invoice(client, contract.seller, invoice["Id"])
    assert (credited["AmountCredited"], credited["AmountDue"]) == (
        Decimal("2.98"),
        Decimal("103.35"),
    )
    assert note["InvoiceId"] == invoice["Id"]
    assert note["Currency"] == "EUR"
    assert note["Reason"] == "Goodwill"


def test_a_line_is_credited_at_most_its_amount(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    credit(client, contract, invoice["Id"], (2, "2.50"))

    response = credit_raw(
        client,
        contract,
        invoice["Id"],
        {"Reason": "Again", "Lines": [{"LineIndex": 2, "Amount": "8.41"}]},
    )

    assert response.status_code == 409, response.text
    assert "line 2 has 8.40 EUR left, 8.41 EUR is 0.01 EUR too much" in response.json()["detail"]
    assert note_totals(credit(client, contract, invoice["Id"], (2, "8.40"))) == (
        "8.40",
        "1.60",
        "10.00",
    )


def test_without_lines_everything_not_yet_credited_is_credited(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    first = credit(client, contract, invoice["Id"], (2, "2.50"))

    rest = credit(client, contract, invoice["Id"])

    assert [(line["LineIndex"], str(line["Amount"])) for line in rest["Lines"]] == [
        (0, "50.00"),
        (1, "28.45"),
        (2, "8.40"),
    ]
    # The last credit note credits the last of the tax: together exactly the total.
    assert note_totals(rest) == ("86.85", "16.50", "103.35")
    assert first["Total"] + rest["Total"] == Decimal("106.33")
    assert rest["CreditNoteNumber"] == "INV-CN-2026-000002"


def test_an_invoice_credited_in_full_takes_no_more_credit(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    credit(client, contract, invoice["Id"])

    whole = credit_raw(client, contract, invoice["Id"], {"Reason": "Again"})
    line = credit_raw(
        client,
        contract,
        invoice["Id"],
        {"Reason": "Again", "Lines": [{"LineIndex": 0, "Amount": 1}]},
    )

    assert whole.status_code == 409, whole.text
    assert "credited in full" in whole.json()["detail"]
    assert line.status_code == 409, line.text
    assert "line 0 has 0.00 EUR left" in line.json()["detail"]


def test_a_credit_beyond_any_invoice_total_is_refused_as_too_large(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)

    response = credit_raw(
        client,
        contract,
        invoice["Id"],
        {"Reason": "Typo", "Lines": [{"LineIndex": 0, "Amount": "1e100000"}]},
    )

    assert response.status_code == 422, response.text
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("Lines[0].Amount", "too_large")
    ]


def test_every_bad_line_is_named_at_once(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)

    response = credit_raw(
        client,
        contract,
        invoice["Id"],
        {
            "Reason": "Typo",
            "Lines": [
                {"LineIndex": 3, "Amount": "1"},
                {"LineIndex": 0, "Amount": "0"},
                {"LineIndex": 1, "Amount": "0.001"},
                {"LineIndex": 0, "Amount": "1"},
            ],
        },
    )

    assert response.status_code == 422, response.text
    assert sorted((e["field"], e["code"]) for e in response.json()["errors"]) == [
        ("Lines[0].LineIndex", "unknown_line"),
        ("Lines[1].Amount", "not_positive"),
        ("Lines[2].Amount", "too_many_decimals"),
        ("Lines[3].LineIndex", "duplicate_line"),
    ]
    assert get_invoice(client, contract.seller, invoice["Id"]) == invoice


def test_credit_notes_are_read_listed_and_filtered(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    first = credit(client, contract, invoice["Id"], (0, "1.00"))
    second = credit(client, contract, invoice["Id"], (1, "2.00"))
    other, other_invoice = invoice_of_89_35(client, contract.seller)
    third = credit(client, other, other_invoice["Id"], (0, "3.00"))

    read = client.get(f"/api/v1/creditnotes/{first['Id']}", headers=contract.headers)
    of_invoice = client.get(
        f"/api/v1/creditnotes?invoiceId={invoice['Id']}", headers=contract.headers
    )
    of_customer = client.get(
        f"/api/v1/creditnotes?customerId={other.customer_id}", headers=contract.headers
    )

    assert exact(read) == first
    assert [n["Id"] for n in exact(of_invoice)] == [second["Id"], first["Id"]]
    assert of_invoice.headers["X-Total-Count"] == "2"
    assert [n["Id"] for n in exact(of_customer)] == [third["Id"]]
    assert [third["CreditNoteNumber"]] == ["INV-CN-2026-000003"]


def test_another_sellers_invoice_and_credit_note_are_not_found(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    note = credit(client, contract, invoice["Id"], (0, "1.00"))
    stranger, _ = invoice_of_89_35(client)

    crediting = credit_raw(client, stranger, invoice["Id"], {"Reason": "Mine?"})
    reading = client.get(f"/api/v1/creditnotes/{note['Id']}", headers=stranger.headers)
    listing = client.get(f"/api/v1/creditnotes?invoiceId={invoice['Id']}", headers=stranger.headers)

    assert crediting.status_code == 404
    assert reading.status_code == 404
    assert exact(listing) == []


def test_credit_notes_of_several_threads_are_numbered_without_gaps(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    contract, invoice = invoice_of_89_35(client)
    _, other_invoice = invoice_of_89_35(client, contract.seller)
    invoice_ids = [invoice["Id"], other_invoice["Id"]]

    def issue(n: int) -> str:
        with database.unit_of_work(contract.seller.seller_id) as work:
            note = issue_credit_note(
                work,
                clock,
                invoice_ids[n % 2],
                reason=f"Thread {n}",
                lines=[LineCredit(n % 3, Decimal("0.10"))],
            )
        return note.credit_note_number

    numbers = all_at_once(8, issue)

    assert sorted(numbers) == [f"INV-CN-2026-{n:06d}" for n in range(1, 9)]
    listed = exact(client.get("/api/v1/creditnotes?take=100", headers=contract.headers))
    assert sum(note["Subtotal"] for note in listed) == Decimal("0.80")
