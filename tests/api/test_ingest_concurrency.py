"""Ingestion under concurrency (SPEC §5, §6, CONVENTIONS "Storage"): the database, not
the code path, stores a key once, whoever races for it.

Two kinds of tests: real races (threads submitting and workers applying at once), and
races made deterministic by holding a write transaction open while a request or worker
runs into it, which is how a second writer sees the world between another's insert and
its commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.ids import new_id
from arrears.domain.usage import UsageCandidate
from arrears.store.database import Database
from arrears.store.tables import TaskRow, UsageEntryRow
from arrears.store.tasks import TaskRepository
from arrears.store.usage import UsageRepository
from arrears.worker.runner import Worker
from tests.billing_factories import app_without_worker
from tests.ingest_factories import (
    MeteredSeller,
    encode,
    new_metered_seller,
    record,
    send,
    submit_bulk,
    usage,
    wait_for_task,
)
from tests.threads import all_at_once, until_blocked

T = TypeVar("T")

DUE = "2026-01-15T00:00:00Z"
DUE_DATE = datetime(2026, 1, 15, tzinfo=UTC)


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _rows(database: Database) -> list[tuple[str, str | None]]:
    with database.read() as session:
        rows = session.execute(select(UsageEntryRow.contract_id, UsageEntryRow.key)).all()
    return [(contract_id, key) for contract_id, key in rows]


def _task_statuses(database: Database) -> list[str]:
    with database.read() as session:
        return list(session.execute(select(TaskRow.status)).scalars())


# -- real races ---------------------------------------------------------------------------


def test_concurrent_submissions_applied_by_concurrent_workers_store_each_key_once(
    app: FastAPI, client: TestClient, database: Database, clock: TestClock
) -> None:
    metered = new_metered_seller(client, contracts=2)
    submitters, per_submission, step = 4, 500, 250  # neighbours share half their keys

    def records(submitter: int) -> list[dict[str, Any]]:
        numbers = range(submitter * step, submitter * step + per_submission)
        # a key's record is the same in every submission that holds it
        return [
            record(
                metered.contract_ids[n % 2],
                metered.component_ids[n % 2],
                Decimal(n) / 8,
                key=f"vm-{n}",
            )
            for n in numbers
        ]

    def submit(submitter: int) -> str:
        body = {"consumptions": records(submitter)}
        response = send(TestClient(app), "POST", metered.bulk_path, metered, body)
        assert response.status_code == 202, response.text
        location: str = response.headers["Location"]
        return location

    locations = all_at_once(submitters, submit)
    assert len(set(locations)) == submitters

    handled = all_at_once(3, lambda _: Worker(database, clock).run_until_idle())
    assert sum(handled) >= submitters

    tasks = [wait_for_task(client, location, metered.headers, timeout=1) for location in locations]
    distinct = (submitters - 1) * step + per_submission  # 1,250 keys in 2,000 records
    assert [task["message"] for task in tasks] == ["Successful"] * submitters
    assert sum(task["savedRecords"] for task in tasks) == distinct
    assert sum(task["duplicateRecords"] for task in tasks) == submitters * per_submission - distinct
    rows = _rows(database)
    assert len(rows) == distinct
    assert len(set(rows)) == distinct
    assert _task_statuses(database) == ["Successful"] * submitters


def test_concurrent_posts_with_the_same_key_store_one_entry(
    app: FastAPI, client: TestClient, database: Database
) -> None:
    metered = new_metered_seller(client)
    payload = encode(usage(metered.component_id, 5, Key="vm-42", DueDate=DUE))

    def post(_: int) -> tuple[int, str]:
        response = send(TestClient(app), "POST", metered.usage_path(), metered, payload)
        assert response.status_code in (200, 201), response.text
        return response.status_code, response.json()["Id"]

    answers = all_at_once(8, post)
    assert sorted(status for status, _ in answers) == [200] * 7 + [201]
    assert len({id_ for _, id_ in answers}) == 1
    assert len(_rows(database)) == 1


# -- races made deterministic -------------------------------------------------------------


@contextmanager
def _held(database: Database) -> Iterator[Session]:
    """A write transaction that stays open (uncommitted) until the block ends."""
    with database.write() as session:
        yield session


def _store(session: Session, metered: MeteredSeller, key: str, quantity: int = 5) -> None:
    candidate = UsageCandidate(
        contract_id=metered.contract_id,
        component_id=metered.component_id,
        quantity=Decimal(quantity),
        due_date=DUE_DATE,
        key=key,
    )
    repository = UsageRepository(session, metered.seller_id)
    assert repository.insert_new([candidate], submission_id=new_id(), transferred_at=DUE_DATE)


def _meanwhile(work: Callable[[], T]) -> Future[T]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def test_a_post_racing_an_uncommitted_entry_with_its_key_answers_200_with_that_entry(
    app: FastAPI, client: TestClient, database: Database
) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, 5, Key="vm-42", DueDate=DUE)
    with _held(database) as session:
        _store(session, metered, "vm-42")
        racing = _meanwhile(
            lambda: send(TestClient(app), "POST", metered.usage_path(), metered, payload)
        )
        until_blocked(database)
    response = racing.result(timeout=30)
    assert response.status_code == 200, response.text
    assert len(_rows(database)) == 1
    assert response.json()["Id"] == str(_stored_id(database))


def test_a_post_racing_an_uncommitted_entry_with_its_key_and_other_values_is_409(
    app: FastAPI, client: TestClient, database: Database
) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, 6, Key="vm-42", DueDate=DUE)
    with _held(database) as session:
        _store(session, metered, "vm-42", quantity=5)
        racing = _meanwhile(
            lambda: send(TestClient(app), "POST", metered.usage_path(), metered, payload)
        )
        until_blocked(database)
    response = racing.result(timeout=30)
    assert response.status_code == 409, response.text
    assert len(_rows(database)) == 1


def test_a_put_racing_an_uncommitted_entry_with_its_key_counts_it_as_a_duplicate(
    app: FastAPI,
    client: TestClient,
    database: Database,
) -> None:
    metered = new_metered_seller(client)
    body = {
        "subscriptionId": metered.contract_id,
        "consumptions": [
            {"productId": metered.component_id, "quantity": 5, "dueDate": DUE, "key": "vm-42"},
            {"productId": metered.component_id, "quantity": 1, "dueDate": DUE, "key": "vm-43"},
        ],
    }
    with _held(database) as session:
        _store(session, metered, "vm-42")
        racing = _meanwhile(
            lambda: send(TestClient(app), "PUT", metered.consumptions_path, metered, body)
        )
        until_blocked(database)
    response = racing.result(timeout=30)
    assert response.status_code == 200, response.text
    # The answer shows the entries the records stand for: the one stored meanwhile too.
    assert [c["key"] for c in response.json()["consumptions"]] == ["vm-42", "vm-43"]
    assert sorted(key or "" for _, key in _rows(database)) == ["vm-42", "vm-43"]


def test_a_task_racing_an_uncommitted_entry_with_one_of_its_keys_is_validated_again(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    metered = new_metered_seller(client)
    records = [
        record(metered.contract_id, metered.component_id, 5, key="vm-42", dueDate=DUE),
        record(metered.contract_id, metered.component_id, 1, key="vm-43", dueDate=DUE),
    ]
    location = submit_bulk(client, metered, records)
    with _held(database) as session:
        _store(session, metered, "vm-42")
        worker = _meanwhile(Worker(database, clock).run_until_idle)
        until_blocked(database)
    assert worker.result(timeout=30) == 1
    task = wait_for_task(client, location, metered.headers, timeout=1)
    assert (task["message"], task["savedRecords"], task["duplicateRecords"]) == (
        "Successful",
        1,
        1,
    )
    assert len(_rows(database)) == 2


def test_a_task_deadlocked_with_another_writer_is_applied_without_waiting_for_its_lease(
    client: TestClient,
    database: Database,
    clock: TestClock,
    request: pytest.FixtureRequest,
    database_kind: str,
) -> None:
    metered = new_metered_seller(client)
    records = [
        record(metered.contract_id, metered.component_id, 5, key="vm-a", dueDate=DUE),
        record(metered.contract_id, metered.component_id, 5, key="vm-b", dueDate=DUE),
    ]
    location = submit_bulk(client, metered, records)
    # another writer stores the same keys in the opposite order: b, then (below) a
    with _held(database) as session:
        _store(session, metered, "vm-b")
        worker = _meanwhile(Worker(database, clock).run_until_idle)
        until_blocked(database)  # the worker holds vm-a and waits for vm-b
        _store(session, metered, "vm-a")
    assert worker.result(timeout=30) == 1
    task = wait_for_task(client, location, metered.headers, timeout=1)
    assert (task["message"], task["savedRecords"], task["duplicateRecords"]) == (
        "Successful",
        0,
        2,
    )
    assert len(_rows(database)) == 2


def test_a_repeated_idempotency_key_racing_the_first_submission_returns_the_first_task(
    app: FastAPI,
    client: TestClient,
    database: Database,
    request: pytest.FixtureRequest,
    database_kind: str,
) -> None:
    metered = new_metered_seller(client)
    body = encode({"consumptions": [record(metered.contract_id, metered.component_id, 1)]})
    first_id = new_id()
    with _held(database) as session:
        TaskRepository(session, metered.seller_id).add(
            task_id=first_id,
            body=body,
            body_sha256=hashlib.sha256(body).hexdigest(),
            idempotency_key="i-1",
            total_records=1,
            created_at=DUE_DATE,
        )
        racing = _meanwhile(
            lambda: send(
                TestClient(app),
                "POST",
                metered.bulk_path,
                metered,
                body,
                **{"Idempotency-Key": "i-1"},
            )
        )
        until_blocked(database)
    response = racing.result(timeout=30)
    assert response.status_code == 202, response.text
    assert response.json()["taskId"] == first_id
    assert len(_task_statuses(database)) == 1


def _stored_id(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.min(UsageEntryRow.id))).scalar_one())
