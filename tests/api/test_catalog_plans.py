"""SPEC §11 fields of the catalog: a component's Kind, tier flat fees, spend caps,
minimum commitments, quantity components and notice periods, stored and answered."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
from fastapi.testclient import TestClient

from tests.factories import SellerKey, new_component, new_plan, new_seller

MONTHLY = {"Unit": "Month", "Quantity": 1}
_encoder = msgspec.json.Encoder(decimal_format="number")

GRADUATED_WITH_FLAT_FEES = {
    "Model": "Graduated",
    "Tiers": [
        {"UpTo": 5, "PricePerUnit": 0, "FlatFee": 100},
        {"UpTo": 10, "PricePerUnit": 0, "FlatFee": 50},
        {"UpTo": 15, "PricePerUnit": 10},
        {"UpTo": None, "PricePerUnit": 5},
    ],
}


def _post(client: TestClient, seller: SellerKey, path: str, payload: object) -> Any:
    return client.post(
        f"/api/v1/{path}",
        content=_encoder.encode(payload),
        headers={**seller.headers, "Content-Type": "application/json"},
    )


def _exact(response: Any) -> Any:
    return json.loads(response.text, parse_float=Decimal)


def _variant(plan_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "PlanId": plan_id,
        "Name": "Monthly",
        "Currency": "EUR",
        "BillingPeriod": MONTHLY,
        **fields,
    }


def test_a_component_is_metered_unless_its_kind_says_quantity(client: TestClient) -> None:
    seller = new_seller(client)
    assert new_component(client, seller)["Kind"] == "Metered"
    seats = new_component(client, seller, "Seats", "seat", Kind="Quantity")
    assert seats["Kind"] == "Quantity"
    fetched = client.get(f"/api/v1/components/{seats['Id']}", headers=seller.headers)
    assert fetched.json()["Kind"] == "Quantity"


def test_every_section_11_field_of_a_plan_variant_is_stored_and_answered(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    calls = new_component(client, seller, "Calls", "call")
    seats = new_component(client, seller, "Seats", "seat", Kind="Quantity")
    payload = _variant(
        plan["Id"],
        RecurringFee=Decimal("50.00"),
        MeteredComponents=[
            {
                "ComponentId": calls["Id"],
                "Pricing": GRADUATED_WITH_FLAT_FEES,
                "FreeQuota": 0,
                "MaximumAmount": Decimal("170.00"),
            }
        ],
        QuantityComponents=[{"ComponentId": seats["Id"], "PricePerUnit": Decimal("4.00")}],
        MinimumCommitment=Decimal("100.00"),
        NoticePeriod=MONTHLY,
    )
    created = _post(client, seller, "planvariants", payload)
    assert created.status_code == 201, created.text
    fetched = _exact(
        client.get(f"/api/v1/planvariants/{created.json()['Id']}", headers=seller.headers)
    )
    assert fetched["MeteredComponents"] == payload["MeteredComponents"]
    assert fetched["QuantityComponents"] == payload["QuantityComponents"]
    assert fetched["MinimumCommitment"] == Decimal("100")
    assert fetched["NoticePeriod"] == MONTHLY


def test_a_tier_without_a_flat_fee_and_a_component_without_a_cap_read_as_before(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    calls = new_component(client, seller, "Calls", "call")
    metered = {
        "ComponentId": calls["Id"],
        "Pricing": {"Model": "Volume", "Tiers": [{"UpTo": None, "PricePerUnit": 1}]},
        "FreeQuota": 0,
    }
    created = _post(
        client, seller, "planvariants", _variant(plan["Id"], MeteredComponents=[metered])
    )
    assert created.status_code == 201, created.text
    assert _exact(created)["MeteredComponents"] == [metered]


def test_each_list_of_a_plan_variant_takes_components_of_its_own_kind(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    calls = new_component(client, seller, "Calls", "call")
    seats = new_component(client, seller, "Seats", "seat", Kind="Quantity")
    response = _post(
        client,
        seller,
        "planvariants",
        _variant(
            plan["Id"],
            MeteredComponents=[
                {"ComponentId": seats["Id"], "Pricing": {"Model": "PerUnit", "PricePerUnit": 1}}
            ],
            QuantityComponents=[
                {"ComponentId": calls["Id"], "PricePerUnit": 4},
                {"ComponentId": "0" * 24, "PricePerUnit": 4},
            ],
        ),
    )
    assert response.status_code == 422, response.text
    assert {(e["field"], e["code"]) for e in response.json()["errors"]} == {
        ("MeteredComponents[0].ComponentId", "wrong_kind"),
        ("QuantityComponents[0].ComponentId", "wrong_kind"),
        ("QuantityComponents[1].ComponentId", "not_found"),
    }


def test_bad_section_11_fields_are_named_together(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    calls = new_component(client, seller, "Calls", "call")
    response = _post(
        client,
        seller,
        "planvariants",
        _variant(
            plan["Id"],
            MeteredComponents=[
                {
                    "ComponentId": calls["Id"],
                    "Pricing": {
                        "Model": "Graduated",
                        "Tiers": [{"UpTo": None, "PricePerUnit": 1, "FlatFee": -1}],
                    },
                    "MaximumAmount": -5,
                }
            ],
            MinimumCommitment="lots",
            NoticePeriod={"Unit": "Fortnight", "Quantity": 1},
        ),
    )
    assert response.status_code == 422, response.text
    fields = {e["field"] for e in response.json()["errors"]}
    assert {
        "MeteredComponents[0].Pricing.Tiers[0].FlatFee",
        "MeteredComponents[0].MaximumAmount",
        "MinimumCommitment",
        "NoticePeriod.Unit",
    } <= fields


def test_a_component_a_plan_variant_prices_keeps_its_kind(client: TestClient) -> None:
    seller = new_seller(client)
    plan = new_plan(client, seller)
    calls = new_component(client, seller, "Calls", "call")
    metered = {"ComponentId": calls["Id"], "Pricing": {"Model": "PerUnit", "PricePerUnit": 1}}
    created = _post(
        client, seller, "planvariants", _variant(plan["Id"], MeteredComponents=[metered])
    )
    assert created.status_code == 201, created.text
    path = f"/api/v1/components/{calls['Id']}"
    refused = client.patch(path, json={"Kind": "Quantity"}, headers=seller.headers)
    assert refused.status_code == 409, refused.text
    renamed = client.patch(path, json={"Name": "API calls"}, headers=seller.headers)
    assert renamed.status_code == 200, renamed.text
