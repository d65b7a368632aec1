"""How soon work cut off by a killed worker is done by the next one (issue 16).

On SQLite and PostgreSQL, against a real `arrears serve` (no embedded worker):

- a task: a 50,000-record bulk submission; an `arrears worker` is killed (SIGKILL) while
  it inserts the records, a new one is started at once; the figures are the seconds
  from the kill, and from the new worker's start, until the task is `Successful`. The
  baseline: a fresh worker started on the same kind of task, uninterrupted.
- a billing batch: a worker whose test clock makes 400 invoices due is killed inside a
  batch's transaction (after its first commit), a new one started at once; the seconds
  until every invoice exists, and the invoice numbers checked gapless.

    .venv/bin/python bench/bench_recovery.py [sqlite|postgresql ...]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import msgspec
from sqlalchemy import func, select, text

from _server import ARREARS, START, Catalog, create_catalog, fresh_database, running_server
from arrears.store.database import Database
from arrears.store.tables import InvoiceRow, TaskRow

RECORDS = 50_000
CONTRACTS = 200
PERIODS = 2


def main(kinds: list[str]) -> None:
    # The benchmark's own workers apply the tasks; the server only stores them.
    os.environ["ARREARS_EMBEDDED_WORKER"] = "false"
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            with fresh_database(kind, Path(workdir), "recovery") as url:
                _measure(kind, url, Path(workdir))


def _measure(kind: str, url: str, workdir: Path) -> None:
    database = Database(url)
    log = workdir / f"{kind}.log"
    try:
        with running_server(url, workdir / f"{kind}-serve.log") as server:
            catalog = create_catalog(server, CONTRACTS)
            with httpx.Client(base_url=server.url, timeout=60) as client:
                baseline = _uninterrupted(client, catalog, database, url, log)
                claimed, since_kill, since_start = _task_killed(client, catalog, database, url, log)
        print(
            f"{kind}: task of {RECORDS:,} records: claimed again {claimed:.1f} s after its "
            f"worker's kill, done {since_kill:.1f} s after the kill, {since_start:.1f} s after "
            f"the next worker's start (uninterrupted, from a worker's start: {baseline:.1f} s; "
            f"ratio {since_start / baseline:.1f})"
        )
        since_kill, since_start, survived = _billing_killed(database, url, log)
        print(
            f"{kind}: billing of {CONTRACTS * PERIODS} invoices killed at {survived}: done "
            f"{since_kill:.1f} s after the kill, {since_start:.1f} s after the next worker's start"
        )
    finally:
        database.dispose()


def _submit(client: httpx.Client, catalog: Catalog, prefix: str) -> str:
    components = list(catalog.components)
    records = [
        {
            "subscriptionId": catalog.contract_ids[n % CONTRACTS],
            "productId": components[n % 2],
            "quantity": n % 100 + 1,
            "dueDate": (START + timedelta(minutes=n % 10_000)).isoformat().replace("+00:00", "Z"),
            "key": f"{prefix}-{n}",
        }
        for n in range(RECORDS)
    ]
    response = client.post(
        f"/api/sellers/{catalog.seller_id}/services/bulkconsumptions",
        content=msgspec.json.encode({"consumptions": records}),
        headers={"Authorization": f"Bearer {catalog.api_key}", "Content-Type": "application/json"},
    )
    if response.status_code != 202:
        raise RuntimeError(f"submission: {response.status_code} {response.text}")
    return str(response.json()["taskId"])


def _worker(url: str, log: Path, clock: str | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ARREARS_DATABASE_URL": url, "ARREARS_LOG_FORMAT": "text"}
    env.pop("ARREARS_TEST_CLOCK", None)
    if clock is not None:
        env["ARREARS_TEST_CLOCK"] = clock
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own executable)
            [str(ARREARS), "worker", "--poll", "0.2"], env=env, stdout=out, stderr=out
        )


def _until(condition: Callable[[], bool], what: str, timeout: float = 120) -> float:
    """Wait until `condition`; the monotonic time at which it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting until {what}")
        time.sleep(0.01)
    return time.monotonic()


def _status(database: Database, task_id: str) -> tuple[str, str | None, int]:
    with database.read() as session:
        row = session.execute(
            select(TaskRow.status, TaskRow.lease_owner, TaskRow.attempts).where(
                TaskRow.id == task_id
            )
        ).one()
    return row.status, row.lease_owner, row.attempts


def _stop(worker: subprocess.Popen[bytes]) -> None:
    worker.terminate()
    worker.wait(timeout=60)


def _uninterrupted(
    client: httpx.Client, catalog: Catalog, database: Database, url: str, log: Path
) -> float:
    task_id = _submit(client, catalog, "plain")
    started = time.monotonic()
    worker = _worker(url, log)
    try:
        done = _until(lambda: _status(database, task_id)[0] != "Processing", "the task is done")
    finally:
        _stop(worker)
    return done - started


def _task_killed(
    client: httpx.Client, catalog: Catalog, database: Database, url: str, log: Path
) -> tuple[float, float, float]:
    task_id = _submit(client, catalog, "killed")
    worker = _worker(url, log)
    _until(lambda: _status(database, task_id)[1] is not None, "a worker claims the task")
    _until(_inserting(database), "the worker inserts the records")
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    worker.wait(timeout=60)
    if _status(database, task_id)[0] != "Processing":
        raise RuntimeError("killed too late: the task was done")
    started = time.monotonic()
    successor = _worker(url, log)
    try:
        claimed = _until(lambda: _status(database, task_id)[2] == 2, "the task is claimed again")
        done = _until(lambda: _status(database, task_id)[0] == "Successful", "the task is done")
    finally:
        _stop(successor)
    return claimed - killed, done - killed, done - started


def _inserting(database: Database) -> Callable[[], bool]:
    """Whether the worker writes usage rows (tests/e2e/test_task_crash.py tells how)."""
    if database.is_sqlite:
        wal = Path(f"{database.url.database}-wal")
        before = wal.stat().st_mtime_ns
        return lambda: wal.stat().st_mtime_ns != before
    return lambda: _pg_active(database, "query ~* '^\\s*(COPY|INSERT\\s+INTO)\\s+\"?usage_entries'")


def _pg_active(database: Database, condition: str) -> bool:
    with database.read() as session:
        found = session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "  # noqa: S608
                f"AND pid <> pg_backend_pid() AND {condition}"
            )
        ).scalar_one()
    return bool(found)


def _invoices(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(InvoiceRow)).scalar_one())


def _billing_killed(database: Database, url: str, log: Path) -> tuple[float, float, int]:
    due = (START + timedelta(days=31 * PERIODS + 3)).isoformat().replace("+00:00", "Z")
    expected = CONTRACTS * PERIODS

    def in_a_batch() -> bool:
        if _invoices(database) == 0:
            return False
        return database.is_sqlite or _pg_active(database, "backend_xid IS NOT NULL")

    worker = _worker(url, log, due)
    _until(in_a_batch, "the worker bills")
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    worker.wait(timeout=60)
    survived = _invoices(database)
    if survived >= expected:
        raise RuntimeError("killed too late: billing was done")
    started = time.monotonic()
    successor = _worker(url, log, due)
    try:
        done = _until(lambda: _invoices(database) >= expected, "every invoice exists")
    finally:
        _stop(successor)
    with database.read() as session:
        numbers = sorted(
            int(number.rsplit("-", 1)[1])
            for number in session.execute(select(InvoiceRow.invoice_number)).scalars()
        )
    if numbers != list(range(1, expected + 1)):
        raise RuntimeError("invoice numbers are not gapless")
    return done - killed, done - started, survived


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
