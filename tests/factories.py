"""Small typed factories: each makes one object over HTTP and returns what tests need."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class SellerKey:
    seller_id: str
    key_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def new_seller(client: TestClient, name: str = "Acme", currency: str = "EUR") -> SellerKey:
    response = client.post(
        "/admin/sellers",
        json={"name": name, "currency": currency, "invoicePrefix": "INV"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return SellerKey(body["sellerId"], body["keyId"], body["apiKey"])


# -- catalog and contracts (SPEC §3, §4): each returns the created object's JSON -------------

Json = dict[str, object]


def _created(client: TestClient, seller: SellerKey, path: str, payload: Json) -> Json:
    response = client.post(f"/api/v1/{path}", json=payload, headers=seller.headers)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


def new_customer(client: TestClient, seller: SellerKey, **fields: object) -> Json:
    """A customer; `fields` are wire fields, e.g. `CompanyName="Globex"`."""
    return _created(client, seller, "customers", {"CompanyName": "Globex", **fields})


def new_component(
    client: TestClient, seller: SellerKey, name: str = "Storage", unit: str = "GB", **fields: object
) -> Json:
    return _created(client, seller, "components", {"Name": name, "Unit": unit, **fields})


def new_plan(client: TestClient, seller: SellerKey, name: str = "Cloud") -> Json:
    return _created(client, seller, "plans", {"Name": name})


def new_plan_variant(
    client: TestClient,
    seller: SellerKey,
    plan_id: str,
    component_ids: tuple[str, ...] | list[str] = (),
    *,
    period: tuple[str, int] = ("Month", 1),
    currency: str = "EUR",
    **fields: object,
) -> Json:
    """A plan variant charging each component 0.10 per unit (unless `MeteredComponents`
    is among `fields`)."""
    payload: Json = {
        "PlanId": plan_id,
        "Name": "Monthly",
        "Currency": currency,
        "BillingPeriod": {"Unit": period[0], "Quantity": period[1]},
        "MeteredComponents": [
            {"ComponentId": id_, "Pricing": {"Model": "PerUnit", "PricePerUnit": 0.1}}
            for id_ in component_ids
        ],
        **fields,
    }
    return _created(client, seller, "planvariants", payload)


def new_contract(
    client: TestClient,
    seller: SellerKey,
    customer_id: str,
    plan_variant_id: str,
    start_date: str = "2026-01-01T00:00:00Z",
) -> Json:
    payload = {"CustomerId": customer_id, "PlanVariantId": plan_variant_id, "StartDate": start_date}
    return _created(client, seller, "contracts", payload)
