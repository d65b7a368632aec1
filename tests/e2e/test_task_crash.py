"""SPEC §6: a task survives the crash of the worker that applies it. It is finished by
the next worker, never applied twice, never half-applied.

A real `arrears worker` process is killed with SIGKILL while it applies a large task;
then the lease machinery is checked where it decides: a worker whose lease was taken
over must leave nothing behind.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update

from arrears.domain.clock import TestClock
from arrears.domain.tasks import Outcome
from arrears.services.leases import DEFAULT_LEASE, LeaseTerms
from arrears.services.tasks import run_next_task
from arrears.store.database import Database
from arrears.store.tables import TaskRow, UsageEntryRow
from arrears.store.tasks import LeaseLost, TaskQueue
from arrears.worker.runner import Worker
from tests.conftest import CLOCK_START
from tests.e2e.billed import worker_process
from tests.ingest_factories import (
    MeteredSeller,
    encode,
    new_metered_seller,
    record,
    seller_with_waiting_task,
    send,
    submit_bulk,
    wait_for_task,
)

RECORDS = 50_000
"""The size of the submission of issue 16, large enough that the worker is caught while
it inserts the records (its application takes about a second or more)."""

LEASE = DEFAULT_LEASE
CLOCK_START_TEXT = CLOCK_START.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class TaskState:
    status: str
    lease_owner: str | None
    attempts: int


@pytest.fixture
def client(manual_client: TestClient) -> TestClient:
    """Only the workers of the tests apply tasks."""
    return manual_client


def _state(database: Database, task_id: str) -> TaskState:
    with database.read() as session:
        row = session.execute(
            select(TaskRow.status, TaskRow.lease_owner, TaskRow.attempts).where(
                TaskRow.id == task_id
            )
        ).one()
    return TaskState(row.status, row.lease_owner, row.attempts)


def _rows_of(database: Database, task_id: str | None = None) -> int:
    """Usage rows stored by the task `task_id`, or by anything."""
    query = select(func.count()).select_from(UsageEntryRow)
    if task_id is not None:
        query = query.where(UsageEntryRow.submission_id == task_id)
    with database.read() as session:
        return int(session.execute(query).scalar_one())


def _expire_lease(database: Database, task_id: str) -> None:
    # Leases run on real time, not on the test clock.
    with database.write() as session:
        session.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id)
            .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def _pg_writing_usage(database: Database) -> bool:
    """Whether another PostgreSQL connection is writing usage rows right now."""
    with database.read() as session:
        writing = session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' "
                "AND query ~* '^\\s*(COPY|INSERT\\s+INTO)\\s+\"?usage_entries'"
            )
        ).scalar_one()
    return bool(writing)


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def _inserting_usage(database: Database) -> Callable[[], bool]:
    """A check of whether the worker, whose claim is committed, is inserting usage rows.

    PostgreSQL shows the statement in `pg_stat_activity`. SQLite shows nothing, but a
    transaction larger than its page cache spills uncommitted pages into the write-ahead
    log while it runs: after the claim, the log's next write is the insert at work (and
    not its commit, as the test then checks)."""
    if not database.is_sqlite:
        return lambda: _pg_writing_usage(database)
    wal = Path(f"{database.url.database}-wal")
    before = wal.stat().st_mtime_ns
    return lambda: wal.stat().st_mtime_ns != before


def _large_submission(metered: MeteredSeller) -> bytes:
    """A body of `RECORDS` keyed records over the seller's two contracts."""
    records = [
        record(
            metered.contract_ids[n % 2],
            metered.component_ids[n % 2],
            n % 1_000,
            key=f"vm-{n}",
            dueDate=f"2026-01-{1 + n % 28:02d}T00:00:00Z",
        )
        for n in range(RECORDS)
    ]
    return encode({"consumptions": records})


@pytest.mark.slow
def test_a_worker_killed_while_applying_a_task_leaves_nothing_and_the_next_applies_it_once(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    """Issue 16: the task is applied within twenty seconds of the next worker's start
    (the dead worker's lease lapses within ten seconds of its last renewal)."""
    metered = new_metered_seller(client, contracts=2)
    response = send(client, "POST", metered.bulk_path, metered, _large_submission(metered))
    assert response.status_code == 202, response.text
    task_id = response.json()["taskId"]

    log = tmp_path / "worker.log"
    worker = worker_process(database, log, CLOCK_START_TEXT)
    try:
        _until(lambda: _state(database, task_id).lease_owner is not None, "a worker claims it")
        # kill it while it writes the usage rows, before it commits them
        _until(_inserting_usage(database), "the worker inserts the usage rows")
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert worker.returncode == -signal.SIGKILL

    crashed = _state(database, task_id)
    assert crashed.status == "Processing", f"killed too late to crash mid-task:\n{log.read_text()}"
    assert crashed.lease_owner is not None
    assert crashed.attempts == 1
    assert _rows_of(database, task_id) == 0  # nothing half-applied
    assert _rows_of(database) == 0

    successor = worker_process(database, log, CLOCK_START_TEXT)
    try:
        # A bound on waiting, not a measured speed.
        task = wait_for_task(client, response.headers["Location"], metered.headers, timeout=20)
    finally:
        successor.terminate()
        successor.wait(timeout=30)
    assert (task["message"], task["savedRecords"], task["duplicateRecords"]) == (
        "Successful",
        RECORDS,
        0,
    ), log.read_text()
    assert _state(database, task_id) == TaskState("Successful", None, 2)
    assert _rows_of(database, task_id) == RECORDS
    assert _rows_of(database) == RECORDS


# -- leases -------------------------------------------------------------------------------


def test_a_worker_whose_lease_was_taken_over_cannot_finish_the_task(
    database: Database, clock: TestClock
) -> None:
    task_id = seller_with_waiting_task(database, clock)
    now = datetime.now(UTC)
    with database.write() as session:
        first = TaskQueue(session).claim("worker-a", now, LEASE)
    assert first is not None
    assert first.id == task_id
    with database.write() as session:  # while the lease runs, nobody else gets the task
        assert TaskQueue(session).claim("worker-b", now + LEASE / 2, LEASE) is None
    with database.write() as session:  # once it has expired, another worker takes it over
        second = TaskQueue(session).claim("worker-b", now + LEASE * 2, LEASE)
    assert second is not None
    assert (second.id, second.attempts) == (task_id, 2)

    with pytest.raises(LeaseLost), database.write() as session:
        TaskQueue(session).finish(task_id, "worker-a", Outcome(total_records=0), clock.now())
    assert _state(database, task_id) == TaskState("Processing", "worker-b", 2)
    with database.write() as session:
        TaskQueue(session).finish(task_id, "worker-b", Outcome(total_records=0), clock.now())
    assert _state(database, task_id) == TaskState("Successful", None, 2)


class _TakenOverWhileApplying:
    """The business clock of a worker that another worker overtakes: the first time the
    worker reads the time, after its claim and before its applying transaction begins,
    another worker claims the task as if the first one's lease had lapsed."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self.taken_over = False

    def now(self) -> datetime:
        if not self.taken_over:
            self.taken_over = True
            with self._database.write() as session:
                later = datetime.now(UTC) + LEASE * 2
                assert TaskQueue(session).claim("worker-b", later, LEASE) is not None
        return CLOCK_START


def test_a_task_whose_lease_was_taken_over_while_applying_is_rolled_back(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    metered = new_metered_seller(client)
    records = [record(metered.contract_id, metered.component_id, n, key=f"k-{n}") for n in range(3)]
    location = submit_bulk(client, metered, records)
    task_id = location.rsplit("/", 1)[1]

    overtaken = _TakenOverWhileApplying(database)
    assert run_next_task(database, overtaken, LeaseTerms(), owner="worker-a")
    assert overtaken.taken_over
    assert _rows_of(database) == 0  # worker-a saved nothing
    assert _state(database, task_id) == TaskState("Processing", "worker-b", 2)

    _expire_lease(database, task_id)  # worker-b died too; a third worker finishes the task
    assert Worker(database, clock).run_until_idle() == 1
    task = wait_for_task(client, location, metered.headers, timeout=1)
    assert (task["message"], task["savedRecords"]) == ("Successful", 3)
    assert _rows_of(database, task_id) == 3
