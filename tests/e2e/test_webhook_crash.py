"""SPEC §13, "at least once, never lost" (issue 20): a real `arrears serve` killed with
SIGKILL loses no event. A task whose application was cut off by the kill (its
transaction rolled back) has no event; once applied, it has exactly one, which a
server killed again before delivering it still delivers after its restart. On SQLite
and PostgreSQL, to a receiving server on loopback, verified with `standardwebhooks`."""

from __future__ import annotations

import signal
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from arrears.config import Settings
from arrears.domain.clock import utc_text
from arrears.domain.webhooks import DeliveryStatus
from arrears.store.database import Database
from arrears.store.tables import WebhookDeliveryRow, WebhookEventRow
from tests.conftest import CLOCK_START
from tests.e2e.served import Launch, served
from tests.e2e.test_task_crash import _inserting_usage, _large_submission, _state, _until
from tests.ingest_factories import new_metered_seller, send
from tests.webhook_receiver import receiving


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True})


def _count(database: Database, status: DeliveryStatus | None = None) -> int:
    query = select(func.count()).select_from(WebhookDeliveryRow)
    if status is not None:
        query = query.where(WebhookDeliveryRow.status == status.value)
    with database.read() as session:
        return int(session.execute(query).scalar_one())


def _events(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(WebhookEventRow)).scalar_one())


@pytest.mark.slow
def test_a_killed_server_loses_no_event_and_a_rolled_back_task_has_none(
    manual_client: TestClient, database: Database, settings: Settings, tmp_path: Path
) -> None:
    client = manual_client  # sets up over HTTP in this process; only `serve` applies
    launch = Launch(
        env={
            "ARREARS_WEBHOOKS_ALLOW_PRIVATE": "1",
            "ARREARS_WEBHOOKS_SECRETS_KEY": str(settings.webhooks_secrets_key),
        }
    )
    url = database.url.render_as_string(hide_password=False)
    log = tmp_path / "serve.log"
    metered = new_metered_seller(client, contracts=2)
    with receiving() as receiver:
        receiver.down()  # refuses connections until it is brought up
        body = {"Url": receiver.url, "Events": ["bulkconsumption.succeeded"]}
        webhook = client.post("/api/v1/webhooks", json=body, headers=metered.headers).json()
        submitted = send(client, "POST", metered.bulk_path, metered, _large_submission(metered))
        task_id = submitted.json()["taskId"]

        # 1. Killed while it applies the task: rolled back, no event.
        with served(url, log, launch=launch) as server:
            _until(lambda: _state(database, task_id).lease_owner is not None, "a claim")
            _until(_inserting_usage(database), "the server inserts the usage rows")
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
        assert _state(database, task_id).status == "Processing", log.read_text()
        assert _events(database) == 0

        # 2. Applied after the restart: one event, whose first attempt fails (the receiver
        # is down); killed before the next attempt, which the test clock holds back.
        with served(url, log, launch=launch) as server:
            _until(lambda: _count(database, DeliveryStatus.FAILED) == 1, "a failed attempt")
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
        assert _events(database) == 1
        assert _count(database, DeliveryStatus.PENDING) == 1

        # 3. Restarted five seconds later on the test clock, the receiver up: delivered.
        receiver.up()
        later = utc_text(CLOCK_START + timedelta(seconds=5))
        with served(url, log, clock=later, launch=launch):
            _until(lambda: len(receiver.received) == 1, "the event is delivered")
            _until(lambda: _count(database, DeliveryStatus.SUCCEEDED) == 1, "it is recorded")
    (received,) = receiver.received
    event = received.verified(webhook["Secret"])
    assert event["type"] == "bulkconsumption.succeeded"
    assert event["data"]["taskId"] == task_id
    assert event["data"]["savedRecords"] == 50_000
    assert _events(database) == 1
