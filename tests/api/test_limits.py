"""Limits that hold end to end (`domain.limits`, docs/api-conventions.md "Limits").

Every value inside the limits is accepted and billed to the cent on both billing roads:
the scheduler's batch road (a regular invoice) and the per-contract road (interim,
final and preview). Values outside them are refused at the door with 422. Each
expected amount is computed by hand in its comment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact, localcontext
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from arrears.config import Settings
from arrears.domain.catalog import MeteredComponent
from arrears.domain.clock import TestClock
from arrears.domain.invoices import InvoiceDraft, InvoiceKind, draft_invoice
from arrears.domain.money import currency
from arrears.domain.pricing import Pricing, pricing_to_json
from arrears.domain.rating import PeriodCharges, rate_usage
from arrears.domain.usage import UsageEntry
from arrears.store.database import Database
from tests.billing_factories import (
    START,
    Json,
    Metered,
    PricedContract,
    app_without_worker,
    end_contract,
    get_invoice,
    graduated,
    invoices_of,
    move_clock,
    new_contract_on,
    new_priced_contract,
    package,
    per_unit,
    post_usage,
    run_billing,
    send_json,
    totals,
)
from tests.factories import ADMIN
from tests.ingest_factories import exact
from tests.limit_values import accepted, pricings, tax_rates

MOST = "999999999999.999999"
"""The largest quantity or price the service accepts: below 10^12, 6 places."""
WIDE = Context(prec=200, traps=[Inexact])
"""The tests' own sums: the default 28 digits would round them."""


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


@dataclass(frozen=True)
class Case:
    """A plan variant's component, the usage posted, and the invoice it must make."""

    metered: Metered
    quantities: tuple[str, ...]
    line: tuple[str, str]
    """The usage line's (Quantity, Amount), as written in the JSON."""
    totals: tuple[str, str, str, str]
    """(Subtotal, TaxRate, TaxAmount, Total), as written in the JSON."""
    tax_rate: str = "0"
    usage: dict[str, Any] = field(default_factory=dict)


CASES = {
    # (10^12 - 10^-6)^2 = 10^24 - 2 x 10^6 + 10^-12; 19 % of the rounded line is
    # 189999999999999999620000.00, the total their sum.
    "a per-unit price of 999999999999.999999 x 999999999999.999999": Case(
        Metered(pricing=per_unit(MOST)),
        (MOST,),
        (MOST, "999999999999999998000000.00"),
        (
            "999999999999999998000000.00",
            "19",
            "189999999999999999620000.00",
            "1189999999999999997620000.00",
        ),
        tax_rate="19",
    ),
    # 99999999999 / 0.000001 = 99999999999000000 packages at (10^12 - 10^-6):
    # 99999999999 x 10^24 - 99999999999 = 99999999998999999900000000001.
    "packages of 0.000001 for 99999999999 units at 999999999999.999999": Case(
        Metered(pricing=package("0.000001", MOST)),
        ("99999999999",),
        ("99999999999", "99999999998999999900000000001.00"),
        (
            "99999999998999999900000000001.00",
            "0",
            "0.00",
            "99999999998999999900000000001.00",
        ),
    ),
    # Tier 1: 999999999999 x 999999999999 = 999999999998000000000001; tier 2: the last
    # 0.999999 x 999999999999.999999 = 999998999999.999999000001; together
    # 999999999998999999000000.999999000001, rounded half up to ...001.00.
    "a graduated tier of 999999999999 units at 999999999999": Case(
        Metered(pricing=graduated(("999999999999", "999999999999"), (None, MOST))),
        (MOST,),
        (MOST, "999999999998999999000001.00"),
        (
            "999999999998999999000001.00",
            "0",
            "0.00",
            "999999999998999999000001.00",
        ),
    ),
    # 999999999999 x 999999999999 = 10^24 - 2 x 10^12 + 1.
    "an override price of 999999999999 x 999999999999": Case(
        Metered(),
        ("999999999999",),
        ("999999999999", "999999999998000000000001.00"),
        (
            "999999999998000000000001.00",
            "0",
            "0.00",
            "999999999998000000000001.00",
        ),
        usage={"ProductOverride": {"PricePerUnit": Decimal("999999999999")}},
    ),
    # 11 x 999999999999.999999 = 10999999999999.999989 (past SQLite's 64 bits when
    # scaled by 10^6), at 0.01: 109999999999.99999989, rounded 110000000000.00.
    "11 entries of 999999999999.999999 at 0.01": Case(
        Metered(pricing=per_unit("0.01")),
        (MOST,) * 11,
        ("10999999999999.999989", "110000000000.00"),
        ("110000000000.00", "0", "0.00", "110000000000.00"),
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_usage_inside_the_limits_is_billed_to_the_cent_on_every_billing_road(
    client: TestClient, case: Case
) -> None:
    interim = new_priced_contract(client, None, case.metered, tax_rate=case.tax_rate)
    regular = _another(client, interim)
    final = _another(client, interim)
    for contract in (interim, regular, final):
        for quantity in case.quantities:
            post_usage(client, contract, quantity, "2026-01-15T00:00:00Z", **case.usage)
    move_clock(client, "2026-01-20T00:00:00Z")

    preview = _get(client, f"{regular.path}/preview", regular)
    interim_invoice = _post(client, f"{interim.path}/interimbilling", interim, 201)
    end_contract(client, final, "2026-01-25T00:00:00Z")
    move_clock(client, "2026-02-01T00:00:00Z")
    assert run_billing(client)["failed"] == 0
    [regular_invoice] = invoices_of(client, regular)
    [final_invoice] = invoices_of(client, final)

    for invoice, kind in (
        (preview, "Regular"),
        (interim_invoice, "Interim"),
        (regular_invoice, "Regular"),
        (final_invoice, "Final"),
    ):
        assert invoice["Kind"] == kind
        assert _usage_line(invoice) == case.line
        assert totals(invoice) == case.totals
    # Read back from storage, as issued.
    stored = get_invoice(client, interim.seller, interim_invoice["Id"])
    assert (_usage_line(stored), totals(stored)) == (case.line, case.totals)


def test_the_consumption_report_sums_11_entries_of_999999999999_999999_exactly(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    for _ in range(11):
        post_usage(client, contract, MOST, "2026-01-15T00:00:00Z")

    response = send_json(
        client,
        "POST",
        f"/api/sellers/{contract.seller.seller_id}/services/consumptions",
        contract,
        {"subscriptionIds": [contract.contract_id]},
    )

    assert response.status_code == 200, response.text
    [subscription] = exact(response)["subscriptions"]
    [product] = subscription["products"]
    # 11 x 999999999999.999999
    assert str(product["unbilledQuantity"]) == "10999999999999.999989"


def test_a_rated_item_of_999999999999_999999_x_999999999999_999999_is_billed_to_the_cent(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    move_clock(client, "2026-01-10T00:00:00Z")
    item = {"Description": "Setup", "Quantity": Decimal(MOST), "PricePerUnit": Decimal(MOST)}
    order = {
        "ContractId": contract.contract_id,
        "Cart": {"MeteredUsages": [], "RatedItems": [item]},
        "TriggerInterimBilling": True,
    }

    preview = _post(client, "/api/v1/orders/preview", contract, 200, order)
    placed = _post(client, "/api/v1/orders", contract, 201, order)
    # The same item without interim billing: on the next regular invoice (batch road).
    _post(client, "/api/v1/orders", contract, 201, {**order, "TriggerInterimBilling": False})
    move_clock(client, "2026-02-01T00:00:00Z")
    run_billing(client)

    interim, regular = invoices_of(client, contract)
    assert (interim["Id"], regular["Kind"]) == (placed["InvoiceId"], "Regular")
    # (10^12 - 10^-6)^2 = 999999999999999998000000.000000000001
    for billed in (preview, interim, regular):
        assert [(line["Kind"], str(line["Amount"])) for line in billed["Lines"]] == [
            ("RatedItem", "999999999999999998000000.00")
        ]
        assert totals(billed)[3] == "999999999999999998000000.00"


# -- anything accepted --------------------------------------------------------------------


@hypothesis_settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    pricing=pricings,
    free_quota=accepted,
    quantities=st.lists(accepted, min_size=1, max_size=12),
    tax_rate=tax_rates,
    code=st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_anything_accepted_is_stored_and_billed_as_the_domain_rates_it_on_both_roads(
    client: TestClient,
    *,
    pricing: Pricing,
    free_quota: Decimal,
    quantities: list[Decimal],
    tax_rate: Decimal,
    code: str,
) -> None:
    now = client.get("/admin/clock", headers=ADMIN).json()["now"]
    metered = Metered(pricing=pricing_to_json(pricing), free_quota=str(free_quota))
    regular = new_priced_contract(
        client, None, metered, currency=code, tax_rate=str(tax_rate), start=now
    )
    interim = _another(client, regular, start=now)
    for contract in (regular, interim):
        for quantity in quantities:
            post_usage(client, contract, str(quantity), now)

    interim_invoice = _post(client, f"{interim.path}/interimbilling", interim, 201)
    move_clock(client, _a_month_after(now))
    run_billing(client)
    [regular_invoice] = invoices_of(client, regular)

    expected = _rated(pricing, free_quota, quantities, tax_rate, code)
    for invoice in (interim_invoice, regular_invoice):
        with localcontext(WIDE):
            assert invoice["Total"] == invoice["Subtotal"] + invoice["TaxAmount"]
            assert invoice["Subtotal"] == sum(line["Amount"] for line in invoice["Lines"])
        assert [line["Amount"] for line in invoice["Lines"]] == [
            line.amount for line in expected.lines
        ]
        assert (invoice["Subtotal"], invoice["TaxAmount"], invoice["Total"]) == (
            expected.subtotal,
            expected.tax_amount,
            expected.total,
        )


def _rated(
    pricing: Pricing, free_quota: Decimal, quantities: list[Decimal], tax_rate: Decimal, code: str
) -> InvoiceDraft:
    """The invoice the pure domain makes of the usage: what storage must give back."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    money = currency(code)
    entries = [
        UsageEntry(id_, "c", "storage", quantity, start, start)
        for id_, quantity in enumerate(quantities)
    ]
    lines = rate_usage(
        components=[MeteredComponent("storage", pricing, free_quota)],
        currency=money,
        period_start=start,
        period_end=start,
        earlier=PeriodCharges(),
        entries=entries,
    )
    return draft_invoice(
        kind=InvoiceKind.REGULAR,
        currency=money,
        period_start=start,
        period_end=start,
        lines=lines,
        tax_rate=tax_rate,
    )


def _a_month_after(instant: str) -> str:
    moved = datetime.fromisoformat(instant) + timedelta(days=31)
    return moved.isoformat().replace("+00:00", "Z")


# -- dates --------------------------------------------------------------------------------


def test_a_1000_year_period_started_in_7999_previews_and_bills_until_the_clocks_last_instant(
    client: TestClient,
) -> None:
    contract = new_priced_contract(
        client, None, period=("Year", 1000), start="7999-01-01T00:00:00Z", recurring_fee="1"
    )
    post_usage(client, contract, "10", "7999-06-01T00:00:00Z")
    move_clock(client, "7999-12-31T23:59:59.999999Z")

    preview = _get(client, f"{contract.path}/preview", contract)
    interim = _post(client, f"{contract.path}/interimbilling", contract, 201)
    assert run_billing(client)["invoices"] == 0  # its first period ends in 8999

    assert (preview["PeriodStart"], preview["PeriodEnd"]) == (
        "7999-01-01T00:00:00Z",
        "8999-01-01T00:00:00Z",
    )
    assert totals(preview)[0] == "2.00"  # 10 x 0.10 + the fee of 1.00
    assert totals(interim)[0] == "1.00"
    end_contract(client, contract, "7999-12-31T23:59:59.999999Z")
    assert run_billing(client)["invoices"] == 1
    assert [invoice["Kind"] for invoice in invoices_of(client, contract)] == ["Interim", "Final"]


def test_a_1000_year_period_started_in_1900_is_billed_6_times_by_7999(
    client: TestClient,
) -> None:
    contract = new_priced_contract(
        client, None, period=("Year", 1000), start="1900-01-01T00:00:00Z"
    )
    move_clock(client, "7999-12-31T23:59:59.999999Z")

    assert run_billing(client)["invoices"] == 6  # periods ending 2900, 3900, ... 7900
    preview = _get(client, f"{contract.path}/preview", contract)
    assert (preview["PeriodStart"], preview["PeriodEnd"]) == (
        "7900-01-01T00:00:00Z",
        "8900-01-01T00:00:00Z",
    )


@pytest.mark.parametrize("now", ["8000-01-01T00:00:00Z", "9999-12-31T00:00:00Z"])
def test_the_test_clock_refuses_an_instant_from_8000_on_with_422(
    client: TestClient, now: str
) -> None:
    response = client.put("/admin/clock", json={"now": now}, headers=ADMIN)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "now"
    assert "1900 and 7999" in error["message"]
    assert client.get("/admin/clock", headers=ADMIN).json()["now"] == "2026-01-01T00:00:00Z"


def test_a_contract_starting_in_8000_is_refused_with_422_naming_start_date(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    payload = {
        "CustomerId": contract.customer_id,
        "PlanVariantId": contract.plan_variant_id,
        "StartDate": "8000-01-01T00:00:00Z",
    }

    response = send_json(client, "POST", "/api/v1/contracts", contract, payload)

    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["StartDate"]


def test_a_billing_period_of_1001_years_is_refused_with_422_naming_its_quantity(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    plan_id = _get(client, f"/api/v1/planvariants/{contract.plan_variant_id}", contract)["PlanId"]
    variant = {
        "PlanId": plan_id,
        "Name": "Millennial",
        "Currency": "EUR",
        "BillingPeriod": {"Unit": "Year", "Quantity": 1001},
        "MeteredComponents": [],
    }

    response = send_json(client, "POST", "/api/v1/planvariants", contract, variant)

    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("BillingPeriod.Quantity", "too_large")
    assert "1000" in error["message"]


# -- helpers ------------------------------------------------------------------------------


def _another(client: TestClient, contract: PricedContract, start: str = START) -> PricedContract:
    """Another contract of the same customer on the same plan variant."""
    contract_id = new_contract_on(
        client, contract.seller, contract.customer_id, contract.plan_variant_id, start
    )
    return PricedContract(
        contract.seller,
        contract.customer_id,
        contract.plan_variant_id,
        contract.component_ids,
        contract_id,
    )


def _usage_line(invoice: Json) -> tuple[str, str]:
    [line] = [line for line in invoice["Lines"] if line["Kind"] == "Usage"]
    return str(line["Quantity"]), str(line["Amount"])


def _get(client: TestClient, path: str, contract: PricedContract) -> Json:
    response = client.get(path, headers=contract.headers)
    assert response.status_code == 200, response.text
    body: Json = exact(response)
    return body


def _post(
    client: TestClient, path: str, contract: PricedContract, status: int, payload: object = None
) -> Json:
    response = send_json(client, "POST", path, contract, payload or {})
    assert response.status_code == status, response.text
    body: Json = exact(response)
    return body
