"""Factories and helpers of the ingestion tests: a seller with a priced catalog and
contracts, consumption records, exact JSON, and polling a bulk task until it ends."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
from fastapi.testclient import TestClient
from httpx2 import Response

from arrears.domain.clock import TestClock
from arrears.domain.ids import new_id
from arrears.services import sellers
from arrears.store.database import Database
from arrears.store.tasks import TaskRepository
from arrears.store.unit_of_work import RegistryWork
from tests.factories import SellerKey, new_seller

START = "2026-01-01T00:00:00Z"
"""Every contract of these factories starts here, where the test clock stands."""

Json = dict[str, Any]

PER_UNIT = {"Model": "PerUnit", "PricePerUnit": Decimal("0.10")}

_encoder = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True)
class MeteredSeller:
    """A seller whose plan variant meters `component_ids` (item codes `item_codes`) at
    0.10 per unit, with `contract_ids` of one customer on it. `unmetered_component_id`
    is in the seller's catalog but not on the plan variant."""

    seller: SellerKey
    customer_id: str
    plan_variant_id: str
    component_ids: tuple[str, ...]
    item_codes: tuple[str, ...]
    unmetered_component_id: str
    contract_ids: tuple[str, ...]

    @property
    def headers(self) -> dict[str, str]:
        return self.seller.headers

    @property
    def seller_id(self) -> str:
        return self.seller.seller_id

    @property
    def contract_id(self) -> str:
        return self.contract_ids[0]

    @property
    def component_id(self) -> str:
        return self.component_ids[0]

    @property
    def bulk_path(self) -> str:
        return bulk_path(self.seller_id)

    @property
    def consumptions_path(self) -> str:
        return f"/api/sellers/{self.seller_id}/services/consumptions"

    def usage_path(self, contract_id: str | None = None) -> str:
        return f"/api/v1/contracts/{contract_id or self.contract_id}/usage"


def bulk_path(seller_id: str) -> str:
    return f"/api/sellers/{seller_id}/services/bulkconsumptions"


def _created(client: TestClient, seller: SellerKey, path: str, payload: Json) -> Json:
    response = client.post(f"/api/v1/{path}", content=encode(payload), headers=_json(seller))
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


def new_metered_seller(
    client: TestClient,
    *,
    name: str = "Acme",
    contracts: int = 1,
    components: int = 2,
    start_date: str = START,
) -> MeteredSeller:
    """A seller with a priced catalog and `contracts` contracts, built over HTTP."""
    seller = new_seller(client, name)
    customer = _created(client, seller, "customers", {"CompanyName": f"{name} customer"})
    item_codes = tuple(f"ITEM-{n}" for n in range(components))
    component_ids = tuple(
        _created(
            client,
            seller,
            "components",
            {"Name": f"Metered {n}", "Unit": "GB", "ItemCode": item_codes[n]},
        )["Id"]
        for n in range(components)
    )
    unmetered = _created(client, seller, "components", {"Name": "Unmetered", "Unit": "h"})
    plan = _created(client, seller, "plans", {"Name": "Cloud"})
    variant = _created(
        client,
        seller,
        "planvariants",
        {
            "PlanId": plan["Id"],
            "Name": "Monthly",
            "Currency": "EUR",
            "BillingPeriod": {"Unit": "Month", "Quantity": 1},
            "MeteredComponents": [
                {"ComponentId": id_, "Pricing": PER_UNIT} for id_ in component_ids
            ],
        },
    )
    contract_ids = tuple(
        _created(
            client,
            seller,
            "contracts",
            {"CustomerId": customer["Id"], "PlanVariantId": variant["Id"], "StartDate": start_date},
        )["Id"]
        for _ in range(contracts)
    )
    return MeteredSeller(
        seller=seller,
        customer_id=customer["Id"],
        plan_variant_id=variant["Id"],
        component_ids=component_ids,
        item_codes=item_codes,
        unmetered_component_id=unmetered["Id"],
        contract_ids=contract_ids,
    )


def new_customer_contract(client: TestClient, metered: MeteredSeller, name: str) -> tuple[str, str]:
    """Another customer of `metered`'s seller with one contract: (customer id, contract id)."""
    customer = _created(client, metered.seller, "customers", {"CompanyName": name})
    payload = {"CustomerId": customer["Id"], "PlanVariantId": metered.plan_variant_id}
    contract = _created(client, metered.seller, "contracts", {**payload, "StartDate": START})
    return customer["Id"], contract["Id"]


# -- wire payloads ------------------------------------------------------------------------


def record(subscription_id: str, product_id: str, quantity: object = 1, **fields: object) -> Json:
    """One record of the seller consumption API; `fields` adds or replaces wire fields."""
    return {
        "subscriptionId": subscription_id,
        "productId": product_id,
        "quantity": quantity,
        "dueDate": "2026-01-15T00:00:00Z",
        **fields,
    }


def usage(component_id: str, quantity: object = 5, **fields: object) -> Json:
    """One metered usage post of the contract usage API."""
    return {
        "DueDate": "2026-01-15T00:00:00Z",
        "ComponentId": component_id,
        "Quantity": quantity,
        **fields,
    }


def encode(payload: object) -> bytes:
    """JSON with every Decimal written as the exact number it holds (0.10 stays 0.10)."""
    return _encoder.encode(payload)


def exact(response: Response) -> Any:
    """A response body with every fractional number read as Decimal, never as a float."""
    return json.loads(response.text, parse_float=Decimal)


def _json(seller: SellerKey) -> dict[str, str]:
    return {**seller.headers, "Content-Type": "application/json"}


def send(
    client: TestClient,
    method: str,
    path: str,
    seller: SellerKey | MeteredSeller,
    payload: object,
    **headers: str,
) -> Response:
    """`payload` (encoded exactly, or raw bytes/str as given) sent with `seller`'s key."""
    key = seller.seller if isinstance(seller, MeteredSeller) else seller
    content = payload if isinstance(payload, bytes | str) else encode(payload)
    return client.request(method, path, content=content, headers={**_json(key), **headers})


def problem(response: Response, status: int) -> Json:
    """The problem+json body of an error answer with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: Json = response.json()
    assert body["status"] == status
    return body


def total_count(client: TestClient, metered: MeteredSeller, contract_id: str | None = None) -> int:
    """How many usage entries a contract has (`X-Total-Count` of its usage listing)."""
    response = client.get(metered.usage_path(contract_id), headers=metered.headers)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


# -- bulk tasks ---------------------------------------------------------------------------


def submit_bulk(
    client: TestClient, metered: MeteredSeller, records: list[Any], **headers: str
) -> str:
    """Submit `records` as a bulk task; the task's `Location`."""
    body = {"consumptions": records}
    response = send(client, "POST", metered.bulk_path, metered, body, **headers)
    assert response.status_code == 202, response.text
    location: str = response.headers["Location"]
    return location


def wait_for_task(
    client: TestClient, location: str, headers: dict[str, str], timeout: float = 30.0
) -> Json:
    """Poll a bulk task until it is no longer Processing; its final body."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        body: Json = response.json()
        if body["message"] != "Processing":
            return body
        assert time.monotonic() < deadline, f"task still Processing after {timeout} s: {body}"
        time.sleep(0.02)


def run_bulk(client: TestClient, metered: MeteredSeller, records: list[Any]) -> Json:
    """Submit `records` and wait for the task's outcome."""
    return wait_for_task(client, submit_bulk(client, metered, records), metered.headers)


# -- tasks ----------------------------------------------------------------------------------


def seller_with_waiting_task(database: Database, clock: TestClock) -> str:
    """A seller with one waiting task (of no records); the task's id."""
    task_id = new_id()
    with database.write() as session:
        seller = sellers.create_seller(
            RegistryWork(session), clock, name="Acme", currency_code="EUR", invoice_prefix="INV"
        )
        TaskRepository(session, seller.seller_id).add(
            task_id=task_id,
            body=b'{"consumptions": []}',
            body_sha256="0" * 64,
            idempotency_key=None,
            total_records=0,
            created_at=clock.now(),
        )
    return task_id


# -- known bugs ---------------------------------------------------------------------------
