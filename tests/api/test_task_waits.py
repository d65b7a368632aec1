"""`GET .../bulkconsumptions/{taskId}?wait=N`: the answer is held while the task is
Processing, and comes as soon as it finishes, or with Processing after N seconds."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

from fastapi.testclient import TestClient

from arrears.api.task_waits import MAX_WAIT_SECONDS, TaskWaits
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from arrears.worker.runner import Worker
from tests.ingest_factories import (
    MeteredSeller,
    new_metered_seller,
    problem,
    record,
    submit_bulk,
    wait_for_task,
)


def _submitted(client: TestClient) -> tuple[MeteredSeller, str]:
    metered = new_metered_seller(client)
    records = [record(metered.contract_id, metered.component_id, Decimal("2.5"), key="vm-1")]
    return metered, submit_bulk(client, metered, records)


def _worker_later(worker: Worker, seconds: float) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        worker.run_tasks()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_wait_is_answered_with_the_outcome_when_this_process_worker_finishes_the_task(
    manual_client: TestClient, database: Database, clock: TestClock
) -> None:
    metered, location = _submitted(manual_client)
    waits = manual_client.app.state.context.task_waits  # type: ignore[attr-defined]
    worker = Worker(database, clock, on_task_finished=waits.task_finished)
    thread = _worker_later(worker, 0.5)
    task = manual_client.get(location, params={"wait": 10}, headers=metered.headers).json()
    thread.join()
    assert (task["message"], task["savedRecords"]) == ("Successful", 1)


def test_a_wait_sees_a_task_finished_by_a_worker_of_another_process(
    manual_client: TestClient, database: Database, clock: TestClock
) -> None:
    metered, location = _submitted(manual_client)
    thread = _worker_later(Worker(database, clock), 0.5)  # nobody tells the request
    task = manual_client.get(location, params={"wait": 10}, headers=metered.headers).json()
    thread.join()
    assert (task["message"], task["savedRecords"]) == ("Successful", 1)


def test_a_task_still_processing_after_the_wait_is_answered_processing(
    manual_client: TestClient,
) -> None:
    metered, location = _submitted(manual_client)
    started = time.monotonic()
    response = manual_client.get(location, params={"wait": 1}, headers=metered.headers)
    assert response.status_code == 200
    assert response.json()["message"] == "Processing"
    assert time.monotonic() - started >= 1  # it did wait


def test_a_finished_task_is_answered_at_once_whatever_the_wait(client: TestClient) -> None:
    metered, location = _submitted(client)
    wait_for_task(client, location, metered.headers)
    started = time.monotonic()
    task = client.get(location, params={"wait": MAX_WAIT_SECONDS}, headers=metered.headers)
    assert task.json()["message"] == "Successful"
    assert time.monotonic() - started < MAX_WAIT_SECONDS / 2  # not held for the wait


def test_a_wait_outside_zero_to_the_maximum_or_not_a_whole_number_is_422(
    manual_client: TestClient,
) -> None:
    metered, location = _submitted(manual_client)
    for wait in ("-1", str(MAX_WAIT_SECONDS + 1), "1.5", "soon"):
        response = manual_client.get(location, params={"wait": wait}, headers=metered.headers)
        assert [e["field"] for e in problem(response, 422)["errors"]] == ["wait"], wait


def test_waiting_on_another_sellers_task_is_404_at_once(manual_client: TestClient) -> None:
    _, location = _submitted(manual_client)
    bob = new_metered_seller(manual_client, name="Bob")
    foreign = f"{bob.bulk_path}/{location.rsplit('/', 1)[1]}"
    started = time.monotonic()
    problem(manual_client.get(foreign, params={"wait": MAX_WAIT_SECONDS}, headers=bob.headers), 404)
    assert time.monotonic() - started < MAX_WAIT_SECONDS / 2


def test_a_task_finished_in_another_thread_wakes_every_waiting_request() -> None:
    waits = TaskWaits()

    async def two_waiting() -> None:
        with waits.watching() as first, waits.watching() as second:
            threading.Timer(0.1, waits.task_finished).start()
            await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 5)

    asyncio.run(two_waiting())  # a TimeoutError if either were not woken
