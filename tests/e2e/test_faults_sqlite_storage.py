"""Issue 7: a read-only SQLite file and a full disk give a clear error and no corruption.

A real `arrears serve` runs on the database. While the storage refuses writes, every
write answers `503` problem+json naming the cause, with `Retry-After`; reads keep
working; nothing is half-written. Once the operator has fixed the storage, the same
requests succeed without restarting anything, each stored once, and
`PRAGMA integrity_check` finds the database intact.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.tasks import MAX_ATTEMPTS
from arrears.store import schema
from arrears.store.database import Database
from arrears.worker.runner import Worker
from tests.billing_factories import app_without_worker
from tests.e2e.full_storage import UNCAPPED, fullable_storage
from tests.e2e.served import Launch, Served, served, working
from tests.ingest_factories import (
    MeteredSeller,
    encode,
    new_metered_seller,
    record,
    send,
    wait_for_task,
)

SEEDED = 3
"""Usage entries stored before the storage fails."""


# -- the database -------------------------------------------------------------------------


def _seeded(path: Path, settings: Settings, clock: TestClock) -> MeteredSeller:
    """A migrated database at `path` with a seller, two contracts and `SEEDED` entries."""
    database = Database(f"sqlite:///{path}")
    try:
        schema.upgrade(database)
        with TestClient(app_without_worker(settings, database, clock)) as client:
            metered = new_metered_seller(client, contracts=2)
            records = [
                record(metered.contract_id, metered.component_id, n + 1, key=f"seed-{n}")
                for n in range(SEEDED)
            ]
            answer = send(client, "POST", metered.bulk_path, metered, {"consumptions": records})
            assert answer.status_code == 202, answer.text
            assert Worker(database, clock).run_tasks() == 1
    finally:
        database.dispose()
    return metered


def _query(path: Path, sql: str, *parameters: object) -> list[tuple[Any, ...]]:
    # Read-only: the test must not write to the storage it is checking.
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return connection.execute(sql, parameters).fetchall()


def _stored(path: Path) -> dict[str, int]:
    """How many usage entries each submission (bulk task, or single post) stored."""
    return dict(_query(path, "SELECT submission_id, count(*) FROM usage_entries GROUP BY 1"))


def _task_ids(path: Path, idempotency_key: str) -> list[str]:
    return [
        row[0]
        for row in _query(path, "SELECT id FROM tasks WHERE idempotency_key = ?", idempotency_key)
    ]


def _assert_intact(path: Path) -> None:
    assert _query(path, "PRAGMA integrity_check") == [("ok",)]
    assert _query(path, "PRAGMA foreign_key_check") == []


# -- requests -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    server: Served
    metered: MeteredSeller

    def post_usage(self, key: str, quantity: int = 7) -> httpx.Response:
        body = {
            "ComponentId": self.metered.component_id,
            "Quantity": quantity,
            "DueDate": "2026-01-20T00:00:00Z",
            "Key": key,
        }
        return httpx.post(
            self.server.url + self.metered.usage_path(), json=body, headers=self.metered.headers
        )

    def post_bulk(self, idempotency_key: str, records: int) -> httpx.Response:
        body = _bulk_body(idempotency_key, records, self.metered)
        headers = {
            **self.metered.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
        }
        return httpx.post(
            self.server.url + self.metered.bulk_path, content=body, headers=headers, timeout=60
        )

    def task(self, location: str, timeout: float = 60) -> dict[str, Any]:
        """The task at `location`, once it has finished."""
        deadline = time.monotonic() + timeout
        while True:
            answer = httpx.get(self.server.url + location, headers=self.metered.headers)
            assert answer.status_code == 200, answer.text
            task: dict[str, Any] = answer.json()
            if task["message"] != "Processing":
                return task
            assert time.monotonic() < deadline, f"task still Processing after {timeout} s"
            time.sleep(0.05)


def _bulk_body(idempotency_key: str, records: int, metered: MeteredSeller) -> bytes:
    """`records` records over both contracts, every other one keyed."""
    return encode(
        {
            "consumptions": [
                record(
                    metered.contract_ids[n % 2],
                    metered.component_ids[n % 2],
                    n % 40 + 1,
                    key=f"{idempotency_key}/{n}" if n % 2 else None,
                    dueDate=f"2026-01-{1 + n % 28:02d}T00:00:00Z",
                )
                for n in range(records)
            ]
        }
    )


def _failed_applying_for_full_disk(worker_log: str) -> bool:
    """Whether the log shows a task's application failing for a full disk."""
    return any(
        "in _apply" in failure and "database or disk is full" in failure
        for failure in worker_log.split("worker iteration failed")[1:]
    )


def _assert_refused(answer: httpx.Response, problem: str, cause: str) -> None:
    """A 503 problem+json of type `problem` whose detail names `cause`."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["Retry-After"]) > 0
    body = answer.json()
    assert body["type"].endswith(f"/{problem}"), body
    assert body["status"] == 503
    assert cause in body["detail"], body


def _retried(send_request: Callable[[], httpx.Response]) -> httpx.Response:
    """What a client gets that retries a 503 (without waiting the Retry-After, to keep
    the test short): the first answer that is not a 503, within five tries."""
    for _ in range(5):
        answer = send_request()
        if answer.status_code != 503:
            return answer
    return answer


# -- read-only ----------------------------------------------------------------------------


def _unable_to_override_file_modes() -> tuple[str, ...]:
    """A command prefix under which the server cannot write a file of mode 0444.

    Root writes any file whatever its mode (CAP_DAC_OVERRIDE), so as root the server
    runs without that capability (`setpriv`); another user needs nothing."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot run a server that honours 0444")
    dropped = "-dac_override,-dac_read_search,-fowner"
    return ("setpriv", f"--inh-caps={dropped}", f"--bounding-set={dropped}")


def _chmod_database(path: Path, mode: int) -> None:
    """`chmod` the database file and its write-ahead log and shared-memory files."""
    for file in path.parent.glob(f"{path.name}*"):
        file.chmod(mode)


@pytest.mark.slow
def test_a_read_only_database_answers_writes_503_read_only_and_takes_them_once_writable(
    settings: Settings, clock: TestClock, tmp_path: Path
) -> None:
    """The server starts on a database file of mode 0444, which it cannot write (it runs
    as another user, or as root without CAP_DAC_OVERRIDE). The operator then makes the
    file writable; the server is not restarted."""
    prefix = _unable_to_override_file_modes()
    path = tmp_path / "arrears.db"
    metered = _seeded(path, settings, clock)
    _chmod_database(path, 0o444)
    with served(f"sqlite:///{path}", tmp_path / "server.log", launch=Launch(prefix)) as server:
        api = Api(server, metered)
        # Reads work.
        listed = httpx.get(server.url + metered.usage_path(), headers=metered.headers)
        assert listed.status_code == 200, listed.text
        assert len(listed.json()) == SEEDED
        assert httpx.get(f"{server.url}/readyz").status_code == 200

        # Writes are refused, naming the cause; nothing is stored.
        _assert_refused(api.post_usage("after-1"), "database-read-only", "read-only")
        _assert_refused(api.post_bulk("bulk-1", 10), "database-read-only", "read-only")
        assert _task_ids(path, "bulk-1") == []

        # The operator makes the database writable: the same requests now succeed.
        _chmod_database(path, 0o644)
        posted = _retried(lambda: api.post_usage("after-1"))
        assert posted.status_code == 201, posted.text
        submitted = _retried(lambda: api.post_bulk("bulk-1", 10))
        assert submitted.status_code == 202, submitted.text
        task = api.task(submitted.headers["Location"])
        assert (task["message"], task["savedRecords"]) == ("Successful", 10)
        assert server.process.poll() is None  # never restarted
        log = server.log_text()

    assert "unhandled error" not in log
    _assert_intact(path)
    stored = _stored(path)
    assert stored[task["taskId"]] == 10
    assert sum(stored.values()) == SEEDED + 1 + 10
    assert _query(path, "SELECT count(*) FROM usage_entries WHERE key = 'after-1'") == [(1,)]


# -- disk full ----------------------------------------------------------------------------

APPLIED_LATE = 2_000
"""Records of a task accepted while there is room, and applied when there is none."""
LARGE = 10_000
"""Records of a submission too large to be stored on the full disk: its body is larger
than all the room `fill` leaves (which SQLite may reuse in its write-ahead log after a
write that failed)."""


@pytest.mark.slow
def test_a_full_disk_answers_503_storage_full_applies_nothing_by_halves_and_resumes_once_freed(
    settings: Settings, clock: TestClock, tmp_path: Path
) -> None:
    """The database lives on a small tmpfs that the test fills up (as root; elsewhere
    SQLite's max_page_count caps the database at its size, which fails writes with the
    same SQLITE_FULL): see `tests/e2e/full_storage.py`.

    A task accepted before the disk filled up is then applied by a worker: it fails,
    nothing of it is saved, and it stays waiting (a full disk is no attempt of the
    task's). A large submission is refused. The operator frees space: the task is
    applied, and the refused submission, sent again, is stored once."""
    with fullable_storage(tmp_path) as storage:
        path = storage.database
        url = f"sqlite:///{path}"
        metered = _seeded(path, settings, clock)
        without_worker = Launch(
            storage.launch.prefix,
            storage.launch.module,
            {**(storage.launch.env or {}), "ARREARS_EMBEDDED_WORKER": "false"},
        )
        with served(url, tmp_path / "server.log", launch=without_worker) as server:
            api = Api(server, metered)
            accepted = api.post_bulk("applied-late", APPLIED_LATE)
            assert accepted.status_code == 202, accepted.text
            (late_task,) = _task_ids(path, "applied-late")

            storage.fill(claimable=len(_bulk_body("applied-late", APPLIED_LATE, metered)))
            worker_log = tmp_path / "worker.log"
            with working(url, worker_log, launch=storage.launch) as worker:
                # The worker claims the task, and applying it fails on the full disk.
                deadline = time.monotonic() + 60
                while not _failed_applying_for_full_disk(worker_log.read_text()):
                    assert worker.poll() is None, worker_log.read_text()
                    assert time.monotonic() < deadline, worker_log.read_text()
                    time.sleep(0.05)
                assert late_task not in _stored(path)  # nothing of it saved
                assert _query(path, "SELECT status FROM tasks WHERE id = ?", late_task) == [
                    ("Processing",)
                ]

                _assert_refused(api.post_bulk("large", LARGE), "storage-full", "full")
                assert _task_ids(path, "large") == []
                single = api.post_usage("while-full")
                if single.status_code != 201:  # a small write may still fit
                    _assert_refused(single, "storage-full", "full")

                storage.free()
                task = api.task(accepted.headers["Location"])
                assert (task["message"], task["savedRecords"]) == ("Successful", APPLIED_LATE)
                resent = _retried(lambda: api.post_bulk("large", LARGE))
                assert resent.status_code == 202, resent.text
                large = api.task(resent.headers["Location"])
                assert (large["message"], large["savedRecords"]) == ("Successful", LARGE)
                posted = _retried(lambda: api.post_usage("while-full"))
                assert posted.status_code in (200, 201), posted.text
                assert worker.poll() is None  # never restarted
            assert server.process.poll() is None
            log = server.log_text()

        assert "unhandled error" not in log
        _assert_intact(path)
        stored = _stored(path)
        assert stored[late_task] == APPLIED_LATE
        assert stored[large["taskId"]] == LARGE
        assert len(_task_ids(path, "large")) == 1
        assert _query(path, "SELECT count(*) FROM usage_entries WHERE key = 'while-full'") == [(1,)]
        assert sum(stored.values()) == SEEDED + APPLIED_LATE + LARGE + 1


def test_a_task_failing_for_a_full_disk_waits_for_room_and_is_never_failed_for_it(
    settings: Settings, clock: TestClock, tmp_path: Path
) -> None:
    """In process, with SQLite's page cap for the full disk: a worker tries the task
    more often than MAX_ATTEMPTS while the disk is full. Each try saves nothing and is
    given back (the storage failed, not the task): the task stays waiting, and is applied
    once there is room."""
    path = tmp_path / "arrears.db"
    metered = _seeded(path, settings, clock)
    database = Database(f"sqlite:///{path}")
    cap: list[int] = []

    @event.listens_for(database.engine.pool, "checkout")
    def _cap(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {cap[0] if cap else UNCAPPED}")
        cursor.close()

    try:
        with TestClient(app_without_worker(settings, database, clock)) as client:
            body = _bulk_body("applied-late", APPLIED_LATE, metered)
            key = {"Idempotency-Key": "applied-late"}
            answer = send(client, "POST", metered.bulk_path, metered, body, **key)
            assert answer.status_code == 202, answer.text
            (task_id,) = _task_ids(path, "applied-late")
            ((pages,),), ((page_size,),) = (
                _query(path, "PRAGMA page_count"),
                _query(path, "PRAGMA page_size"),
            )
            cap.append(pages + len(body) // page_size + 16)  # room to claim it, not to apply it

            worker = Worker(database, clock)
            for _ in range(MAX_ATTEMPTS + 2):
                with pytest.raises(OperationalError, match="database or disk is full"):
                    worker.run_tasks()
            assert task_id not in _stored(path)
            assert _query(path, "SELECT status, attempts FROM tasks WHERE id = ?", task_id) == [
                ("Processing", 0)
            ]

            cap.clear()
            assert worker.run_tasks() == 1
            task = wait_for_task(client, answer.headers["Location"], metered.headers, timeout=5)
    finally:
        database.dispose()
    assert (task["message"], task["savedRecords"]) == ("Successful", APPLIED_LATE)
    assert _stored(path)[task_id] == APPLIED_LATE
