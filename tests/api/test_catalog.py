"""SPEC §3: customers, components, plans and plan variants on the contract usage API."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.factories import (
    SellerKey,
    new_component,
    new_contract,
    new_customer,
    new_plan,
    new_plan_variant,
    new_seller,
)

CREATED_AT = "2026-01-01T00:00:00Z"  # the test clock
# What a plan variant answers for the SPEC §11 fields a request leaves out.
_SECTION_11_DEFAULTS = {"QuantityComponents": [], "MinimumCommitment": None, "NoticePeriod": None}
UNKNOWN_ID = "0" * 24
MONTHLY = {"Unit": "Month", "Quantity": 1}

_encoder = msgspec.json.Encoder(decimal_format="number")


# -- helpers ------------------------------------------------------------------------------


def _post(client: TestClient, seller: SellerKey, path: str, payload: object) -> Response:
    """POST `payload` with every Decimal written as the exact JSON number it holds
    (0.10 stays 0.10 on the wire, which `json=` could not send)."""
    return client.post(
        f"/api/v1/{path}",
        content=_encoder.encode(payload),
        headers={**seller.headers, "Content-Type": "application/json"},
    )


def _patch(client: TestClient, seller: SellerKey, path: str, payload: object) -> Response:
    return client.patch(
        f"/api/v1/{path}",
        content=_encoder.encode(payload),
        headers={**seller.headers, "Content-Type": "application/json"},
    )


def _exact(response: Response) -> Any:
    """The body with every fractional JSON number read as Decimal, never as a float."""
    return json.loads(response.text, parse_float=Decimal)


def _problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _errors(response: Response) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in _problem(response, 422)["errors"]}


def _variant_payload(plan_id: str, *metered: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "PlanId": plan_id,
        "Name": "Monthly",
        "Currency": "EUR",
        "BillingPeriod": MONTHLY,
        "MeteredComponents": list(metered),
        **fields,
    }


def _per_unit(component_id: str, price: Decimal = Decimal("0.10")) -> dict[str, Any]:
    return {"ComponentId": component_id, "Pricing": {"Model": "PerUnit", "PricePerUnit": price}}


# -- customers ----------------------------------------------------------------------------

FULL_ADDRESS = {
    "Line1": "Hauptstraße 12a",
    "Line2": "Accounts payable",
    "Region": "Berlin",
    "AddressLine1": "Globex GmbH",
    "AddressLine2": "Accounts payable",
    "Street": "Hauptstraße",
    "HouseNumber": "12a",
    "PostalCode": "10115",
    "City": "Berlin",
    "State": "Berlin",
    "Country": "DE",
}


def test_creating_a_customer_echoes_every_field_with_id_and_created_at(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    payload = {
        "CompanyName": "Globex GmbH",
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "EmailAddress": "ada@globex.example",
        "ExternalCustomerId": "crm-42",
        "Locale": "de-DE",
        "TaxRate": Decimal("7.5"),
        "Address": FULL_ADDRESS,
        "VatId": "DE136695976",
        "PaymentTermsDays": 30,
    }
    response = _post(client, seller, "customers", payload)
    assert response.status_code == 201, response.text
    body = _exact(response)
    assert body == {**payload, "Id": body["Id"], "CreatedAt": CREATED_AT}
    assert body["Id"]

    fetched = client.get(f"/api/v1/customers/{body['Id']}", headers=seller.headers)
    assert fetched.status_code == 200
    assert _exact(fetched) == body


def test_a_customer_needs_no_field_at_all(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.post("/api/v1/customers", json={}, headers=seller.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["CompanyName"] is None
    assert body["TaxRate"] is None
    assert body["Address"] is None


def test_customer_fields_are_validated_all_at_once(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.post(
        "/api/v1/customers",
        json={
            "EmailAddress": "not-an-email",
            "Locale": "German",
            "TaxRate": 101,
            "Address": {"Country": "Germany", "Planet": "Earth"},
            "Nickname": "G",
        },
        headers=seller.headers,
    )
    fields = {field for field, _code in _errors(response)}
    assert fields == {
        "EmailAddress",
        "Locale",
        "TaxRate",
        "Address.Country",
        "Address.Planet",
        "Nickname",
    }


def test_external_customer_id_is_unique_per_seller(client: TestClient) -> None:
    seller = new_seller(client)
    new_customer(client, seller, ExternalCustomerId="crm-42")
    again = client.post(
        "/api/v1/customers", json={"ExternalCustomerId": "crm-42"}, headers=seller.headers
    )
    assert "crm-42" in _problem(again, 409)["detail"]
    # Surrounding blanks are stripped, so they do not make a second customer.
    padded = client.post(
        "/api/v1/customers", json={"ExternalCustomerId": "  crm-42 "}, headers=seller.headers
    )
    _problem(padded, 409)
    listed = client.get("/api/v1/customers", headers=seller.headers)
    assert listed.headers["x-total-count"] == "1"


def test_many_customers_may_have_no_external_customer_id(client: TestClient) -> None:
    seller = new_seller(client)
    new_customer(client, seller)
    new_customer(client, seller)
    listed = client.get("/api/v1/customers", headers=seller.headers)
    assert listed.headers["x-total-count"] == "2"


def test_two_sellers_may_use_the_same_external_customer_id(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    first = new_customer(client, alice, ExternalCustomerId="crm-42")
    second = new_customer(client, bob, ExternalCustomerId="crm-42")
    assert first["Id"] != second["Id"]


# -- components ---------------------------------------------------------------------------


def test_creating_a_component_echoes_every_field_with_id_and_created_at(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    payload = {
        "Name": "Storage",
        "Unit": "GB",
        "ItemCode": "storage-gb",
        "Description": "Object storage, per GB and month",
    }
    response = client.post("/api/v1/components", json=payload, headers=seller.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {**payload, "Kind": "Metered", "Id": body["Id"], "CreatedAt": CREATED_AT}
    fetched = client.get(f"/api/v1/components/{body['Id']}", headers=seller.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body


def test_a_component_needs_a_name_and_a_unit(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.post(
        "/api/v1/components", json={"Name": "  ", "ItemCode": ""}, headers=seller.headers
    )
    assert _errors(response) == {
        ("Name", "too_short"),
        ("Unit", "required"),
        ("ItemCode", "too_short"),
    }


def test_item_code_is_unique_per_seller(client: TestClient) -> None:
    seller = new_seller(client)
    new_component(client, seller, ItemCode="storage-gb")
    again = client.post(
        "/api/v1/components",
        json={"Name": "Other", "Unit": "GB", "ItemCode": "storage-gb"},
        headers=seller.headers,
    )
    assert "storage-gb" in _problem(again, 409)["detail"]
    assert client.get("/api/v1/components", headers=seller.headers).json()[0]["Name"] == "Storage"


def test_two_sellers_may_use_the_same_item_code(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    first = new_component(client, alice, ItemCode="storage-gb")
    second = new_component(client, bob, ItemCode="storage-gb")
    assert first["Id"] != second["Id"]


# -- plans --------------------------------------------------------------------------------


def test_creating_a_plan_echoes_every_field_with_id_and_created_at(client: TestClient) -> None:
    seller = new_seller(client)
    payload = {"Name": "Cloud", "Description": "Storage and API calls"}
    response = client.post("/api/v1/plans", json=payload, headers=seller.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {**payload, "Id": body["Id"], "CreatedAt": CREATED_AT}
    fetched = client.get(f"/api/v1/plans/{body['Id']}", headers=seller.headers)
    assert fetched.json() == body


# -- plan variants ------------------------------------------------------------------------


def test_creating_a_plan_variant_echoes_every_field_with_id_and_created_at(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    payload = _variant_payload(
        plan["Id"],
        {**_per_unit(component["Id"], Decimal("0.25")), "FreeQuota": 10},
        Name="Quarterly",
        BillingPeriod={"Unit": "Month", "Quantity": 3},
        RecurringFee=Decimal("29.5"),
        TaxRate=Decimal("7.7"),
    )
    response = _post(client, seller, "planvariants", payload)
    assert response.status_code == 201, response.text
    body = _exact(response)
    assert body == {**payload, **_SECTION_11_DEFAULTS, "Id": body["Id"], "CreatedAt": CREATED_AT}
    fetched = client.get(f"/api/v1/planvariants/{body['Id']}", headers=seller.headers)
    assert fetched.status_code == 200
    assert _exact(fetched) == body


def test_a_plan_variant_without_fee_tax_or_components_has_their_defaults(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    response = client.post(
        "/api/v1/planvariants",
        json={"PlanId": plan["Id"], "Name": "Base", "Currency": "EUR", "BillingPeriod": MONTHLY},
        headers=seller.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["RecurringFee"] is None
    assert body["TaxRate"] == 0
    assert body["MeteredComponents"] == []


def test_the_spec_example_price_list_is_read_back_exactly(client: TestClient) -> None:
    """SPEC §3: storage at 0.10 per GB with 100 GB free, API calls in graduated tiers,
    a monthly EUR variant with a recurring fee of 9.90 and 19 % tax."""
    seller = new_seller(client)
    storage = new_component(client, seller, "Storage", "GB", ItemCode="storage")
    calls = new_component(client, seller, "API calls", "call", ItemCode="api-calls")
    plan = new_plan(client, seller, "Cloud")
    metered = [
        {
            "ComponentId": storage["Id"],
            "Pricing": {"Model": "PerUnit", "PricePerUnit": Decimal("0.10")},
            "FreeQuota": 100,
        },
        {
            "ComponentId": calls["Id"],
            "Pricing": {
                "Model": "Graduated",
                "Tiers": [
                    {"UpTo": 1000, "PricePerUnit": Decimal("0.01")},
                    {"UpTo": None, "PricePerUnit": Decimal("0.005")},
                ],
            },
            "FreeQuota": 0,
        },
    ]
    payload = _variant_payload(
        plan["Id"], *metered, RecurringFee=Decimal("9.90"), TaxRate=Decimal(19)
    )
    created = _post(client, seller, "planvariants", payload)
    assert created.status_code == 201, created.text

    fetched = client.get(f"/api/v1/planvariants/{created.json()['Id']}", headers=seller.headers)
    body = _exact(fetched)
    assert body == {**payload, **_SECTION_11_DEFAULTS, "Id": body["Id"], "CreatedAt": CREATED_AT}
    # Exact decimals, answered without trailing zeros.
    assert '"RecurringFee":9.9,' in fetched.text
    assert '"TaxRate":19,' in fetched.text
    assert '"FreeQuota":100}' in fetched.text


PRICINGS = {
    "PerUnit": {"Model": "PerUnit", "PricePerUnit": Decimal("0.25")},
    "Graduated": {
        "Model": "Graduated",
        "Tiers": [
            {"UpTo": 1000, "PricePerUnit": Decimal("0.01")},
            {"UpTo": 5000, "PricePerUnit": Decimal("0.0075")},
            {"UpTo": None, "PricePerUnit": Decimal("0.005")},
        ],
    },
    "Volume": {
        "Model": "Volume",
        "Tiers": [
            {"UpTo": Decimal("100.5"), "PricePerUnit": 1},
            {"UpTo": None, "PricePerUnit": Decimal("0.8")},
        ],
    },
    "Package": {"Model": "Package", "PackageSize": 100, "PricePerPackage": 5},
}


@pytest.mark.parametrize("model", PRICINGS)
def test_each_pricing_model_is_accepted_and_echoed_exactly(client: TestClient, model: str) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    metered = {"ComponentId": component["Id"], "Pricing": PRICINGS[model]}
    response = _post(client, seller, "planvariants", _variant_payload(plan["Id"], metered))
    assert response.status_code == 201, response.text
    echoed = _exact(response)["MeteredComponents"]
    assert echoed == [{**metered, "FreeQuota": 0}]
    fetched = client.get(f"/api/v1/planvariants/{response.json()['Id']}", headers=seller.headers)
    assert _exact(fetched)["MeteredComponents"] == echoed


def test_pricing_decimals_are_answered_without_trailing_zeros_or_exponent(
    client: TestClient,
) -> None:
    """docs/api-conventions.md: decimals are answered without trailing zeros or exponent
    notation, like every other decimal (RecurringFee 9.90 is answered as 9.9)."""
    seller = new_seller(client)
    plan = new_plan(client, seller)
    storage = new_component(client, seller)
    backups = new_component(client, seller, "Backups")
    payload = _variant_payload(
        plan["Id"],
        _per_unit(storage["Id"], Decimal("0.10")),
        {
            "ComponentId": backups["Id"],
            "Pricing": {
                "Model": "Package",
                "PackageSize": Decimal("1E+2"),
                "PricePerPackage": Decimal("5.00"),
            },
        },
    )
    response = _post(client, seller, "planvariants", payload)
    assert response.status_code == 201, response.text
    fetched = client.get(f"/api/v1/planvariants/{response.json()['Id']}", headers=seller.headers)
    for text in (response.text, fetched.text):
        assert '"PricePerUnit":0.1}' in text
        assert '"PackageSize":100,' in text
        assert '"PricePerPackage":5}' in text


# -- decimals -----------------------------------------------------------------------------


@pytest.mark.parametrize("tax_rate", ["7.5", Decimal("7.5"), "7.50", Decimal("7.5000")])
def test_tax_rate_sent_as_string_or_number_is_read_back_as_exactly_7_5(
    client: TestClient, tax_rate: object
) -> None:
    seller = new_seller(client)
    response = _post(client, seller, "customers", {"TaxRate": tax_rate})
    assert response.status_code == 201, response.text
    assert '"TaxRate":7.5,' in response.text
    fetched = client.get(f"/api/v1/customers/{response.json()['Id']}", headers=seller.headers)
    assert '"TaxRate":7.5,' in fetched.text
    assert _exact(fetched)["TaxRate"] == Decimal("7.5")


def test_price_per_unit_0_10_is_stored_as_exactly_one_tenth(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    response = _post(
        client, seller, "planvariants", _variant_payload(plan["Id"], _per_unit(component["Id"]))
    )
    assert response.status_code == 201, response.text
    fetched = client.get(f"/api/v1/planvariants/{response.json()['Id']}", headers=seller.headers)
    price = _exact(fetched)["MeteredComponents"][0]["Pricing"]["PricePerUnit"]
    assert isinstance(price, Decimal)
    assert price == Decimal("0.1")  # not 0.1000000000000000055511151231257827 or 0.1000000001


def test_seven_decimal_places_are_too_many_everywhere(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    storage = new_component(client, seller)
    calls = new_component(client, seller, "API calls")
    payload = _variant_payload(
        plan["Id"],
        {**_per_unit(storage["Id"], Decimal("0.0000001")), "FreeQuota": Decimal("100.0000001")},
        {
            "ComponentId": calls["Id"],
            "Pricing": {
                "Model": "Graduated",
                "Tiers": [
                    {"UpTo": Decimal("1000.0000001"), "PricePerUnit": Decimal("0.01")},
                    {"UpTo": None, "PricePerUnit": Decimal("0.005")},
                ],
            },
        },
        RecurringFee=Decimal("9.9000001"),
        TaxRate=Decimal("19.00001"),  # a percentage has at most 4 places
    )
    assert _errors(_post(client, seller, "planvariants", payload)) == {
        ("MeteredComponents[0].Pricing.PricePerUnit", "too_many_decimals"),
        ("MeteredComponents[0].FreeQuota", "too_many_decimals"),
        ("MeteredComponents[1].Pricing.Tiers[0].UpTo", "too_many_decimals"),
        ("RecurringFee", "too_many_decimals"),
        ("TaxRate", "too_many_decimals"),
    }
    customer = _post(client, seller, "customers", {"TaxRate": Decimal("7.00001")})
    assert _errors(customer) == {("TaxRate", "too_many_decimals")}


def test_six_decimal_places_are_kept_exactly(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    metered = {**_per_unit(component["Id"], Decimal("0.000001")), "FreeQuota": Decimal("0.123456")}
    response = _post(
        client,
        seller,
        "planvariants",
        _variant_payload(plan["Id"], metered, RecurringFee=Decimal("999999.999999")),
    )
    assert response.status_code == 201, response.text
    fetched = _exact(
        client.get(f"/api/v1/planvariants/{response.json()['Id']}", headers=seller.headers)
    )
    assert fetched["MeteredComponents"] == [metered]
    assert fetched["RecurringFee"] == Decimal("999999.999999")


def test_booleans_and_words_are_not_decimals(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    storage = new_component(client, seller)
    calls = new_component(client, seller, "API calls")
    payload = _variant_payload(
        plan["Id"],
        {
            "ComponentId": storage["Id"],
            "Pricing": {"Model": "PerUnit", "PricePerUnit": True},
            "FreeQuota": "abc",
        },
        {
            "ComponentId": calls["Id"],
            "Pricing": {"Model": "Package", "PackageSize": "abc", "PricePerPackage": False},
            "FreeQuota": True,
        },
        BillingPeriod={"Unit": "Month", "Quantity": True},
        RecurringFee="abc",
        TaxRate=False,
    )
    assert _errors(_post(client, seller, "planvariants", payload)) == {
        ("MeteredComponents[0].Pricing.PricePerUnit", "not_a_decimal"),
        ("MeteredComponents[0].FreeQuota", "not_a_decimal"),
        ("MeteredComponents[1].Pricing.PackageSize", "not_a_decimal"),
        ("MeteredComponents[1].Pricing.PricePerPackage", "not_a_decimal"),
        ("MeteredComponents[1].FreeQuota", "not_a_decimal"),
        ("BillingPeriod.Quantity", "not_an_integer"),
        ("RecurringFee", "not_a_decimal"),
        ("TaxRate", "not_a_decimal"),
    }
    for tax_rate in (True, "abc", "7,5", ""):
        customer = _post(client, seller, "customers", {"TaxRate": tax_rate})
        assert _errors(customer) == {("TaxRate", "not_a_decimal")}


# -- plan variant validation --------------------------------------------------------------


def test_plan_variant_validation_names_every_bad_field_at_once(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    payload = _variant_payload(
        plan["Id"],
        {
            "ComponentId": UNKNOWN_ID,
            "Pricing": {
                "Model": "Graduated",
                "Tiers": [
                    {"UpTo": 1000, "PricePerUnit": Decimal("0.01")},
                    {"UpTo": 500, "PricePerUnit": Decimal("-0.005")},
                    {"UpTo": None, "PricePerUnit": Decimal("0.001")},
                ],
            },
        },
        Currency="XYZ",
        BillingPeriod={"Unit": "Fortnight", "Quantity": 0},
        Colour="red",
    )
    response = _post(client, seller, "planvariants", payload)
    body = _problem(response, 422)
    errors = {(e["field"], e["code"]) for e in body["errors"]}
    # The unknown ComponentId is a reference check, made once every field is valid
    # (test_unknown_and_duplicate_references_are_all_named); accept it here too.
    assert errors - {("MeteredComponents[0].ComponentId", "not_found")} == {
        ("Currency", "unknown_currency"),
        ("BillingPeriod.Unit", "unknown_unit"),
        ("BillingPeriod.Quantity", "not_positive"),
        ("MeteredComponents[0].Pricing.Tiers[1].UpTo", "not_ascending"),
        ("MeteredComponents[0].Pricing.Tiers[1].PricePerUnit", "negative"),
        ("Colour", "unknown_field"),
    }
    indexed = [e for e in body["errors"] if e["field"].startswith("MeteredComponents")]
    assert all(e["index"] == 0 for e in indexed)


def test_unknown_and_duplicate_references_are_all_named(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller)
    payload = _variant_payload(
        UNKNOWN_ID,
        _per_unit(component["Id"]),
        _per_unit(UNKNOWN_ID),
        _per_unit(component["Id"]),
    )
    body = _problem(_post(client, seller, "planvariants", payload), 422)
    assert {(e["field"], e["code"], e.get("index")) for e in body["errors"]} == {
        ("PlanId", "not_found", None),
        ("MeteredComponents[1].ComponentId", "not_found", 1),
        ("MeteredComponents[2].ComponentId", "duplicate", 2),
    }


def test_another_sellers_plan_and_component_are_unknown_references(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    bobs_plan = new_plan(client, bob)
    bobs_component = new_component(client, bob)
    foreign = _post(
        client,
        alice,
        "planvariants",
        _variant_payload(bobs_plan["Id"], _per_unit(bobs_component["Id"])),
    )
    unknown = _post(
        client, alice, "planvariants", _variant_payload(UNKNOWN_ID, _per_unit("1" * 24))
    )
    assert foreign.status_code == unknown.status_code == 422
    # Word for word the same answer, but for the ids the caller sent.
    as_unknown = foreign.text.replace(bobs_plan["Id"], UNKNOWN_ID).replace(
        bobs_component["Id"], "1" * 24
    )
    assert as_unknown == unknown.text


def test_billing_period_and_pricing_shapes_are_validated(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    a, b, c, d = (new_component(client, seller, f"C{i}") for i in range(4))
    payload = _variant_payload(
        plan["Id"],
        {"ComponentId": a["Id"], "Pricing": {"Model": "Flat", "Amount": 5}},
        {"ComponentId": b["Id"], "Pricing": {"Model": "Volume", "Tiers": [{"UpTo": 10}]}},
        {"ComponentId": c["Id"], "Pricing": {"Model": "Package", "PackageSize": 0}},
        {"ComponentId": d["Id"], "Pricing": "PerUnit"},
        BillingPeriod={"Unit": "Month", "Quantity": 1001, "Anchor": "1st"},
    )
    assert _errors(_post(client, seller, "planvariants", payload)) == {
        ("MeteredComponents[0].Pricing.Model", "unknown_model"),
        ("MeteredComponents[0].Pricing.Amount", "unknown_field"),
        ("MeteredComponents[1].Pricing.Tiers[0].PricePerUnit", "required"),
        ("MeteredComponents[1].Pricing.Tiers", "missing_open_tier"),
        ("MeteredComponents[2].Pricing.PackageSize", "not_positive"),
        ("MeteredComponents[2].Pricing.PricePerPackage", "required"),
        ("MeteredComponents[3].Pricing", "not_an_object"),
        ("BillingPeriod.Quantity", "too_large"),
        ("BillingPeriod.Anchor", "unknown_field"),
    }


# -- currencies ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["EUR", "JPY", "KWD"])
def test_active_iso_4217_currencies_are_accepted(client: TestClient, code: str) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    variant = new_plan_variant(client, seller, plan["Id"], currency=code)
    assert variant["Currency"] == code


@pytest.mark.parametrize("code", ["eur", "XYZ", "", "EURO", "DEM", "XXX"])
def test_unknown_currencies_are_rejected(client: TestClient, code: str) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    response = client.post(
        "/api/v1/planvariants",
        json={"PlanId": plan["Id"], "Name": "M", "Currency": code, "BillingPeriod": MONTHLY},
        headers=seller.headers,
    )
    assert _errors(response) == {("Currency", "unknown_currency")}


def test_a_lower_case_currency_is_rejected_not_normalized_with_a_hint(client: TestClient) -> None:
    # domain/money.py rejects lower case, so a stored code is always the one sent.
    seller = new_seller(client)
    plan = new_plan(client, seller)
    response = client.post(
        "/api/v1/planvariants",
        json={"PlanId": plan["Id"], "Name": "M", "Currency": "eur", "BillingPeriod": MONTHLY},
        headers=seller.headers,
    )
    (error,) = _problem(response, 422)["errors"]
    assert "did you mean 'EUR'?" in error["message"]


# -- immutability and PATCH ---------------------------------------------------------------


def _used_price_list(client: TestClient, seller: SellerKey) -> tuple[dict[str, Any], ...]:
    """A plan variant charging two components, and a contract using it."""
    plan = new_plan(client, seller)
    storage = new_component(client, seller, "Storage", ItemCode="storage")
    calls = new_component(client, seller, "API calls", "call", ItemCode="calls")
    variant = new_plan_variant(client, seller, plan["Id"], [storage["Id"], calls["Id"]])
    customer = new_customer(client, seller)
    new_contract(client, seller, customer["Id"], variant["Id"])
    return variant, storage, calls


def test_a_component_can_change_while_no_contract_uses_it(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller, ItemCode="storage")
    plan = new_plan(client, seller)
    new_plan_variant(client, seller, plan["Id"], [component["Id"]])  # a variant, no contract
    response = client.patch(
        f"/api/v1/components/{component['Id']}",
        json={"Name": "Object storage", "Description": "S3-compatible"},
        headers=seller.headers,
    )
    assert response.status_code == 200, response.text
    changed = {**component, "Name": "Object storage", "Description": "S3-compatible"}
    assert response.json() == changed
    fetched = client.get(f"/api/v1/components/{component['Id']}", headers=seller.headers)
    assert fetched.json() == changed


def test_a_plan_variant_can_change_while_no_contract_uses_it(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    storage = new_component(client, seller)
    calls = new_component(client, seller, "API calls")
    variant = new_plan_variant(client, seller, plan["Id"], [storage["Id"]])
    changes = {
        "Name": "Monthly 2027",
        "RecurringFee": Decimal("12.5"),
        "BillingPeriod": {"Unit": "Week", "Quantity": 2},
        "MeteredComponents": [
            {**_per_unit(calls["Id"], Decimal("0.02")), "FreeQuota": 1000},
        ],
    }
    response = _patch(client, seller, f"planvariants/{variant['Id']}", changes)
    assert response.status_code == 200, response.text
    # Id, CreatedAt, PlanId, Currency and TaxRate stay; the fields sent change.
    expected = {**variant, **changes}
    assert _exact(response) == expected
    fetched = client.get(f"/api/v1/planvariants/{variant['Id']}", headers=seller.headers)
    assert _exact(fetched) == expected


def test_a_plan_variant_used_by_a_contract_can_no_longer_change(client: TestClient) -> None:
    seller = new_seller(client)
    variant, _storage, _calls = _used_price_list(client, seller)
    response = client.patch(
        f"/api/v1/planvariants/{variant['Id']}",
        json={"RecurringFee": 1, "Name": "Cheaper"},
        headers=seller.headers,
    )
    assert "create a new plan variant" in _problem(response, 409)["detail"]
    fetched = client.get(f"/api/v1/planvariants/{variant['Id']}", headers=seller.headers)
    assert fetched.json() == variant


def test_the_components_of_a_used_plan_variant_can_no_longer_change(client: TestClient) -> None:
    seller = new_seller(client)
    _variant, storage, calls = _used_price_list(client, seller)
    unused = new_component(client, seller, "Backups", ItemCode="backups")
    for component in (storage, calls):
        response = client.patch(
            f"/api/v1/components/{component['Id']}", json={"Unit": "TB"}, headers=seller.headers
        )
        _problem(response, 409)
        fetched = client.get(f"/api/v1/components/{component['Id']}", headers=seller.headers)
        assert fetched.json() == component
    # A component no contract uses still can.
    response = client.patch(
        f"/api/v1/components/{unused['Id']}", json={"Unit": "TB"}, headers=seller.headers
    )
    assert response.status_code == 200
    assert response.json()["Unit"] == "TB"


def test_a_required_field_cannot_be_cleared_with_null(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller)
    plan = new_plan(client, seller)
    variant = new_plan_variant(client, seller, plan["Id"], [component["Id"]])
    for field in ("Name", "Unit"):
        response = client.patch(
            f"/api/v1/components/{component['Id']}", json={field: None}, headers=seller.headers
        )
        assert {f for f, _code in _errors(response)} == {field}
    for field in ("Name", "Currency", "BillingPeriod", "TaxRate", "MeteredComponents"):
        response = client.patch(
            f"/api/v1/planvariants/{variant['Id']}", json={field: None}, headers=seller.headers
        )
        assert {f for f, _code in _errors(response)} == {field}
    assert client.get(f"/api/v1/components/{component['Id']}", headers=seller.headers).json() == (
        component
    )
    fetched = client.get(f"/api/v1/planvariants/{variant['Id']}", headers=seller.headers)
    assert fetched.json() == variant


def test_an_optional_field_is_cleared_with_null(client: TestClient) -> None:
    seller = new_seller(client)
    component = new_component(client, seller, ItemCode="storage", Description="S3")
    response = client.patch(
        f"/api/v1/components/{component['Id']}",
        json={"ItemCode": None, "Description": None},
        headers=seller.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**component, "ItemCode": None, "Description": None}
    plan = new_plan(client, seller)
    variant = new_plan_variant(client, seller, plan["Id"], RecurringFee=9.9)
    response = client.patch(
        f"/api/v1/planvariants/{variant['Id']}", json={"RecurringFee": None}, headers=seller.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {**variant, "RecurringFee": None}


def test_patching_item_code_to_another_components_item_code_is_409(client: TestClient) -> None:
    seller = new_seller(client)
    storage = new_component(client, seller, "Storage", ItemCode="storage")
    new_component(client, seller, "Backups", ItemCode="backups")
    response = client.patch(
        f"/api/v1/components/{storage['Id']}",
        json={"ItemCode": "backups", "Name": "Renamed"},
        headers=seller.headers,
    )
    assert "backups" in _problem(response, 409)["detail"]
    fetched = client.get(f"/api/v1/components/{storage['Id']}", headers=seller.headers)
    assert fetched.json() == storage
    # Its own ItemCode is no conflict.
    same = client.patch(
        f"/api/v1/components/{storage['Id']}", json={"ItemCode": "storage"}, headers=seller.headers
    )
    assert same.status_code == 200


def test_a_patch_is_validated_like_a_create(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    variant = new_plan_variant(client, seller, plan["Id"])
    response = _patch(
        client,
        seller,
        f"planvariants/{variant['Id']}",
        {
            "Currency": "eur",
            "PlanId": plan["Id"],
            "MeteredComponents": [_per_unit(component["Id"], Decimal(-1))],
        },
    )
    assert _errors(response) == {
        ("Currency", "unknown_currency"),
        ("PlanId", "unknown_field"),
        ("MeteredComponents[0].Pricing.PricePerUnit", "negative"),
    }
    references = _patch(
        client,
        seller,
        f"planvariants/{variant['Id']}",
        {"MeteredComponents": [_per_unit(UNKNOWN_ID), _per_unit(component["Id"])]},
    )
    assert _errors(references) == {("MeteredComponents[0].ComponentId", "not_found")}
    unknown = client.patch(
        f"/api/v1/components/{component['Id']}", json={"Colour": "red"}, headers=seller.headers
    )
    assert _errors(unknown) == {("Colour", "unknown_field")}


@pytest.mark.parametrize("path", ["components", "planvariants"])
def test_patching_an_unknown_or_foreign_object_is_404(client: TestClient, path: str) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    plan = new_plan(client, bob)
    bobs = (
        new_component(client, bob)
        if path == "components"
        else new_plan_variant(client, bob, plan["Id"])
    )
    for id_ in (UNKNOWN_ID, bobs["Id"]):
        response = client.patch(f"/api/v1/{path}/{id_}", json={"Name": "X"}, headers=alice.headers)
        _problem(response, 404)
    assert client.get(f"/api/v1/{path}/{bobs['Id']}", headers=bob.headers).json() == bobs


# -- GET one, lists and paging ------------------------------------------------------------


def _make_customer(client: TestClient, seller: SellerKey, index: int) -> str:
    return str(new_customer(client, seller, CompanyName=f"Customer {index}")["Id"])


def _make_component(client: TestClient, seller: SellerKey, index: int) -> str:
    return str(new_component(client, seller, f"Component {index}")["Id"])


def _make_plan(client: TestClient, seller: SellerKey, index: int) -> str:
    return str(new_plan(client, seller, f"Plan {index}")["Id"])


def _make_plan_variant(client: TestClient, seller: SellerKey, index: int) -> str:
    plan = new_plan(client, seller)
    return str(new_plan_variant(client, seller, plan["Id"], Name=f"Variant {index}")["Id"])


MAKERS: dict[str, Callable[[TestClient, SellerKey, int], str]] = {
    "customers": _make_customer,
    "components": _make_component,
    "plans": _make_plan,
    "planvariants": _make_plan_variant,
}


@pytest.mark.parametrize("path", MAKERS)
def test_lists_are_newest_first_with_x_total_count_and_skip_take_paging(
    client: TestClient, path: str
) -> None:
    seller = new_seller(client)
    ids = [MAKERS[path](client, seller, index) for index in range(5)]

    everything = client.get(f"/api/v1/{path}", headers=seller.headers)
    assert everything.status_code == 200
    assert everything.headers["x-total-count"] == "5"
    assert [item["Id"] for item in everything.json()] == ids[::-1]

    page = client.get(f"/api/v1/{path}?skip=1&take=2", headers=seller.headers)
    assert page.headers["x-total-count"] == "5"
    assert [item["Id"] for item in page.json()] == [ids[3], ids[2]]  # the 4th and 3rd created

    beyond = client.get(f"/api/v1/{path}?skip=5", headers=seller.headers)
    assert beyond.json() == []
    assert beyond.headers["x-total-count"] == "5"

    largest = client.get(f"/api/v1/{path}?take=500", headers=seller.headers)
    assert len(largest.json()) == 5


@pytest.mark.parametrize("path", MAKERS)
def test_an_empty_list_has_x_total_count_zero(client: TestClient, path: str) -> None:
    seller = new_seller(client)
    response = client.get(f"/api/v1/{path}", headers=seller.headers)
    assert response.json() == []
    assert response.headers["x-total-count"] == "0"


@pytest.mark.parametrize("path", MAKERS)
@pytest.mark.parametrize(
    ("query", "field"),
    [("take=0", "take"), ("take=501", "take"), ("skip=-1", "skip"), ("take=many", "take")],
)
def test_paging_out_of_bounds_is_422_naming_the_query_field(
    client: TestClient, path: str, query: str, field: str
) -> None:
    seller = new_seller(client)
    response = client.get(f"/api/v1/{path}?{query}", headers=seller.headers)
    assert {f for f, _code in _errors(response)} == {field}


def test_a_skip_too_large_for_the_database_is_422_not_500(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.get(f"/api/v1/customers?skip={10**20}", headers=seller.headers)
    assert {f for f, _code in _errors(response)} == {"skip"}


@pytest.mark.parametrize("path", MAKERS)
def test_getting_an_unknown_or_foreign_object_is_404(client: TestClient, path: str) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    bobs = MAKERS[path](client, bob, 1)
    foreign = client.get(f"/api/v1/{path}/{bobs}", headers=alice.headers)
    unknown = client.get(f"/api/v1/{path}/{UNKNOWN_ID}", headers=alice.headers)
    _problem(foreign, 404)
    assert foreign.text.replace(bobs, UNKNOWN_ID) == unknown.text
    assert client.get(f"/api/v1/{path}", headers=alice.headers).json() == []


# -- input no database may refuse with a 500 ----------------------------------------------


def test_a_nul_character_in_a_text_field_never_answers_500(
    client: TestClient, database_kind: str, request: pytest.FixtureRequest
) -> None:
    seller = new_seller(client)
    response = client.post(
        "/api/v1/customers", json={"CompanyName": "Glo\x00bex"}, headers=seller.headers
    )
    assert response.status_code in (201, 422), response.text


@pytest.mark.parametrize("path", MAKERS)
def test_an_id_with_a_nul_character_is_404_like_any_unknown_id(
    client: TestClient, path: str, database_kind: str, request: pytest.FixtureRequest
) -> None:
    seller = new_seller(client)
    _problem(client.get(f"/api/v1/{path}/abc%00def", headers=seller.headers), 404)


def test_a_negative_zero_tax_rate_is_answered_as_0_on_create_and_read_alike(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    created = client.post("/api/v1/customers", json={"TaxRate": "-0"}, headers=seller.headers)
    assert created.status_code == 201, created.text
    fetched = client.get(f"/api/v1/customers/{created.json()['Id']}", headers=seller.headers)
    assert '"TaxRate":0,' in fetched.text
    assert '"TaxRate":0,' in created.text


def test_the_largest_fee_and_free_quota_validation_accepts_are_stored_exactly(
    client: TestClient,
) -> None:
    # Below 10**12 with 6 places: what SQLite's 64-bit integers hold exactly, scaled.
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    largest = Decimal("999999999999.999999")
    payload = _variant_payload(
        plan["Id"], {**_per_unit(component["Id"]), "FreeQuota": largest}, RecurringFee=largest
    )
    response = _post(client, seller, "planvariants", payload)
    assert response.status_code == 201, response.text
    fetched = _exact(
        client.get(f"/api/v1/planvariants/{response.json()['Id']}", headers=seller.headers)
    )
    assert fetched["RecurringFee"] == largest
    assert fetched["MeteredComponents"][0]["FreeQuota"] == largest


def test_a_fee_of_10_to_the_12_is_refused_as_too_large(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    payload = _variant_payload(plan["Id"], _per_unit(component["Id"]), RecurringFee="1000000000000")
    response = _post(client, seller, "planvariants", payload)
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["RecurringFee"]
