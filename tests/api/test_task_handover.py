"""A bulk submission is handed from its POST to the embedded worker of the same process
(`services.task_handover`): the worker applies it without reading its body back, with
the same outcome."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from arrears.store.tasks import TaskQueue
from tests.ingest_factories import new_metered_seller, record, run_bulk, wait_for_task


def test_the_embedded_worker_applies_a_task_of_its_process_without_reading_the_body_back(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    metered = new_metered_seller(client)
    read_back: list[str] = []
    body = TaskQueue._body

    def spied(queue: TaskQueue, task_id: str) -> Any:
        read_back.append(task_id)
        return body(queue, task_id)

    monkeypatch.setattr(TaskQueue, "_body", spied)
    records = [
        record(metered.contract_id, metered.component_id, n, key=f"k{n}") for n in range(1, 4)
    ]
    task = run_bulk(client, metered, records)
    assert (task["message"], task["savedRecords"]) == ("Successful", 3)
    assert read_back == []


def test_a_key_repeated_in_a_record_handed_over_still_fails_the_task(client: TestClient) -> None:
    # Read on trust, msgspec keeps the last quantity; the check beside the inserts finds
    # the repeat, and the task is applied again from the records the sure way names.
    metered = new_metered_seller(client)
    body = (
        f'{{"consumptions": [{{"subscriptionId": "{metered.contract_id}", '
        f'"productId": "{metered.component_id}", "quantity": 1, "quantity": 2, "key": "k1"}}]}}'
    )
    response = client.post(
        metered.bulk_path,
        content=body.encode(),
        headers={**metered.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    task = wait_for_task(client, response.headers["Location"], metered.headers)
    assert (task["message"], task["savedRecords"]) == ("Failed", 0)
    assert [(e["index"], e["field"], e["code"]) for e in task["errors"]] == [
        (0, "quantity", "duplicate_key")
    ]
