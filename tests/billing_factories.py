"""Factories and helpers of the billing tests: a priced contract built over HTTP, usage,
the test clock and billing runs driven through `/admin`, and invoices read exactly.

Billing tests run the app without its embedded worker (`app_without_worker`), so that
nothing bills behind their back: they move the clock with `PUT /admin/clock` and bill
with `POST /admin/billing/run`, which answers when everything due is billed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx2 import Response

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.factories import ADMIN, SellerKey
from tests.ingest_factories import encode, exact

START = "2026-01-01T00:00:00Z"
"""Where the test clock stands at first, and where contracts start unless told."""

Json = dict[str, Any]


# -- the app ------------------------------------------------------------------------------


def app_without_worker(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    """The app on `database` and `clock`, without the embedded worker: only the test
    bills, when it asks to."""
    return create_app(
        settings.model_copy(update={"embedded_worker": False}), database=database, clock=clock
    )


# -- pricing (SPEC §3) --------------------------------------------------------------------


def per_unit(price: str) -> Json:
    return {"Model": "PerUnit", "PricePerUnit": Decimal(price)}


def graduated(*tiers: tuple[str | None, str]) -> Json:
    """`graduated(("1000", "0.01"), (None, "0.005"))`: (UpTo, PricePerUnit) per tier."""
    return {"Model": "Graduated", "Tiers": _tiers(tiers)}


def volume(*tiers: tuple[str | None, str]) -> Json:
    return {"Model": "Volume", "Tiers": _tiers(tiers)}


def package(size: str, price: str) -> Json:
    return {"Model": "Package", "PackageSize": Decimal(size), "PricePerPackage": Decimal(price)}


def _tiers(tiers: tuple[tuple[str | None, str], ...]) -> list[Json]:
    return [
        {"UpTo": None if up_to is None else Decimal(up_to), "PricePerUnit": Decimal(price)}
        for up_to, price in tiers
    ]


@dataclass(frozen=True)
class Metered:
    """One metered component of a plan variant: its name, pricing and free quota."""

    name: str = "Storage"
    pricing: Json | None = None
    free_quota: str = "0"
    unit: str = "GB"


# -- sellers, contracts -------------------------------------------------------------------


def new_billing_seller(client: TestClient, name: str = "Acme", prefix: str = "INV") -> SellerKey:
    """A seller whose invoice numbers read `<prefix>-<year>-<000001>`."""
    response = client.post(
        "/admin/sellers", json={"name": name, "invoicePrefix": prefix}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return SellerKey(body["sellerId"], body["keyId"], body["apiKey"])


@dataclass(frozen=True)
class PricedContract:
    """A contract of one customer on a plan variant metering `component_ids` (in the
    order the `Metered` were given)."""

    seller: SellerKey
    customer_id: str
    plan_variant_id: str
    component_ids: tuple[str, ...]
    contract_id: str

    @property
    def headers(self) -> dict[str, str]:
        return self.seller.headers

    @property
    def component_id(self) -> str:
        return self.component_ids[0]

    @property
    def usage_path(self) -> str:
        return f"/api/v1/contracts/{self.contract_id}/usage"

    @property
    def path(self) -> str:
        return f"/api/v1/contracts/{self.contract_id}"


def new_priced_contract(
    client: TestClient,
    seller: SellerKey | None = None,
    *components: Metered,
    currency: str = "EUR",
    period: tuple[str, int] = ("Month", 1),
    recurring_fee: str | None = None,
    tax_rate: str | None = None,
    customer_tax_rate: str | None = None,
    start: str = START,
) -> PricedContract:
    """A customer, components, a plan and plan variant and a contract, over HTTP.

    Without `components` the plan variant meters one `Metered()`: Storage at 0.10 per
    GB with no free quota. A new seller is made when `seller` is None."""
    seller = seller or new_billing_seller(client)
    metered = components or (Metered(),)
    customer: Json = {"CompanyName": "Globex"}
    if customer_tax_rate is not None:
        customer["TaxRate"] = Decimal(customer_tax_rate)
    customer_id = _created(client, seller, "customers", customer)["Id"]
    component_ids = tuple(
        _created(client, seller, "components", {"Name": m.name, "Unit": m.unit})["Id"]
        for m in metered
    )
    plan_id = _created(client, seller, "plans", {"Name": "Cloud"})["Id"]
    variant: Json = {
        "PlanId": plan_id,
        "Name": "Monthly",
        "Currency": currency,
        "BillingPeriod": {"Unit": period[0], "Quantity": period[1]},
        "MeteredComponents": [
            {
                "ComponentId": id_,
                "Pricing": m.pricing or per_unit("0.10"),
                "FreeQuota": Decimal(m.free_quota),
            }
            for id_, m in zip(component_ids, metered, strict=True)
        ],
    }
    if recurring_fee is not None:
        variant["RecurringFee"] = Decimal(recurring_fee)
    if tax_rate is not None:
        variant["TaxRate"] = Decimal(tax_rate)
    variant_id = _created(client, seller, "planvariants", variant)["Id"]
    contract_id = new_contract_on(client, seller, customer_id, variant_id, start)
    return PricedContract(seller, customer_id, variant_id, component_ids, contract_id)


def new_storage_and_calls_contract(client: TestClient) -> PricedContract:
    """A new seller's contract metering storage (10 GB free, then 0.10 per GB) and API
    calls (graduated: 0.01 up to 100, then 0.005), with a recurring fee of 9.90 and 19 %
    tax: the world the end-to-end billing tests bill many contracts of."""
    return new_priced_contract(
        client,
        None,
        Metered(free_quota="10"),
        Metered("API calls", graduated(("100", "0.01"), (None, "0.005")), unit="call"),
        recurring_fee="9.90",
        tax_rate="19",
    )


def new_contract_on(
    client: TestClient, seller: SellerKey, customer_id: str, variant_id: str, start: str = START
) -> str:
    """Another contract on an existing customer and plan variant; its id."""
    payload = {"CustomerId": customer_id, "PlanVariantId": variant_id, "StartDate": start}
    contract_id: str = _created(client, seller, "contracts", payload)["Id"]
    return contract_id


def end_contract(client: TestClient, contract: PricedContract, end_date: str) -> Json:
    response = send_json(client, "POST", f"{contract.path}/end", contract, {"EndDate": end_date})
    assert response.status_code == 200, response.text
    body: Json = exact(response)
    return body


def get_contract(client: TestClient, contract: PricedContract) -> Json:
    response = client.get(contract.path, headers=contract.headers)
    assert response.status_code == 200, response.text
    body: Json = exact(response)
    return body


# -- usage --------------------------------------------------------------------------------


def post_usage(
    client: TestClient,
    contract: PricedContract,
    quantity: str,
    due: str,
    component_id: str | None = None,
    **fields: object,
) -> Json:
    """Post one usage entry (SPEC §5); the stored entry."""
    payload = {
        "DueDate": due,
        "ComponentId": component_id or contract.component_id,
        "Quantity": Decimal(quantity),
        **fields,
    }
    response = send_json(client, "POST", contract.usage_path, contract, payload)
    assert response.status_code == 201, response.text
    body: Json = exact(response)
    return body


def usage_entries(client: TestClient, contract: PricedContract, query: str = "") -> list[Json]:
    """The contract's usage entries (up to 500), e.g. with `query="billed=false"`."""
    response = client.get(f"{contract.usage_path}?take=500&{query}", headers=contract.headers)
    assert response.status_code == 200, response.text
    body: list[Json] = exact(response)
    return body


# -- clock and billing --------------------------------------------------------------------


def move_clock(client: TestClient, now: str) -> None:
    response = client.put("/admin/clock", json={"now": now}, headers=ADMIN)
    assert response.status_code == 200, response.text


def run_billing(client: TestClient) -> Json:
    """`POST /admin/billing/run`: `{"tasks", "contracts", "invoices", "failed"}`."""
    response = client.post("/admin/billing/run", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    assert body["failed"] == 0, body
    return body


def bill_at(client: TestClient, now: str) -> Json:
    """Move the clock to `now` and bill everything due; the run's counts."""
    move_clock(client, now)
    return run_billing(client)


def bill_interim_at(client: TestClient, contract: PricedContract, now: str) -> Json:
    """Move the clock to `now` and bill the contract interim; the interim invoice."""
    move_clock(client, now)
    response = client.post(f"{contract.path}/interimbilling", headers=contract.headers)
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


# -- invoices -----------------------------------------------------------------------------


def invoices_of(client: TestClient, contract: PricedContract) -> list[Json]:
    """The contract's invoices, in the order they were numbered."""
    response = client.get(
        f"/api/v1/invoices?contractId={contract.contract_id}&take=500", headers=contract.headers
    )
    assert response.status_code == 200, response.text
    body: list[Json] = exact(response)
    return sorted(body, key=lambda invoice: invoice["InvoiceNumber"])


def only_invoice(client: TestClient, contract: PricedContract) -> Json:
    invoices = invoices_of(client, contract)
    assert len(invoices) == 1, invoices
    return invoices[0]


def get_invoice_raw(client: TestClient, seller: SellerKey, invoice_id: str) -> Response:
    return client.get(f"/api/v1/invoices/{invoice_id}", headers=seller.headers)


def get_invoice(client: TestClient, seller: SellerKey, invoice_id: str) -> Json:
    response = get_invoice_raw(client, seller, invoice_id)
    assert response.status_code == 200, response.text
    body: Json = exact(response)
    return body


def usage_lines(invoice: Json) -> list[Json]:
    return [line for line in invoice["Lines"] if line["Kind"] == "Usage"]


def line_summary(line: Json) -> tuple[str, str, str, str, bool, str]:
    """(Description, Quantity, FreeQuantity, BillableQuantity, Late, Amount), numbers as
    written in the JSON text: so 3.00 is "3.00", and not "3" or "3.0"."""
    return (
        line["Description"],
        str(line["Quantity"]),
        str(line["FreeQuantity"]),
        str(line["BillableQuantity"]),
        line["Late"],
        str(line["Amount"]),
    )


def totals(invoice: Json) -> tuple[str, str, str, str]:
    """(Subtotal, TaxRate, TaxAmount, Total) as written in the JSON text."""
    return (
        str(invoice["Subtotal"]),
        str(invoice["TaxRate"]),
        str(invoice["TaxAmount"]),
        str(invoice["Total"]),
    )


def tiers(line: Json) -> list[tuple[str, str, str]]:
    """The line's tiers as (Quantity, UnitPrice, Amount) strings."""
    return [(str(t["Quantity"]), str(t["UnitPrice"]), str(t["Amount"])) for t in line["Tiers"]]


def period(invoice: Json) -> tuple[str, str]:
    return invoice["PeriodStart"], invoice["PeriodEnd"]


def billed_ids(invoice: Json) -> list[str]:
    """Every usage id the invoice's lines name, sorted."""
    return sorted(id_ for line in invoice["Lines"] for id_ in line["UsageIds"])


_NUMBER = re.compile(r"^(?P<prefix>[A-Za-z0-9]+)-(?P<year>\d{4})-(?P<sequence>\d{6})$")


def sequence_number(invoice_number: str) -> int:
    """The 6-digit sequence of `<prefix>-<year>-<000001>`, as an int."""
    match = _NUMBER.match(invoice_number)
    assert match is not None, invoice_number
    return int(match["sequence"])


# -- wire helpers -------------------------------------------------------------------------


def send_json(
    client: TestClient,
    method: str,
    path: str,
    who: SellerKey | PricedContract,
    payload: object,
) -> Response:
    """`payload` sent as exact JSON (Decimals stay exact) with the seller's key."""
    headers = {**who.headers, "Content-Type": "application/json"}
    return client.request(method, path, content=encode(payload), headers=headers)


def _created(client: TestClient, seller: SellerKey, path: str, payload: Json) -> Json:
    response = send_json(client, "POST", f"/api/v1/{path}", seller, payload)
    assert response.status_code == 201, response.text
    body: Json = exact(response)
    return body
