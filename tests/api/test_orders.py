"""SPEC §7 "Orders": metered usages and one-off rated items added to a contract all or
nothing, billed at once on an interim invoice when `TriggerInterimBilling` is set, and
previewed without saving anything."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    PricedContract,
    app_without_worker,
    bill_at,
    billed_ids,
    end_contract,
    get_invoice,
    invoices_of,
    line_summary,
    move_clock,
    new_priced_contract,
    only_invoice,
    period,
    post_usage,
    send_json,
    totals,
    usage_entries,
)
from tests.ingest_factories import exact, problem

ORDERS = "/api/v1/orders"
SETUP = {"Description": "Setup", "Quantity": 1, "PricePerUnit": Decimal("49.00")}


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _order(
    contract: PricedContract,
    usages: list[dict[str, Any]] | None = None,
    items: list[dict[str, Any]] | None = None,
    *,
    trigger: bool = False,
    **cart: object,
) -> dict[str, Any]:
    return {
        "ContractId": contract.contract_id,
        "Cart": {"MeteredUsages": usages or [], "RatedItems": items or [], **cart},
        "TriggerInterimBilling": trigger,
    }


def _usage(contract: PricedContract, quantity: str = "5", **fields: object) -> dict[str, Any]:
    return {"ComponentId": contract.component_id, "Quantity": Decimal(quantity), **fields}


def _place(client: TestClient, contract: PricedContract, body: dict[str, Any]) -> Response:
    return send_json(client, "POST", ORDERS, contract, body)


def _placed(client: TestClient, contract: PricedContract, body: dict[str, Any]) -> Any:
    response = _place(client, contract, body)
    assert response.status_code == 201, response.text
    return exact(response)


def _fields(response: Response) -> list[str]:
    return sorted(error["field"] for error in problem(response, 422)["errors"])


# -- placing orders -----------------------------------------------------------------------


def test_an_order_with_trigger_interim_billing_answers_201_with_its_usage_and_the_invoice(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    move_clock(client, "2026-01-10T00:00:00Z")
    body = _order(contract, [_usage(contract, "5", Key="vm-1")], [SETUP], trigger=True)
    order = _placed(client, contract, body)

    assert isinstance(order["Id"], str)
    assert order["Id"]
    assert (order["ContractId"], order["CreatedAt"]) == (
        contract.contract_id,
        "2026-01-10T00:00:00Z",
    )
    [entry] = order["MeteredUsages"]
    assert (entry["ComponentId"], entry["Quantity"], entry["Key"]) == (
        contract.component_id,
        5,
        "vm-1",
    )
    assert entry["InvoiceId"] == order["InvoiceId"] is not None
    invoice = get_invoice(client, contract.seller, order["InvoiceId"])
    assert invoice["Kind"] == "Interim"
    assert [(line["Kind"], *line_summary(line)) for line in invoice["Lines"]] == [
        ("Usage", "Storage", "5", "0", "5", False, "0.50"),
        ("RatedItem", "Setup", "1", "0", "1", False, "49.00"),
    ]
    assert billed_ids(invoice) == [entry["Id"]]
    assert totals(invoice) == ("49.50", "0", "0.00", "49.50")


def test_the_interim_invoice_of_an_order_bills_all_usage_due_by_now_not_only_the_orders(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    earlier = post_usage(client, contract, "10", "2026-01-05T00:00:00Z")
    not_yet_due = post_usage(client, contract, "20", "2026-01-20T00:00:00Z")
    move_clock(client, "2026-01-10T00:00:00Z")
    order = _placed(client, contract, _order(contract, [_usage(contract, "5")], trigger=True))

    invoice = get_invoice(client, contract.seller, order["InvoiceId"])
    [ordered] = order["MeteredUsages"]
    assert billed_ids(invoice) == sorted([earlier["Id"], ordered["Id"]])
    assert [line_summary(line) for line in invoice["Lines"]] == [
        ("Storage", "15", "0", "15", False, "1.50")
    ]
    unbilled = usage_entries(client, contract, "billed=false")
    assert [entry["Id"] for entry in unbilled] == [not_yet_due["Id"]]


def test_without_trigger_interim_billing_the_49_00_setup_is_billed_on_the_next_regular_invoice(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    move_clock(client, "2026-01-10T00:00:00Z")
    order = _placed(client, contract, _order(contract, [_usage(contract, "5")], [SETUP]))
    assert order["InvoiceId"] is None
    assert [entry["InvoiceId"] for entry in order["MeteredUsages"]] == [None]
    assert invoices_of(client, contract) == []

    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)
    assert invoice["Kind"] == "Regular"
    assert [(line["Kind"], *line_summary(line)) for line in invoice["Lines"]] == [
        ("Usage", "Storage", "5", "0", "5", False, "0.50"),
        ("RatedItem", "Setup", "1", "0", "1", False, "49.00"),
    ]


def test_an_ordered_usage_without_due_date_is_due_at_the_time_of_the_order(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    move_clock(client, "2026-01-10T08:30:00Z")
    order = _placed(client, contract, _order(contract, [_usage(contract)]))

    assert [entry["DueDate"] for entry in order["MeteredUsages"]] == ["2026-01-10T08:30:00Z"]


def test_an_order_placed_after_next_billing_date_bills_the_due_regular_invoice_first(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    january = post_usage(client, contract, "10", "2026-01-10T00:00:00Z")
    move_clock(client, "2026-02-05T00:00:00Z")  # January is due, but nobody billed it yet
    order = _placed(client, contract, _order(contract, [_usage(contract)], trigger=True))

    regular, interim = invoices_of(client, contract)
    assert (regular["Kind"], regular["InvoiceNumber"]) == ("Regular", "INV-2026-000001")
    assert billed_ids(regular) == [january["Id"]]
    assert (interim["Kind"], interim["InvoiceNumber"]) == ("Interim", "INV-2026-000002")
    assert interim["Id"] == order["InvoiceId"]
    assert period(interim) == ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z")


def test_an_order_on_a_contract_with_its_final_invoice_answers_409(client: TestClient) -> None:
    contract = new_priced_contract(client)
    end_contract(client, contract, "2026-01-20T00:00:00Z")
    bill_at(client, "2026-01-20T00:00:00Z")

    response = _place(client, contract, _order(contract, [_usage(contract)], [SETUP]))
    problem(response, 409)
    assert usage_entries(client, contract) == []


# -- all or nothing -----------------------------------------------------------------------


def _nothing_saved(client: TestClient, contract: PricedContract) -> None:
    """No usage entry, no invoice, and no rated item: the next regular invoice is empty."""
    assert usage_entries(client, contract) == []
    assert invoices_of(client, contract) == []
    bill_at(client, "2026-02-01T00:00:00Z")
    assert only_invoice(client, contract)["Lines"] == []


def test_an_order_with_a_negative_quantity_answers_422_on_its_quantity_and_saves_nothing(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    usages = [_usage(contract, "1"), _usage(contract, "-1"), _usage(contract, "2")]
    response = _place(client, contract, _order(contract, usages, [SETUP], trigger=True))

    assert _fields(response) == ["Cart.MeteredUsages[1].Quantity"]
    _nothing_saved(client, contract)


def test_an_order_names_every_bad_usage_and_saves_nothing(client: TestClient) -> None:
    contract = new_priced_contract(client)
    usages = [
        _usage(contract, "1"),
        {"ComponentId": "0" * 24, "Quantity": 1},
        _usage(contract, "1", DueDate="2025-12-31T23:59:59Z"),  # before StartDate
    ]
    response = _place(client, contract, _order(contract, usages, [SETUP], trigger=True))

    assert _fields(response) == [
        "Cart.MeteredUsages[1].ComponentId",
        "Cart.MeteredUsages[2].DueDate",
    ]
    assert [e["index"] for e in problem(response, 422)["errors"]] == [1, 2]
    _nothing_saved(client, contract)


def test_an_order_names_a_bad_quantity_and_a_bad_component_at_once(client: TestClient) -> None:
    contract = new_priced_contract(client)
    usages = [_usage(contract, "-1"), {"ComponentId": "0" * 24, "Quantity": 1}]
    response = _place(client, contract, _order(contract, usages))

    assert _fields(response) == [
        "Cart.MeteredUsages[0].Quantity",
        "Cart.MeteredUsages[1].ComponentId",
    ]


@pytest.mark.parametrize("field", ["ComponentSubscriptions", "DiscountSubscriptions"])
def test_an_order_with_bad_component_or_discount_subscriptions_names_them_and_saves_nothing(
    client: TestClient, field: str
) -> None:
    """SPEC §11 replaced the old 422 on any subscription: a bad one is named by its
    fields (tests/api/test_plan_orders.py has the good ones)."""
    contract = new_priced_contract(client)
    body = _order(contract, [_usage(contract)], trigger=True, **{field: [{"Id": "x"}]})
    response = _place(client, contract, body)

    assert _fields(response)
    assert all(name.startswith(f"Cart.{field}[0]") for name in _fields(response))
    _nothing_saved(client, contract)


def test_an_order_on_an_unknown_or_foreign_contract_answers_422_on_contract_id(
    client: TestClient,
) -> None:
    ours = new_priced_contract(client)
    theirs = new_priced_contract(client)  # another seller's
    for contract_id in ("0" * 24, theirs.contract_id):
        for trigger in (False, True):
            body = {**_order(ours, [_usage(ours)], trigger=trigger), "ContractId": contract_id}
            assert _fields(_place(client, ours, body)) == ["ContractId"]
    assert usage_entries(client, theirs) == []


# -- previews -----------------------------------------------------------------------------


def test_an_order_preview_answers_the_invoice_it_would_produce_and_saves_nothing(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    move_clock(client, "2026-01-10T00:00:00Z")
    body = _order(contract, [_usage(contract, "5")], [SETUP])
    response = send_json(client, "POST", f"{ORDERS}/preview", contract, body)

    assert response.status_code == 200, response.text
    preview = exact(response)
    assert (preview["Id"], preview["InvoiceNumber"]) == (None, None)
    assert (preview["Kind"], preview["Status"]) == ("Interim", "Preview")
    assert [(line["Kind"], *line_summary(line)) for line in preview["Lines"]] == [
        ("Usage", "Storage", "5", "0", "5", False, "0.50"),
        ("RatedItem", "Setup", "1", "0", "1", False, "49.00"),
    ]
    assert totals(preview) == ("49.50", "0", "0.00", "49.50")
    # nothing saved: no usage, no invoice, no rated item, no invoice number consumed
    assert usage_entries(client, contract) == []
    assert invoices_of(client, contract) == []
    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)
    assert (invoice["InvoiceNumber"], invoice["Lines"]) == ("INV-2026-000001", [])


def test_an_order_preview_that_would_bill_nothing_answers_204(client: TestClient) -> None:
    contract = new_priced_contract(client)
    body = _order(contract, [_usage(contract, DueDate="2026-01-20T00:00:00Z")])  # not yet due
    response = send_json(client, "POST", f"{ORDERS}/preview", contract, body)

    assert response.status_code == 204, response.text
    assert usage_entries(client, contract) == []
