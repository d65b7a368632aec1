"""SPEC §8 additions: an invoice's `DueDate` from payment terms, the seller and the
customer as they were when it was issued, and where it stands (`PaymentStatus`,
`AmountCredited`, `AmountPaid`, `AmountDue`)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    app_without_worker,
    bill_at,
    get_invoice,
    new_priced_contract,
    only_invoice,
    post_usage,
)
from tests.correction_factories import credit, invoice_of_89_35, pay_raw, void

PROFILE = {
    "LegalName": "Acme Cloud GmbH",
    "Address": {"Line1": "Hauptstr. 1", "PostalCode": "10115", "City": "Berlin", "Country": "DE"},
    "VatId": "DE136695976",
    "TaxNumber": "29/815/08150",
    "BankAccount": {"Iban": "DE89370400440532013000"},
}


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _standing(invoice: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        str(invoice[key]) for key in ("PaymentStatus", "AmountCredited", "AmountPaid", "AmountDue")
    )


def test_credits_and_payments_bring_the_amount_due_down_to_paid(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    assert _standing(invoice) == ("Open", "0.00", "0.00", "106.33")

    credit(client, contract, invoice["Id"], (2, "2.50"))
    credited = get_invoice(client, contract.seller, invoice["Id"])
    pay_raw(client, contract, invoice["Id"], "100.00", "SEPA-0001")
    partly = get_invoice(client, contract.seller, invoice["Id"])
    pay_raw(client, contract, invoice["Id"], "3.35", "SEPA-0002")
    paid = get_invoice(client, contract.seller, invoice["Id"])

    assert _standing(credited) == ("Open", "2.98", "0.00", "103.35")
    assert _standing(partly) == ("Open", "2.98", "100.00", "3.35")
    assert _standing(paid) == ("Paid", "2.98", "103.35", "0.00")


def test_a_voided_invoice_answers_voided_and_credited_in_full(client: TestClient) -> None:
    contract, invoice = invoice_of_89_35(client)
    credit(client, contract, invoice["Id"], (2, "2.50"))

    voided = void(client, contract, invoice["Id"])

    assert _standing(voided) == ("Voided", "106.33", "0.00", "0.00")


def test_the_due_date_follows_the_customers_terms_else_the_sellers_else_14_days(
    client: TestClient,
) -> None:
    plain = new_priced_contract(client)
    seller = plain.seller
    client.put("/api/v1/seller", json={**PROFILE, "PaymentTermsDays": 30}, headers=seller.headers)
    by_seller = new_priced_contract(client, seller)
    by_customer = new_priced_contract(client, seller)
    client.patch(
        f"/api/v1/customers/{by_customer.customer_id}",
        json={"PaymentTermsDays": 7},
        headers=seller.headers,
    )
    new_seller_contract = new_priced_contract(client)

    bill_at(client, "2026-02-01T00:00:00Z")

    due = [
        only_invoice(client, c)["DueDate"] for c in (by_customer, by_seller, new_seller_contract)
    ]
    assert due == ["2026-02-08T00:00:00Z", "2026-03-03T00:00:00Z", "2026-02-15T00:00:00Z"]


def test_an_issued_invoice_keeps_the_parties_as_they_were(client: TestClient) -> None:
    contract = new_priced_contract(client)
    seller = contract.seller
    client.put("/api/v1/seller", json=PROFILE, headers=seller.headers)
    client.patch(
        f"/api/v1/customers/{contract.customer_id}",
        json={
            "CompanyName": "Globex GmbH",
            "VatId": "ATU13585627",
            "Address": {"Line1": "Ring 2", "PostalCode": "1010", "City": "Wien", "Country": "AT"},
        },
        headers=seller.headers,
    )
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    issued = only_invoice(client, contract)

    client.put(
        "/api/v1/seller", json={**PROFILE, "LegalName": "Acme Renamed AG"}, headers=seller.headers
    )
    client.patch(
        f"/api/v1/customers/{contract.customer_id}",
        json={"CompanyName": "Initech", "VatId": None, "Address": None},
        headers=seller.headers,
    )

    assert only_invoice(client, contract) == issued
    assert issued["Seller"] == {
        "Name": "Acme Cloud GmbH",
        "Address": {**_no_address(), **PROFILE["Address"]},
        "VatId": "DE136695976",
        "TaxNumber": "29/815/08150",
        "BankAccount": {"Iban": "DE89370400440532013000", "Bic": None, "AccountHolder": None},
    }
    assert issued["Customer"] == {
        "Name": "Globex GmbH",
        "Address": {
            **_no_address(),
            "Line1": "Ring 2",
            "PostalCode": "1010",
            "City": "Wien",
            "Country": "AT",
        },
        "VatId": "ATU13585627",
        "TaxNumber": None,
        "BankAccount": None,
    }
    assert issued["AmountDue"] == Decimal("0.50")


def _no_address() -> dict[str, None]:
    keys = (
        "Line1", "Line2", "Region", "AddressLine1", "AddressLine2", "Street", "HouseNumber",
        "PostalCode", "City", "State", "Country",
    )  # fmt: skip
    return dict.fromkeys(keys)
