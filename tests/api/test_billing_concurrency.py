"""SPEC §7 "Exactly once" and §8 numbering under concurrency: the database, not the code
path, makes each contract period get one regular invoice, each usage entry one invoice,
and each seller's invoice numbers a gapless sequence, whoever bills at the same time.

Real races (billing threads against each other and against usage posts), and one race
made deterministic by holding a transaction open while another runs into it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.ids import new_id
from arrears.domain.usage import UsageCandidate
from arrears.services.billing import BillingRun, run_billing
from arrears.services.contract_billing import interim_invoice
from arrears.services.orders import OrderedUsage, PlacedOrder, place_order
from arrears.store.database import Database
from arrears.store.orders import OrderRepository
from arrears.store.unit_of_work import UnitOfWork
from arrears.store.usage import UsageRepository
from arrears.worker.runner import Worker
from tests.billing_factories import (
    START,
    Metered,
    PricedContract,
    app_without_worker,
    billed_ids,
    new_contract_on,
    new_priced_contract,
    post_usage,
    send_json,
    sequence_number,
    usage_entries,
)
from tests.ingest_factories import exact, wait_for_task
from tests.threads import all_at_once, until_blocked

T = TypeVar("T")

CONTRACTS = 50


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _all_invoices(client: TestClient, contract: PricedContract) -> list[dict[str, Any]]:
    """Every invoice of the contract's seller (up to 500)."""
    response = client.get("/api/v1/invoices?take=500", headers=contract.headers)
    assert response.status_code == 200, response.text
    assert int(response.headers["X-Total-Count"]) <= 500
    body: list[dict[str, Any]] = exact(response)
    return body


def _assert_gapless(invoices: list[dict[str, Any]]) -> None:
    numbers = sorted(sequence_number(invoice["InvoiceNumber"]) for invoice in invoices)
    assert numbers == list(range(1, len(invoices) + 1))


def _assert_each_entry_billed_once(
    client: TestClient, contract: PricedContract, invoices: list[dict[str, Any]]
) -> None:
    on_lines = Counter(id_ for invoice in invoices for id_ in billed_ids(invoice))
    assert [id_ for id_, times in on_lines.items() if times > 1] == []
    entries = usage_entries(client, contract)
    assert sorted(on_lines) == sorted(entry["Id"] for entry in entries)
    by_id = {invoice["Id"]: invoice for invoice in invoices}
    for entry in entries:
        assert entry["Id"] in billed_ids(by_id[entry["InvoiceId"]])
    billed = sum(Decimal(line["Quantity"]) for i in invoices for line in i["Lines"])
    assert billed == sum(Decimal(entry["Quantity"]) for entry in entries)


# -- billing against billing --------------------------------------------------------------


def test_four_billing_runs_at_once_over_50_contracts_issue_one_invoice_per_period_numbered_1_to_100(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    first = new_priced_contract(client, recurring_fee="1.00")
    ids = [first.contract_id] + [
        new_contract_on(client, first.seller, first.customer_id, first.plan_variant_id)
        for _ in range(CONTRACTS - 1)
    ]
    records = [
        {
            "subscriptionId": contract_id,
            "productId": first.component_id,
            "quantity": n + 1,
            "dueDate": due,
            "key": f"{n}/{due}",
        }
        for n, contract_id in enumerate(ids)
        for due in ("2026-01-15T00:00:00Z", "2026-02-15T00:00:00Z")
    ]
    path = f"/api/sellers/{first.seller.seller_id}/services/bulkconsumptions"
    response = send_json(client, "POST", path, first.seller, {"consumptions": records})
    assert response.status_code == 202, response.text
    assert Worker(database, clock).run_tasks() == 1
    task = wait_for_task(client, response.headers["Location"], first.headers, timeout=5)
    assert task["savedRecords"] == 2 * CONTRACTS
    clock.move_to(datetime(2026, 3, 1, tzinfo=UTC))  # two periods due for every contract

    runs: list[BillingRun] = all_at_once(4, lambda _: run_billing(database, clock))

    assert sum(run.invoices for run in runs) == 2 * CONTRACTS
    assert sum(run.failed for run in runs) == 0
    invoices = _all_invoices(client, first)
    assert len(invoices) == 2 * CONTRACTS
    periods = Counter((i["ContractId"], i["Kind"], i["PeriodStart"]) for i in invoices)
    assert set(periods.values()) == {1}
    assert {contract_id for contract_id, _, _ in periods} == set(ids)
    assert {(kind, start) for _, kind, start in periods} == {
        ("Regular", START),
        ("Regular", "2026-02-01T00:00:00Z"),
    }
    _assert_gapless(invoices)
    every_entry = Counter(id_ for invoice in invoices for id_ in billed_ids(invoice))
    assert len(every_entry) == 2 * CONTRACTS
    assert set(every_entry.values()) == {1}


# -- billing against usage posts ----------------------------------------------------------


@contextmanager
def _posting(
    app: FastAPI, contract: PricedContract, threads: int, per_thread: int, due: Callable[[int], str]
) -> Iterator[list[Future[None]]]:
    """Threads that each post `per_thread` entries (quantity n + 1, due `due(n)`) to the
    contract while the block runs; their futures. The block's end waits for them all."""

    def post(thread: int) -> None:
        with TestClient(app) as client:
            for k in range(per_thread):
                n = thread * per_thread + k
                post_usage(client, contract, str(n + 1), due(n))

    with ThreadPoolExecutor(threads) as pool:
        yield [pool.submit(post, thread) for thread in range(threads)]


def test_weekly_billing_while_four_threads_post_usage_bills_every_entry_exactly_once(
    app: FastAPI, client: TestClient, database: Database, clock: TestClock
) -> None:
    contract = new_priced_contract(client, period=("Week", 1))
    weeks = 12
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def due(n: int) -> str:  # spread over the 12 weeks, every 7 hours
        instant = start + timedelta(hours=7 * (n % (weeks * 24)))
        return instant.isoformat().replace("+00:00", "Z")

    with _posting(app, contract, threads=4, per_thread=60, due=due) as posters:
        # meanwhile, bill week after week as the clock moves on
        for week in range(1, weeks + 1):
            clock.move_to(start + timedelta(weeks=week))
            assert run_billing(database, clock).failed == 0
            time.sleep(0.02)
    for future in posters:
        future.result(timeout=60)
    # a last run bills what was posted after its week was billed (as late usage)
    clock.move_to(start + timedelta(weeks=weeks + 1))
    assert run_billing(database, clock).failed == 0

    invoices = _all_invoices(client, contract)
    assert len(invoices) == weeks + 1
    _assert_gapless(invoices)
    _assert_each_entry_billed_once(client, contract, invoices)
    assert usage_entries(client, contract, "billed=false") == []


def test_interim_billing_while_four_threads_post_usage_bills_every_entry_exactly_once(
    app: FastAPI, client: TestClient, database: Database, clock: TestClock
) -> None:
    contract = new_priced_contract(client)
    clock.move_to(datetime(2026, 1, 20, tzinfo=UTC))

    def due(n: int) -> str:
        return f"2026-01-{1 + n % 19:02d}T00:00:00Z"  # all due by now

    interim: list[int] = []
    with _posting(app, contract, threads=4, per_thread=50, due=due) as posters:
        while not all(future.done() for future in posters):
            response = client.post(f"{contract.path}/interimbilling", headers=contract.headers)
            assert response.status_code in (201, 204), response.text
            interim.append(response.status_code)
    for future in posters:
        future.result(timeout=60)
    clock.move_to(datetime(2026, 2, 1, tzinfo=UTC))
    assert run_billing(database, clock).failed == 0

    invoices = _all_invoices(client, contract)
    assert [i["Kind"] for i in invoices].count("Regular") == 1
    assert len(invoices) == interim.count(201) + 1
    _assert_gapless(invoices)
    _assert_each_entry_billed_once(client, contract, invoices)


# -- a race made deterministic ------------------------------------------------------------


def test_two_orders_billing_one_contract_at_once_are_both_placed_and_billed(
    client: TestClient,
    database: Database,
    clock: TestClock,
    request: pytest.FixtureRequest,
    database_kind: str,
) -> None:
    # one component per order: their interim invoices share no line of the period
    contract = new_priced_contract(client, None, Metered("Storage"), Metered("Traffic"))
    now = clock.move_to(datetime(2026, 1, 10, tzinfo=UTC))
    seller_id = contract.seller.seller_id

    def second_order() -> PlacedOrder:
        with database.unit_of_work(seller_id) as work:
            return place_order(
                work,
                clock,
                contract_id=contract.contract_id,
                usages=[OrderedUsage(contract.component_ids[1], Decimal(2))],
                rated_items=[],
                trigger_interim_billing=True,
            )

    with ThreadPoolExecutor(1) as pool, database.write() as session:
        # the first order has stored its order and usage rows and is about to bill ...
        first_id = new_id()
        OrderRepository(session, seller_id).add_order(first_id, contract.contract_id, now)
        ordered = UsageCandidate(contract.contract_id, contract.component_id, Decimal(1), now)
        usage = UsageRepository(session, seller_id)
        assert usage.insert_new([ordered], submission_id=first_id, transferred_at=now) == 1
        racing = pool.submit(second_order)
        until_blocked(database)  # ... when the second order stores its rows and bills
        first = interim_invoice(UnitOfWork(session, seller_id), clock, contract.contract_id)
    second = racing.result(timeout=30)

    assert first is not None
    assert second.invoice is not None
    entries = {entry["Quantity"]: entry["InvoiceId"] for entry in usage_entries(client, contract)}
    assert entries == {1: first.id, 2: second.invoice.id}
