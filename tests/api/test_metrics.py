"""`GET /metrics`: Prometheus counters and histograms of requests, tasks and billing.

The metrics live in the process-wide registry, which every test of the run shares, so
each test compares a scrape taken after its actions with one taken before them.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    PricedContract,
    app_without_worker,
    end_contract,
    move_clock,
    new_priced_contract,
    post_usage,
    run_billing,
    send_json,
)
from tests.factories import ADMIN

Series = tuple[str, frozenset[tuple[str, str]]]
"""A sample's name and its labels."""

USAGE_ROUTE = "/api/v1/contracts/{contractId}/usage"
BULK_ROUTE = "/api/sellers/{sellerId}/services/bulkconsumptions"


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    """The app without its embedded worker: tasks and billing run when a test asks, so
    every duration histogram moves by exactly what the test did."""
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def scrape(client: TestClient) -> dict[Series, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def moved(
    before: dict[Series, float], after: dict[Series, float], name: str, **labels: str
) -> float:
    """How much one series moved between two scrapes (0 for a series in neither)."""
    series = (name, frozenset(labels.items()))
    return after.get(series, 0.0) - before.get(series, 0.0)


def _bulk(client: TestClient, contract: PricedContract, records: list[dict[str, object]]) -> None:
    path = BULK_ROUTE.format(sellerId=contract.seller.seller_id)
    response = send_json(client, "POST", path, contract, {"consumptions": records})
    assert response.status_code == 202, response.text


def _record(contract: PricedContract, key: str, quantity: int = 1) -> dict[str, object]:
    return {
        "subscriptionId": contract.contract_id,
        "productId": contract.component_id,
        "quantity": quantity,
        "dueDate": "2026-01-20T00:00:00Z",
        "key": key,
    }


# -- ingestion ----------------------------------------------------------------------------


def test_a_stored_usage_post_counts_once_and_a_key_replay_not_at_all(client: TestClient) -> None:
    contract = new_priced_contract(client)
    before = scrape(client)

    post_usage(client, contract, "5", "2026-01-10T00:00:00Z", Key="a")
    post_usage(client, contract, "7", "2026-01-11T00:00:00Z")
    replay = send_json(
        client,
        "POST",
        contract.usage_path,
        contract,
        {"DueDate": "2026-01-10T00:00:00Z", "ComponentId": contract.component_id, "Quantity": 5}
        | {"Key": "a"},
    )
    assert replay.status_code == 200, replay.text

    after = scrape(client)
    assert moved(before, after, "arrears_usage_posts_stored_total") == 2
    assert (
        moved(
            before,
            after,
            "arrears_http_requests_total",
            method="POST",
            route=USAGE_ROUTE,
            status="201",
        )
        == 2
    )
    assert (
        moved(
            before,
            after,
            "arrears_http_requests_total",
            method="POST",
            route=USAGE_ROUTE,
            status="200",
        )
        == 1
    )


def test_bulk_tasks_count_their_outcome_and_records_stored_duplicate_and_rejected(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    before = scrape(client)

    _bulk(
        client,
        contract,
        [_record(contract, "k1"), _record(contract, "k2"), _record(contract, "k3")],
    )
    assert run_billing(client)["tasks"] == 1
    # k1 again with the same values is a duplicate; k4 is new.
    _bulk(client, contract, [_record(contract, "k1"), _record(contract, "k4")])
    # One bad record fails the whole task: both of its records are rejected.
    _bulk(client, contract, [_record(contract, "k5"), _record(contract, "k6", quantity=-1)])
    assert run_billing(client)["tasks"] == 2

    after = scrape(client)
    assert moved(before, after, "arrears_tasks_applied_total", outcome="successful") == 2
    assert moved(before, after, "arrears_tasks_applied_total", outcome="failed") == 1
    assert moved(before, after, "arrears_task_records_total", result="stored") == 4
    assert moved(before, after, "arrears_task_records_total", result="duplicate") == 1
    assert moved(before, after, "arrears_task_records_total", result="rejected") == 2
    assert moved(before, after, "arrears_task_apply_duration_seconds_count") == 3
    assert moved(before, after, "arrears_task_latency_seconds_count") == 3
    # Nothing was due: the two billing runs found no contract and are not observed.
    assert moved(before, after, "arrears_billing_run_duration_seconds_count") == 0
    assert (
        moved(
            before,
            after,
            "arrears_http_requests_total",
            method="POST",
            route=BULK_ROUTE,
            status="202",
        )
        == 3
    )


# -- billing ------------------------------------------------------------------------------


def test_billing_counts_each_invoice_by_kind_and_every_usage_entry_it_bills(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="10")
    post_usage(client, contract, "5", "2026-01-10T00:00:00Z")
    post_usage(client, contract, "7", "2026-01-20T00:00:00Z")
    _bulk(
        client,
        contract,
        [_record(contract, "k1"), _record(contract, "k2"), _record(contract, "k3")],
    )
    before = scrape(client)

    # A regular invoice of January: the three bulk records (applied by this run first)
    # and the two posts.
    move_clock(client, "2026-02-01T00:00:00Z")
    assert run_billing(client)["invoices"] == 1
    # An interim invoice of one entry.
    post_usage(client, contract, "1", "2026-02-02T00:00:00Z")
    move_clock(client, "2026-02-03T00:00:00Z")
    interim = client.post(f"{contract.path}/interimbilling", headers=contract.headers)
    assert interim.status_code == 201, interim.text
    # A final invoice of two entries after the contract ends.
    post_usage(client, contract, "2", "2026-02-04T00:00:00Z")
    post_usage(client, contract, "3", "2026-02-05T00:00:00Z")
    end_contract(client, contract, "2026-02-10T00:00:00Z")
    move_clock(client, "2026-02-11T00:00:00Z")
    assert run_billing(client)["invoices"] == 1

    after = scrape(client)
    assert moved(before, after, "arrears_invoices_issued_total", kind="regular") == 1
    assert moved(before, after, "arrears_invoices_issued_total", kind="interim") == 1
    assert moved(before, after, "arrears_invoices_issued_total", kind="final") == 1
    assert moved(before, after, "arrears_usage_entries_billed_total") == 5 + 1 + 2
    assert moved(before, after, "arrears_billing_contracts_total", result="billed") == 2
    assert moved(before, after, "arrears_billing_contracts_total", result="failed") == 0
    assert moved(before, after, "arrears_billing_run_duration_seconds_count") == 2


def test_an_invoice_only_rehearsed_by_a_preview_is_not_counted(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-10T00:00:00Z")
    move_clock(client, "2026-02-15T00:00:00Z")
    before = scrape(client)

    # The preview issues January's invoice in a transaction it rolls back.
    preview = client.get(f"{contract.path}/preview", headers=contract.headers)
    assert preview.status_code == 200, preview.text

    after = scrape(client)
    for kind in ("regular", "interim", "final"):
        assert moved(before, after, "arrears_invoices_issued_total", kind=kind) == 0
    assert moved(before, after, "arrears_usage_entries_billed_total") == 0


def test_every_invoice_issued_by_several_billing_runs_is_counted_once(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    """Invoices are counted when their transaction commits, whoever issued them."""
    contracts = [new_priced_contract(client) for _ in range(3)]
    for contract in contracts:
        post_usage(client, contract, "5", "2026-01-10T00:00:00Z")
    before = scrape(client)

    # Three months due for three contracts: nine regular invoices.
    move_clock(client, "2026-04-01T00:00:00Z")
    assert run_billing(client)["invoices"] == 9
    assert run_billing(client)["invoices"] == 0

    after = scrape(client)
    assert moved(before, after, "arrears_invoices_issued_total", kind="regular") == 9
    assert moved(before, after, "arrears_usage_entries_billed_total") == 3
    assert moved(before, after, "arrears_billing_contracts_total", result="billed") == 3


# -- HTTP ---------------------------------------------------------------------------------


def test_requests_are_labelled_by_route_template_never_by_raw_path(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-10T00:00:00Z")
    assert client.get(contract.usage_path, headers=contract.headers).status_code == 200
    assert client.get("/no/such/path").status_code == 404

    after = scrape(client)
    routes = {dict(labels).get("route") for _, labels in after}
    assert USAGE_ROUTE in routes
    assert "unmatched" in routes
    assert not any(contract.contract_id in (route or "") for route in routes)
    assert (
        after[
            (
                "arrears_http_requests_total",
                frozenset({("method", "GET"), ("route", USAGE_ROUTE), ("status", "200")}),
            )
        ]
        >= 1
    )


def test_a_body_refused_before_routing_is_counted_under_its_route(client: TestClient) -> None:
    contract = new_priced_contract(client)
    before = scrape(client)

    # Over the 64 KiB limit of the test settings: refused by the middleware with 413.
    response = client.post(contract.usage_path, content=b"x" * 70_000, headers=contract.headers)
    assert response.status_code == 413

    after = scrape(client)
    assert (
        moved(
            before,
            after,
            "arrears_http_requests_total",
            method="POST",
            route=USAGE_ROUTE,
            status="413",
        )
        == 1
    )


def test_an_unknown_method_is_one_label_value(client: TestClient) -> None:
    before = scrape(client)
    assert client.request("BREW", "/healthz").status_code == 405
    after = scrape(client)
    assert (
        moved(
            before,
            after,
            "arrears_http_requests_total",
            method="OTHER",
            route="/healthz",
            status="405",
        )
        == 1
    )


def test_request_duration_histogram_has_cumulative_buckets_up_to_infinity(
    client: TestClient,
) -> None:
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    after = scrape(client)
    labels = {("method", "GET"), ("route", "/healthz")}
    buckets = {
        dict(series)["le"]: value
        for (name, series), value in after.items()
        if name == "arrears_http_request_duration_seconds_bucket" and labels <= series
    }
    count = after[("arrears_http_request_duration_seconds_count", frozenset(labels))]
    assert len(buckets) == 13  # twelve bounds and +Inf
    assert buckets["+Inf"] == count >= 3
    ordered = sorted(buckets.items(), key=lambda item: float(item[0]))
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(ordered))


def test_requests_in_progress_counts_the_scrape_itself(client: TestClient) -> None:
    assert scrape(client)[("arrears_http_requests_in_progress", frozenset())] == 1


# -- the endpoint -------------------------------------------------------------------------


def test_metrics_are_not_in_the_openapi_document(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_metrics_need_no_key_by_default(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "arrears_http_requests_total" in response.text


def test_metrics_token_when_set_is_required_as_a_bearer_token(
    settings: Settings, database: Database, clock: TestClock
) -> None:
    app = create_app(
        settings.model_copy(update={"metrics_token": "scrape-me", "embedded_worker": False}),
        database=database,
        clock=clock,
    )
    with TestClient(app) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert right.status_code == 200


def test_metrics_switched_off_are_not_served(
    settings: Settings, database: Database, clock: TestClock
) -> None:
    app = create_app(
        settings.model_copy(update={"metrics": False, "embedded_worker": False}),
        database=database,
        clock=clock,
    )
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 404


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_a_scrape_is_logged_at_debug_and_other_requests_at_info(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="arrears.access"):
        client.get("/metrics")
        client.get("/healthz")
    levels = {
        record.path: record.levelno  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "arrears.access"
    }
    assert levels == {"/metrics": logging.DEBUG, "/healthz": logging.INFO}


def test_admin_token_does_not_open_metrics_without_their_own_token(
    settings: Settings, database: Database, clock: TestClock
) -> None:
    app = create_app(
        settings.model_copy(update={"metrics_token": "scrape-me", "embedded_worker": False}),
        database=database,
        clock=clock,
    )
    with TestClient(app) as client:
        assert client.get("/metrics", headers=ADMIN).status_code == 401
