"""SPEC §12 seller profile and editable customers: VAT ids and IBANs checked, every bad
field named at once."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from tests.factories import new_customer, new_seller

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

PROFILE = {
    "LegalName": "Acme Cloud GmbH",
    "Address": {"Line1": "Hauptstr. 1", "PostalCode": "10115", "City": "Berlin", "Country": "DE"},
    "VatId": "DE 136 695 976",
    "TaxNumber": "29/815/08150",
    "Email": "billing@acme.example",
    "BankAccount": {"Iban": "DE89 3704 0044 0532 0130 00", "Bic": "COBADEFFXXX"},
    "PaymentTermsDays": 30,
    "Footer": "Registered at Amtsgericht Berlin",
    "Logo": base64.b64encode(PNG).decode(),
}


def test_the_seller_sets_and_reads_its_profile(client: TestClient) -> None:
    seller = new_seller(client)

    before = client.get("/api/v1/seller", headers=seller.headers)
    put = client.put("/api/v1/seller", json=PROFILE, headers=seller.headers)
    read = client.get("/api/v1/seller", headers=seller.headers)

    assert before.status_code == 404
    assert put.status_code == 200, put.text
    assert read.json() == put.json()
    body = read.json()
    assert body["VatId"] == "DE136695976"
    assert body["BankAccount"] == {
        "Iban": "DE89370400440532013000",
        "Bic": "COBADEFFXXX",
        "AccountHolder": None,
    }
    assert body["Address"]["Country"] == "DE"
    assert body["Logo"] == PROFILE["Logo"]
    assert body["UpdatedAt"] == "2026-01-01T00:00:00Z"


def test_a_profile_put_again_replaces_the_one_before(client: TestClient) -> None:
    seller = new_seller(client)
    client.put("/api/v1/seller", json=PROFILE, headers=seller.headers)

    smaller = {"LegalName": "Acme AG", "Address": PROFILE["Address"]}
    response = client.put("/api/v1/seller", json=smaller, headers=seller.headers)

    assert response.status_code == 200, response.text
    assert (response.json()["LegalName"], response.json()["VatId"]) == ("Acme AG", None)
    assert response.json()["BankAccount"] is None


def test_vat_ids_ibans_and_every_bad_field_are_named_at_once(client: TestClient) -> None:
    seller = new_seller(client)
    bad = {
        **PROFILE,
        "VatId": "DE136695977",
        "BankAccount": {"Iban": "DE89370400440532013001", "Bic": "X"},
        "PaymentTermsDays": -1,
        "Logo": base64.b64encode(b"GIF89a").decode(),
        "Address": {"Line1": "Hauptstr. 1", "City": "Berlin", "Country": "Germany"},
    }

    response = client.put("/api/v1/seller", json=bad, headers=seller.headers)

    assert response.status_code == 422, response.text
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == [
        "Address.Country",
        "Address.PostalCode",
        "BankAccount.Bic",
        "BankAccount.Iban",
        "Logo",
        "PaymentTermsDays",
        "VatId",
    ]
    assert client.get("/api/v1/seller", headers=seller.headers).status_code == 404


def test_a_customer_is_changed_field_by_field(client: TestClient) -> None:
    seller = new_seller(client)
    customer = new_customer(client, seller, EmailAddress="ap@globex.example", Locale="de-DE")

    response = client.patch(
        f"/api/v1/customers/{customer['Id']}",
        json={
            "CompanyName": "Globex GmbH",
            "VatId": "DE136695976",
            "PaymentTermsDays": 7,
            "Address": {
                "Line1": "Ring 2",
                "PostalCode": "80331",
                "City": "München",
                "Country": "DE",
            },
            "Locale": None,
        },
        headers=seller.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["CompanyName"], body["VatId"], body["PaymentTermsDays"]) == (
        "Globex GmbH",
        "DE136695976",
        7,
    )
    assert body["EmailAddress"] == "ap@globex.example"  # left out: kept
    assert body["Locale"] is None  # null: cleared
    assert body["Address"]["City"] == "München"
    read = client.get(f"/api/v1/customers/{customer['Id']}", headers=seller.headers)
    assert read.json() == body


def test_a_customer_change_is_checked_like_a_new_customer(client: TestClient) -> None:
    seller = new_seller(client)
    customer = new_customer(client, seller)
    new_customer(client, seller, ExternalCustomerId="C-1")

    bad = client.patch(
        f"/api/v1/customers/{customer['Id']}",
        json={"VatId": "XX123", "PaymentTermsDays": 1000, "Unknown": 1},
        headers=seller.headers,
    )
    taken = client.patch(
        f"/api/v1/customers/{customer['Id']}",
        json={"ExternalCustomerId": "C-1"},
        headers=seller.headers,
    )

    assert bad.status_code == 422, bad.text
    assert sorted(e["field"] for e in bad.json()["errors"]) == [
        "PaymentTermsDays",
        "Unknown",
        "VatId",
    ]
    assert taken.status_code == 409, taken.text


def test_another_sellers_customer_cannot_be_changed(client: TestClient) -> None:
    seller = new_seller(client)
    customer = new_customer(client, seller)
    stranger = new_seller(client, "Initech")

    response = client.patch(
        f"/api/v1/customers/{customer['Id']}",
        json={"CompanyName": "Mine"},
        headers=stranger.headers,
    )

    assert response.status_code == 404
    assert (
        client.get(f"/api/v1/customers/{customer['Id']}", headers=seller.headers).json() == customer
    )
