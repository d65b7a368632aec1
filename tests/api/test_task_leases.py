"""Issue 16: a worker renews the lease of the task it applies; a dead worker's lapses.

Leases run on their own clock (real time in service); here it is a test clock that the
tests move, while the heartbeat beats every hundredth of a second of real time. Waits
are bounds, never measured speeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import select

from arrears.domain.clock import TestClock
from arrears.services.leases import LeaseTerms, task_heartbeat
from arrears.services.tasks import run_next_task
from arrears.store.database import Database
from arrears.store.tables import TaskRow
from arrears.store.tasks import ClaimedTask, TaskQueue
from tests.conftest import CLOCK_START
from tests.ingest_factories import seller_with_waiting_task

TEN_SECONDS = timedelta(seconds=10)
EIGHT_SECONDS = timedelta(seconds=8)
A_HUNDREDTH = timedelta(milliseconds=10)


def _terms(lease_clock: TestClock) -> LeaseTerms:
    return LeaseTerms(length=TEN_SECONDS, renew_every=A_HUNDREDTH, clock=lease_clock)


def _expiry(database: Database, task_id: str) -> datetime | None:
    with database.read() as session:
        return session.execute(
            select(TaskRow.lease_expires_at).where(TaskRow.id == task_id)
        ).scalar_one()


def _claim(database: Database, owner: str, now: datetime) -> ClaimedTask | None:
    with database.write() as session:
        return TaskQueue(session).claim(owner, now, TEN_SECONDS)


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20  # a bound on waiting on a loaded machine
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def test_a_live_workers_lease_is_renewed_past_its_first_expiry_and_a_dead_ones_lapses(
    database: Database, clock: TestClock
) -> None:
    task_id = seller_with_waiting_task(database, clock)
    lease_clock = TestClock(CLOCK_START)
    assert _claim(database, "worker-a", CLOCK_START) is not None
    assert _expiry(database, task_id) == CLOCK_START + TEN_SECONDS

    with task_heartbeat(database, task_id, "worker-a", _terms(lease_clock)):
        lease_clock.move_to(CLOCK_START + EIGHT_SECONDS)
        _until(
            lambda: _expiry(database, task_id) == CLOCK_START + EIGHT_SECONDS + TEN_SECONDS,
            "the heartbeat renews the lease",
        )
        past_first_expiry = CLOCK_START + timedelta(seconds=12)
        lease_clock.move_to(past_first_expiry)
        assert _claim(database, "worker-b", past_first_expiry) is None
    # worker-a dies: nothing renews its lease any more
    last_expiry = _expiry(database, task_id)
    assert last_expiry is not None
    assert last_expiry >= CLOCK_START + EIGHT_SECONDS + TEN_SECONDS
    assert _claim(database, "worker-b", last_expiry - timedelta(seconds=1)) is None
    taken_over = _claim(database, "worker-b", last_expiry + timedelta(seconds=1))
    assert taken_over is not None
    assert (taken_over.id, taken_over.attempts) == (task_id, 2)


def test_a_heartbeat_renews_nothing_once_another_worker_took_the_task_over(
    database: Database, clock: TestClock
) -> None:
    task_id = seller_with_waiting_task(database, clock)
    assert _claim(database, "worker-a", CLOCK_START) is not None
    later = CLOCK_START + timedelta(minutes=1)
    assert _claim(database, "worker-b", later) is not None  # worker-a's lease had lapsed

    heartbeat = task_heartbeat(database, task_id, "worker-a", _terms(TestClock(later)))
    heartbeat.beat()
    assert heartbeat.lost
    assert _expiry(database, task_id) == later + TEN_SECONDS  # worker-b's, untouched


def test_a_worker_renews_its_lease_while_it_applies_a_task(
    database: Database, clock: TestClock
) -> None:
    task_id = seller_with_waiting_task(database, clock)
    lease_clock = TestClock(CLOCK_START)

    class _SlowToApply:
        """A business clock read while the task is applied (before its transaction):
        eight seconds of lease time pass, and the worker goes on only once its lease
        was renewed past the first expiry."""

        def now(self) -> datetime:
            if lease_clock.now() == CLOCK_START:
                lease_clock.move_to(CLOCK_START + EIGHT_SECONDS)
                _until(
                    lambda: _expiry(database, task_id) == CLOCK_START + EIGHT_SECONDS + TEN_SECONDS,
                    "the heartbeat renews the lease while the task is applied",
                )
            return clock.now()

    assert run_next_task(database, _SlowToApply(), _terms(lease_clock), owner="worker-a")
    with database.read() as session:
        status = session.execute(select(TaskRow.status).where(TaskRow.id == task_id)).scalar_one()
    assert status == "Successful"


def test_the_transaction_applying_a_task_holds_it_even_after_its_lease_lapsed(
    database: Database, clock: TestClock
) -> None:
    """The heartbeat pauses while the applying transaction runs (on SQLite it could not
    write before that transaction ends): the transaction holds the task itself. On
    PostgreSQL the task's row, locked by its first statement, is skipped by claims; on
    SQLite a claim waits for the write lock, and then finds the task finished."""
    task_id = seller_with_waiting_task(database, clock)
    long_after = CLOCK_START + timedelta(hours=1)
    rivals = ThreadPoolExecutor(1)
    rival: list[Future[ClaimedTask | None]] = []

    class _RivalClaimsAtTheOutcome:
        """A business clock: read a second time for the outcome's completion time, inside
        the applying transaction, it has another worker claim the task as if the lease
        had lapsed an hour ago."""

        reads = 0

        def now(self) -> datetime:
            self.reads += 1
            if self.reads == 2:
                rival.append(rivals.submit(_claim, database, "worker-b", long_after))
                if not database.is_sqlite:  # on SQLite it waits for this transaction
                    assert rival[0].result(timeout=20) is None
            return clock.now()

    with rivals:
        applied = run_next_task(
            database, _RivalClaimsAtTheOutcome(), _terms(TestClock(CLOCK_START)), owner="worker-a"
        )
        assert applied
        assert rival[0].result(timeout=60) is None
    with database.read() as session:
        row = session.execute(
            select(TaskRow.status, TaskRow.attempts).where(TaskRow.id == task_id)
        ).one()
    assert tuple(row) == ("Successful", 1)
