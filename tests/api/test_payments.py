"""SPEC §10 payments: money received for an invoice, idempotent by `Reference`, never
above the amount due."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import app_without_worker
from tests.correction_factories import credit, invoice_of_89_35, pay_raw
from tests.ingest_factories import exact


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def test_a_payment_is_recorded_with_its_reference(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)

    response = pay_raw(client, contract, invoice["Id"], "100.00", "SEPA-0001")

    assert response.status_code == 201, response.text
    payment = exact(response)
    assert (payment["InvoiceId"], str(payment["Amount"]), payment["Reference"]) == (
        invoice["Id"],
        "100.00",
        "SEPA-0001",
    )
    assert payment["PaidAt"] == "2026-02-10T00:00:00Z"
    listed = exact(
        client.get(f"/api/v1/invoices/{invoice['Id']}/payments", headers=contract.headers)
    )
    assert listed == [payment]


def test_the_same_reference_twice_is_one_payment(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    first = pay_raw(client, contract, invoice["Id"], "50", "SEPA-0001")

    again = pay_raw(client, contract, invoice["Id"], "50.00", "SEPA-0001")
    changed = pay_raw(client, contract, invoice["Id"], "51", "SEPA-0001")

    assert (first.status_code, again.status_code) == (201, 200)
    assert exact(again) == exact(first)
    assert changed.status_code == 409, changed.text
    listed = exact(
        client.get(f"/api/v1/invoices/{invoice['Id']}/payments", headers=contract.headers)
    )
    assert [p["Amount"] for p in listed] == [Decimal("50.00")]


def test_a_payment_is_never_above_the_amount_due(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    credit(client, contract, invoice["Id"], (2, "2.50"))  # 106.33 - 2.98 = 103.35 due
    pay_raw(client, contract, invoice["Id"], "100.00", "SEPA-0001")

    over = pay_raw(client, contract, invoice["Id"], "3.36", "SEPA-0002")
    rest = pay_raw(client, contract, invoice["Id"], "3.35", "SEPA-0003")
    after = pay_raw(client, contract, invoice["Id"], "0.01", "SEPA-0004")

    assert over.status_code == 409, over.text
    assert "has 3.35 EUR due; 3.36 is 0.01 too much" in over.json()["detail"]
    assert rest.status_code == 201, rest.text
    assert after.status_code == 409, after.text


def test_a_payment_is_above_zero_in_the_currencys_minor_unit(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)

    zero = pay_raw(client, contract, invoice["Id"], "0", "SEPA-0001")
    fraction = pay_raw(client, contract, invoice["Id"], "1.001", "SEPA-0002")

    assert (zero.status_code, fraction.status_code) == (422, 422)
    assert zero.json()["errors"][0]["code"] == "not_positive"
    assert fraction.json()["errors"][0]["code"] == "too_many_decimals"


def test_a_payment_beyond_any_invoice_total_is_refused_as_too_large(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)

    huge = pay_raw(client, contract, invoice["Id"], "1e100000", "SEPA-0003")

    assert huge.status_code == 422, huge.text
    assert huge.json()["errors"][0]["code"] == "too_large"


def test_another_sellers_invoice_takes_no_payment(client: TestClient) -> None:
    _, invoice = invoice_of_89_35(client)
    stranger, _ = invoice_of_89_35(client)

    response = pay_raw(client, stranger, invoice["Id"], "1", "SEPA-0001")
    listing = client.get(f"/api/v1/invoices/{invoice['Id']}/payments", headers=stranger.headers)

    assert (response.status_code, listing.status_code) == (404, 404)
