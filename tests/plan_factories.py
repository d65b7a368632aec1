"""Factories of the SPEC §11 tests: plan variants with flat fees, caps, commitments,
quantity components and notice periods; orders that change plans, set quantities and
give discounts; all over HTTP (see `billing_factories` for the app and the clock)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

from tests.billing_factories import (
    START,
    Json,
    Metered,
    PricedContract,
    new_billing_seller,
    new_contract_on,
    per_unit,
    send_json,
)
from tests.factories import SellerKey
from tests.ingest_factories import exact

MONTHLY = {"Unit": "Month", "Quantity": 1}
_DECIMAL_FIELDS = frozenset({"RecurringFee", "MinimumCommitment", "TaxRate"})


@dataclass(frozen=True)
class Catalog:
    """A seller's customer, plan and components: what plan variants are built from."""

    seller: SellerKey
    customer_id: str
    plan_id: str
    metered_ids: tuple[str, ...]
    quantity_ids: tuple[str, ...]


def new_catalog(client: TestClient, *metered: str, quantities: tuple[str, ...] = ()) -> Catalog:
    """A new seller with a customer, a plan, a metered component per name in `metered`
    (unit GB) and a quantity component per name in `quantities` (unit seat)."""
    seller = new_billing_seller(client)
    customer_id = _created(client, seller, "customers", {"CompanyName": "Globex"})["Id"]
    plan_id = _created(client, seller, "plans", {"Name": "Cloud"})["Id"]
    metered_ids = tuple(
        _created(client, seller, "components", {"Name": name, "Unit": "GB"})["Id"]
        for name in metered
    )
    quantity_ids = tuple(
        _created(client, seller, "components", {"Name": name, "Unit": "seat", "Kind": "Quantity"})[
            "Id"
        ]
        for name in quantities
    )
    return Catalog(seller, customer_id, plan_id, metered_ids, quantity_ids)


def new_variant(
    client: TestClient,
    catalog: Catalog,
    *metered: Metered,
    name: str = "Monthly",
    maximum_amounts: tuple[str | None, ...] = (),
    quantity_prices: tuple[str, ...] = (),
    **fields: Any,
) -> str:
    """A plan variant of `catalog` in EUR, monthly: the i-th `metered` prices the i-th
    metered component (capped by the i-th of `maximum_amounts`), the i-th of
    `quantity_prices` the i-th quantity component; `fields` are further wire fields
    (`RecurringFee="30.00"`, `MinimumCommitment=...`, `NoticePeriod=...`)."""
    components: list[Json] = []
    for index, (id_, m) in enumerate(zip(catalog.metered_ids, metered, strict=False)):
        component: Json = {
            "ComponentId": id_,
            "Pricing": m.pricing or per_unit("0.10"),
            "FreeQuota": Decimal(m.free_quota),
        }
        cap = maximum_amounts[index] if index < len(maximum_amounts) else None
        if cap is not None:
            component["MaximumAmount"] = Decimal(cap)
        components.append(component)
    payload: Json = {
        "PlanId": catalog.plan_id,
        "Name": name,
        "Currency": "EUR",
        "BillingPeriod": MONTHLY,
        "MeteredComponents": components,
        "QuantityComponents": [
            {"ComponentId": id_, "PricePerUnit": Decimal(price)}
            for id_, price in zip(catalog.quantity_ids, quantity_prices, strict=False)
        ],
        **{k: Decimal(v) if k in _DECIMAL_FIELDS else v for k, v in fields.items()},
    }
    variant_id: str = _created(client, catalog.seller, "planvariants", payload)["Id"]
    return variant_id


def new_contract(
    client: TestClient, catalog: Catalog, variant_id: str, start: str = START
) -> PricedContract:
    contract_id = new_contract_on(client, catalog.seller, catalog.customer_id, variant_id, start)
    return PricedContract(
        catalog.seller, catalog.customer_id, variant_id, catalog.metered_ids, contract_id
    )


def place_order(client: TestClient, contract: PricedContract, cart: Json, **fields: Any) -> Any:
    """`POST /api/v1/orders` with `cart` and further wire fields (`ChangeDate`); the
    response."""
    body = {"ContractId": contract.contract_id, "Cart": cart, **fields}
    return send_json(client, "POST", "/api/v1/orders", contract, body)


def ordered(client: TestClient, contract: PricedContract, cart: Json, **fields: Any) -> Json:
    response = place_order(client, contract, cart, **fields)
    assert response.status_code == 201, response.text
    body: Json = exact(response)
    return body


def lines_of_kind(invoice: Json, kind: str) -> list[tuple[str, str]]:
    """The (description, amount) of each of the invoice's lines of `kind`."""
    return [
        (line["Description"], f"{line['Amount']}")
        for line in invoice["Lines"]
        if line["Kind"] == kind
    ]


def amounts(invoice: Json, kind: str) -> list[str]:
    """The amounts of the invoice's lines of `kind`, as written (20.00)."""
    return [amount for _, amount in lines_of_kind(invoice, kind)]


def _created(client: TestClient, seller: SellerKey, path: str, payload: Json) -> Json:
    response = send_json(client, "POST", f"/api/v1/{path}", seller, payload)
    assert response.status_code == 201, response.text
    body: Json = exact(response)
    return body
