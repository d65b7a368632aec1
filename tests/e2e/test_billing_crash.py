"""SPEC §7 "Exactly once": billing that is interrupted and re-run issues exactly what an
uninterrupted run issues.

A real `arrears bill` process is killed with SIGKILL while it bills many contracts; billing
is then run again to completion. A twin of the database, copied before billing started,
is billed without interruption; both must hold the same invoices (per contract: kind,
period, lines and totals), gapless invoice numbers 1..N, and every usage entry billed
exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.billing import run_billing
from arrears.store.database import Database
from arrears.store.tables import BilledUsageRow, InvoiceLineRow, InvoiceRow, UsageEntryRow
from arrears.worker.runner import Worker
from tests.billing_factories import (
    Metered,
    app_without_worker,
    graduated,
    new_contract_on,
    new_priced_contract,
    send_json,
)
from tests.conftest import POSTGRES_SERVER
from tests.ingest_factories import wait_for_task

CONTRACTS = 120
PERIODS = 3
"""Each contract is due for January, February and March: 360 invoices, which take a
billing run a few seconds."""

BILLING_TIME = "2026-04-01T00:00:00Z"
BILLING_INSTANT = datetime(2026, 4, 1, tzinfo=UTC)


# -- the data -----------------------------------------------------------------------------


def _seed(settings: Settings, database: Database, clock: TestClock) -> None:
    """A seller with `CONTRACTS` contracts, each with usage in each of its periods."""
    with TestClient(app_without_worker(settings, database, clock)) as client:
        first = new_priced_contract(
            client,
            None,
            Metered(free_quota="10"),
            Metered("API calls", graduated(("100", "0.01"), (None, "0.005")), unit="call"),
            recurring_fee="9.90",
            tax_rate="19",
        )
        ids = [first.contract_id] + [
            new_contract_on(client, first.seller, first.customer_id, first.plan_variant_id)
            for _ in range(CONTRACTS - 1)
        ]
        records = [
            {
                "subscriptionId": contract_id,
                "productId": first.component_ids[n % 2],
                "quantity": n % 50 + 1,
                "dueDate": f"2026-0{1 + n % PERIODS}-{1 + n % 28:02d}T00:00:00Z",
                "key": f"{contract_id}/{n}",
            }
            for contract_id in ids
            for n in range(4 * PERIODS)
        ]
        path = f"/api/sellers/{first.seller.seller_id}/services/bulkconsumptions"
        response = send_json(client, "POST", path, first.seller, {"consumptions": records})
        assert response.status_code == 202, response.text
        assert Worker(database, clock).run_tasks() == 1
        task = wait_for_task(client, response.headers["Location"], first.headers, timeout=5)
        assert task["savedRecords"] == len(records)


@pytest.fixture
def twin(database: Database) -> Iterator[Callable[[], Database]]:
    """Makes a copy of `database` as it is now (once); the copy is removed afterwards."""
    made: list[tuple[Database, str]] = []

    def copy() -> Database:
        database.dispose()  # no connection may be open on the database copied
        if database.is_sqlite:
            source = Path(database.url.database or "")
            target = source.with_name("twin.db")
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{source}{suffix}").exists():
                    shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
            copied = Database(f"sqlite:///{target}")
            made.append((copied, ""))
            return copied
        name = f"arrears_twin_{uuid.uuid4().hex[:12]}"
        source = database.url.database
        with psycopg.connect(_server_conninfo(), autocommit=True) as admin:
            # PostgreSQL copies only a database nobody is connected to: end connections
            # that earlier tests of this run may have left idle on it.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (source,),
            )
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        copied = Database(database.url.set(database=name).render_as_string(hide_password=False))
        made.append((copied, name))
        return copied

    yield copy
    for copied, name in made:
        copied.dispose()
        if name:
            with psycopg.connect(_server_conninfo(), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server_conninfo() -> str:
    server = make_url(POSTGRES_SERVER)
    return server.set(drivername="postgresql").render_as_string(hide_password=False)


# -- billing ------------------------------------------------------------------------------


def _bill_process(database: Database, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database.url.render_as_string(hide_password=False),
        "ARREARS_TEST_CLOCK": BILLING_TIME,
        "ARREARS_LOG_FORMAT": "text",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "arrears", "bill"], env=env, stdout=out, stderr=out
        )


def _invoice_count(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(InvoiceRow)).scalar_one())


def _kill_mid_run(database: Database, log: Path) -> int:
    """Start `arrears bill`, SIGKILL it once some of its invoices exist; how many did."""
    process = _bill_process(database, log)
    try:
        deadline = time.monotonic() + 60
        while _invoice_count(database) < CONTRACTS // 2:
            assert process.poll() is None, f"billing ended before it was killed:\n{log.read_text()}"
            assert time.monotonic() < deadline, "billing issued no invoices in 60 s"
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return _invoice_count(database)


# -- what was billed ----------------------------------------------------------------------

Invoices = dict[str, list[tuple[Any, ...]]]


def _invoices(database: Database) -> tuple[Invoices, list[str]]:
    """Per contract, its invoices as (kind, period, totals, lines) in period order; and
    every invoice number."""
    with database.read() as session:
        rows = session.execute(select(InvoiceRow)).scalars().all()
        lines: dict[str, list[tuple[Any, ...]]] = {row.id: [] for row in rows}
        for line in session.execute(
            select(InvoiceLineRow).order_by(InvoiceLineRow.invoice_id, InvoiceLineRow.position)
        ).scalars():
            lines[line.invoice_id].append(
                (
                    line.kind,
                    line.component_id,
                    line.description,
                    line.quantity,
                    line.free_quantity,
                    line.billable_quantity,
                    line.late,
                    line.amount,
                    tuple(line.usage_ids),
                )
            )
        by_contract: Invoices = {}
        for row in sorted(rows, key=lambda r: r.period_start):
            by_contract.setdefault(row.contract_id, []).append(
                (
                    row.kind,
                    row.period_start,
                    row.period_end,
                    row.subtotal,
                    row.tax_amount,
                    row.total,
                    tuple(lines[row.id]),
                )
            )
        numbers = [row.invoice_number for row in rows]
    return by_contract, numbers


def _assert_gapless(numbers: list[str]) -> None:
    sequence = sorted(int(number.rsplit("-", 1)[1]) for number in numbers)
    assert sequence == list(range(1, len(numbers) + 1))


def _assert_each_entry_billed_once(database: Database) -> None:
    with database.read() as session:
        entries = dict(
            session.execute(
                select(UsageEntryRow.id, BilledUsageRow.invoice_id).outerjoin(
                    BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id
                )
            ).all()
        )
        on_lines = Counter(
            (invoice_id, usage_id)
            for invoice_id, usage_ids in session.execute(
                select(InvoiceLineRow.invoice_id, InvoiceLineRow.usage_ids)
            )
            for usage_id in usage_ids
        )
    assert set(on_lines.values()) == {1}
    assert sorted(usage_id for _, usage_id in on_lines) == sorted(entries)
    assert {(invoice_id, usage_id) for usage_id, invoice_id in entries.items()} == set(on_lines)


@pytest.mark.slow
def test_billing_killed_mid_run_and_run_again_issues_what_an_uninterrupted_run_issues(
    settings: Settings,
    database: Database,
    clock: TestClock,
    twin: Callable[[], Database],
    tmp_path: Path,
) -> None:
    _seed(settings, database, clock)
    uninterrupted = twin()
    expected = CONTRACTS * PERIODS

    survived = _kill_mid_run(database, tmp_path / "bill.log")
    assert 0 < survived < expected, f"killed too late to crash mid-run ({survived} invoices)"
    _, numbers = _invoices(database)
    _assert_gapless(numbers)  # what a crashed run leaves is whole, too

    rerun = _bill_process(database, tmp_path / "bill.log")
    assert rerun.wait(timeout=120) == 0, (tmp_path / "bill.log").read_text()
    assert run_billing(uninterrupted, TestClock(BILLING_INSTANT)).invoices == expected

    billed, numbers = _invoices(database)
    reference, reference_numbers = _invoices(uninterrupted)
    assert len(numbers) == len(reference_numbers) == expected
    assert billed == reference
    assert len(billed) == CONTRACTS
    assert all(len(invoices) == PERIODS for invoices in billed.values())
    _assert_gapless(numbers)
    _assert_each_entry_billed_once(database)
    _assert_each_entry_billed_once(uninterrupted)
