"""Issue 7: a billing process killed at random points, again and again, always converges
to the invoices of an uninterrupted run (SPEC §7 "Exactly once").

`arrears bill` runs over many due contracts and is killed with SIGKILL `KILLS` times, each
time a seeded-random moment after the run has committed its first invoices (so every kill
lands in the middle of a run, mostly in the middle of a batch's transaction), then runs
once more to the end. A twin of the database, copied before billing, is billed without
interruption. Both must hold the same invoices: per contract the same invoice number,
kind, period, lines and totals; numbers gapless; every billed entry linked once.
"""

from __future__ import annotations

import random
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.contracts import Contract
from arrears.domain.ids import new_id
from arrears.services.billing import run_billing
from arrears.store.contracts import ContractRepository
from arrears.store.database import Database
from arrears.worker.runner import Worker
from tests.billing_factories import (
    app_without_worker,
    new_storage_and_calls_contract,
    send_json,
)
from tests.conftest import CLOCK_START, POSTGRES_SERVER
from tests.e2e.billed import (
    assert_each_entry_billed_once,
    assert_gapless,
    bill_process,
    invoice_count,
    invoices,
    twin_of,
)
from tests.ingest_factories import wait_for_task

CONTRACTS = 1_200
"""Contracts due at BILLING_TIME, one invoice each. A run bills them in batches of 50,
100, 200 ... contracts, one transaction each; killed within `LATEST_KILL` of its first
commit, a run gets through at most its first two batches (more would take billing
6,000 invoices a second, several times what it does on the development machine), so
`KILLS` runs leave work for the last one."""
ENTRIES = 3
"""Usage entries per contract."""
KILLS = 6
SEED = 20_260_201
LATEST_KILL = 0.05
"""Seconds after a run's first commit by which it is killed (seeded-random)."""

BILLING_TIME = "2026-02-01T00:00:00Z"
BILLING_INSTANT = datetime(2026, 2, 1, tzinfo=UTC)


def _seed(settings: Settings, database: Database, clock: TestClock) -> None:
    """A seller with `CONTRACTS` contracts of one customer (a free quota, graduated
    tiers, a recurring fee, tax) and `ENTRIES` usage entries on each, due in January."""
    with TestClient(app_without_worker(settings, database, clock)) as client:
        first = new_storage_and_calls_contract(client)
        seller_id = first.seller.seller_id
        # Over HTTP, or one by one through the use case (which looks the customer and
        # the plan variant up each time), a thousand contracts would take seconds.
        with database.write() as session:
            contracts = ContractRepository(session, seller_id)
            period = contracts.get(first.contract_id).billing_period
            ids = [first.contract_id]
            for _ in range(CONTRACTS - 1):
                contract = Contract(
                    id=new_id(),
                    created_at=clock.now(),
                    customer_id=first.customer_id,
                    plan_variant_id=first.plan_variant_id,
                    billing_period=period,
                    start_date=CLOCK_START,
                )
                contracts.add(contract)
                ids.append(contract.id)
        records = [
            {
                "subscriptionId": contract_id,
                "productId": first.component_ids[n % 2],
                "quantity": (c + n) % 60 + 1,
                "dueDate": f"2026-01-{1 + (c + n) % 28:02d}T00:00:00Z",
                "key": f"{c}/{n}",
            }
            for c, contract_id in enumerate(ids)
            for n in range(ENTRIES)
        ]
        path = f"/api/sellers/{seller_id}/services/bulkconsumptions"
        response = send_json(client, "POST", path, first.seller, {"consumptions": records})
        assert response.status_code == 202, response.text
        assert Worker(database, clock).run_tasks() == 1
        task = wait_for_task(client, response.headers["Location"], first.headers, timeout=5)
        assert task["savedRecords"] == len(records)


def _kill_mid_run(database: Database, log: Path, delay: float) -> tuple[int, int]:
    """Start `arrears bill`, and SIGKILL it `delay` seconds after its first invoices are
    committed; the invoices before and after the run."""
    before = invoice_count(database)
    process = bill_process(database, log, BILLING_TIME)
    try:
        deadline = time.monotonic() + 120
        while invoice_count(database) == before and process.poll() is None:
            assert time.monotonic() < deadline, (
                f"billing issued nothing in 120 s:\n{log.read_text()}"
            )
            time.sleep(0.002)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, (
        f"the run ended before its kill:\n{log.read_text()}"
    )
    return before, invoice_count(database)


@pytest.mark.slow
def test_billing_killed_at_random_points_again_and_again_issues_what_an_uninterrupted_run_does(
    settings: Settings, database: Database, clock: TestClock, tmp_path: Path
) -> None:
    _seed(settings, database, clock)
    log = tmp_path / "bill.log"
    rng = random.Random(SEED)  # noqa: S311 (reproducible kill moments, not secrets)
    with twin_of(database, POSTGRES_SERVER) as uninterrupted:
        for _ in range(KILLS):
            before, after = _kill_mid_run(database, log, rng.uniform(0, LATEST_KILL))
            assert before < after < CONTRACTS  # each run got somewhere, none got to the end
            _, numbers = invoices(database)
            assert_gapless(numbers)  # what a killed run leaves is whole

        assert bill_process(database, log, BILLING_TIME).wait(timeout=300) == 0, log.read_text()
        assert run_billing(uninterrupted, TestClock(BILLING_INSTANT)).invoices == CONTRACTS

        billed, numbers = invoices(database, numbered=True)
        reference, _ = invoices(uninterrupted, numbered=True)
        assert len(numbers) == CONTRACTS
        assert billed == reference
        assert_gapless(numbers)
        assert_each_entry_billed_once(database)
        assert_each_entry_billed_once(uninterrupted)
