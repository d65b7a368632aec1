"""A billing failure is never silent (issue 16; docs/billing.md, "When a contract cannot
be billed"), on SQLite and PostgreSQL.

The failure is forced by a test double of the rating step (`BrokenRating`), put in the
place of `rate_totals` where the invoicing road calls it: every path that rates an
invoice (a batch, one contract, interim billing, a preview) goes through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import InvalidOperation
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.rating import rate_totals
from arrears.services import invoicing
from arrears.store.database import Database
from tests.api.test_metrics import moved, scrape
from tests.billing_factories import (
    Json,
    PricedContract,
    app_without_worker,
    get_contract,
    move_clock,
    new_billing_seller,
    new_priced_contract,
    post_usage,
    send_json,
)
from tests.factories import ADMIN


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


class BrokenRating:
    """The rating step, which raises `error` for every invoice of a plan variant that
    meters `component_id` until `repair()`; any other invoice is rated as usual."""

    def __init__(self, component_id: str, error: Exception) -> None:
        self.component_id = component_id
        self.error = error
        self.broken = True

    def repair(self) -> None:
        self.broken = False

    def __call__(self, **rating: Any) -> Any:
        metered = {component.component_id for component in rating["components"]}
        if self.broken and self.component_id in metered:
            raise self.error
        return rate_totals(**rating)


def break_rating(
    monkeypatch: pytest.MonkeyPatch, contract: PricedContract, error: Exception
) -> BrokenRating:
    double = BrokenRating(contract.component_id, error)
    monkeypatch.setattr(invoicing, "rate_totals", double)
    return double


def billing_run(client: TestClient) -> Json:
    response = client.post("/admin/billing/run", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: Json = response.json()
    return body


def failures(client: TestClient) -> tuple[list[Json], int]:
    response = client.get("/admin/billing/failures", headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json(), int(response.headers["X-Total-Count"])


def interim(client: TestClient, contract: PricedContract) -> Any:
    return client.post(f"{contract.path}/interimbilling", headers=contract.headers)


def overflowing(client: TestClient) -> tuple[PricedContract, PricedContract, PricedContract]:
    """Three contracts of one seller with usage in January, the second of which cannot
    be billed (its rating overflows), and usage of one contract of another seller."""
    seller = new_billing_seller(client)
    contracts = tuple(new_priced_contract(client, seller) for _ in range(3))
    for contract in contracts:
        post_usage(client, contract, "10", "2026-01-10T00:00:00Z")
    return contracts[0], contracts[1], contracts[2]


def test_a_contract_that_cannot_be_billed_is_listed_with_its_reason_and_the_others_are_billed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    first, broken, third = overflowing(client)
    other_seller = new_priced_contract(client)
    break_rating(monkeypatch, broken, InvalidOperation([InvalidOperation]))
    move_clock(client, "2026-02-01T00:00:00Z")

    with caplog.at_level(logging.ERROR, logger="arrears.billing"):
        run = billing_run(client)

    assert run["contracts"] == 3
    assert run["invoices"] == 3
    assert run["failed"] == 1
    for contract in (first, third, other_seller):
        invoices = client.get(
            f"/api/v1/invoices?contractId={contract.contract_id}", headers=contract.headers
        )
        assert len(invoices.json()) == 1
        assert get_contract(client, contract)["BillingError"] is None
    error = get_contract(client, broken)["BillingError"]
    assert error["Code"] == "amount_out_of_range"
    assert error["FailedAt"] == error["FirstFailedAt"] == "2026-02-01T00:00:00Z"
    assert error["Attempts"] == 1
    assert "too large" in error["Message"]
    assert "Traceback" not in error["Message"]
    assert "decimal" not in error["Message"]
    listed, total = failures(client)
    assert total == 1
    assert listed[0]["contractId"] == broken.contract_id
    assert listed[0]["sellerId"] == broken.seller.seller_id
    assert listed[0]["sellerName"] == "Acme"
    assert listed[0]["message"] == error["Message"]
    assert listed[0]["error"] == "decimal.InvalidOperation"
    logged = [r for r in caplog.records if getattr(r, "contract_id", None) == broken.contract_id]
    assert len(logged) == 1
    assert broken.contract_id in logged[0].getMessage()
    assert broken.seller.seller_id in logged[0].getMessage()
    assert logged[0].seller_id == broken.seller.seller_id  # type: ignore[attr-defined]


def test_a_failing_contract_is_retried_by_every_run_and_billed_once_its_cause_is_removed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, broken, _ = overflowing(client)
    rating = break_rating(monkeypatch, broken, InvalidOperation([InvalidOperation]))
    move_clock(client, "2026-02-01T00:00:00Z")
    assert billing_run(client)["failed"] == 1
    move_clock(client, "2026-02-02T00:00:00Z")
    assert billing_run(client)["failed"] == 1
    error = get_contract(client, broken)["BillingError"]
    assert error["Attempts"] == 2
    assert error["FirstFailedAt"] == "2026-02-01T00:00:00Z"
    assert error["FailedAt"] == "2026-02-02T00:00:00Z"

    rating.repair()
    run = billing_run(client)

    assert run["contracts"] == 1
    assert run["invoices"] == 1
    assert run["failed"] == 0
    assert get_contract(client, broken)["BillingError"] is None
    assert failures(client) == ([], 0)


def test_interim_billing_orders_and_previews_of_such_a_contract_answer_409_billing_failed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "10", "2026-01-10T00:00:00Z")
    rating = break_rating(monkeypatch, contract, ValueError("year 10999 is out of range"))
    move_clock(client, "2026-01-20T00:00:00Z")
    order = {
        "ContractId": contract.contract_id,
        "Cart": {"RatedItems": [{"Description": "Setup", "Quantity": 1, "PricePerUnit": 49}]},
        "TriggerInterimBilling": True,
    }

    answers = [
        interim(client, contract),
        send_json(client, "POST", "/api/v1/orders", contract, order),
        send_json(client, "POST", "/api/v1/orders/preview", contract, order),
        client.get(f"{contract.path}/preview", headers=contract.headers),
    ]

    for answer in answers:
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["type"].endswith("/billing-failed")
        assert contract.contract_id in problem["detail"]
        assert "year 10999" not in problem["detail"]
    error = get_contract(client, contract)["BillingError"]
    assert error["Code"] == "date_out_of_range"
    assert error["Attempts"] == 4
    assert error["FailedAt"] == "2026-01-20T00:00:00Z"

    rating.repair()
    billed = interim(client, contract)
    assert billed.status_code == 201, billed.text
    # The order that could not be billed was not placed: all or nothing.
    assert [line["Description"] for line in billed.json()["Lines"]] == ["Storage"]
    assert get_contract(client, contract)["BillingError"] is None


def test_the_metrics_count_failed_attempts_and_the_contracts_that_cannot_be_billed(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, broken, _ = overflowing(client)
    rating = break_rating(monkeypatch, broken, RuntimeError("a defect"))
    move_clock(client, "2026-02-01T00:00:00Z")
    before = scrape(client)

    billing_run(client)
    failing = scrape(client)
    assert interim(client, broken).status_code == 409
    after_interim = scrape(client)
    rating.repair()
    billing_run(client)
    healed = scrape(client)

    assert moved(before, failing, "arrears_billing_failures_total", path="run") == 1
    assert failing[("arrears_billing_failing_contracts", frozenset())] == 1
    assert moved(failing, after_interim, "arrears_billing_failures_total", path="request") == 1
    assert healed[("arrears_billing_failing_contracts", frozenset())] == 0


def test_a_database_outage_is_not_recorded_as_the_contracts_failure(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, broken, _ = overflowing(client)
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    rating = break_rating(monkeypatch, broken, OperationalError("SELECT 1", {}, lost))
    move_clock(client, "2026-02-01T00:00:00Z")
    before = scrape(client)

    run = billing_run(client)
    during = interim(client, broken)

    assert run["contracts"] == 2
    assert run["failed"] == 1
    assert during.status_code == 503
    assert during.json()["type"].endswith("/database-unavailable")
    assert get_contract(client, broken)["BillingError"] is None
    assert failures(client) == ([], 0)
    assert moved(before, scrape(client), "arrears_billing_failures_total", path="run") == 0
    rating.repair()
    assert billing_run(client)["contracts"] == 1


def test_the_failures_list_is_for_the_operator_only(client: TestClient) -> None:
    seller = new_billing_seller(client)
    assert client.get("/admin/billing/failures").status_code == 401
    assert client.get("/admin/billing/failures", headers=seller.headers).status_code == 401
