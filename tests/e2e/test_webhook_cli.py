"""The command line writes webhook events too (issue 20): `arrears invoices credit` in a
real process, with an endpoint subscribed, stores the `creditnote.issued` event in the
credit note's transaction, its data the API's answer for the credit note."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from arrears.store.tables import WebhookEventRow
from tests.billing_factories import app_without_worker
from tests.correction_factories import invoice_of_89_35


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def test_a_credit_note_issued_from_the_command_line_writes_its_event(
    client: TestClient, database: Database
) -> None:
    contract, invoice = invoice_of_89_35(client)
    body = {"Url": "https://hooks.example.invalid/", "Events": ["creditnote.issued"]}
    assert client.post("/api/v1/webhooks", json=body, headers=contract.headers).status_code == 201
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database.url.render_as_string(hide_password=False),
        "ARREARS_TEST_CLOCK": "2026-02-05T00:00:00Z",
    }
    arguments = ["credit", invoice["Id"], "--seller", contract.seller.seller_id]
    done = subprocess.run(  # noqa: S603 (the test's own command)
        [sys.executable, "-m", "arrears", "invoices", *arguments, "--reason", "Typo", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    note = json.loads(done.stdout, parse_float=Decimal)
    with database.read() as session:
        ((event_type, stored),) = session.execute(
            select(WebhookEventRow.type, WebhookEventRow.body)
        ).all()
    sent = json.loads(stored, parse_float=Decimal)
    assert (event_type, sent["type"]) == ("creditnote.issued", "creditnote.issued")
    answer = client.get(f"/api/v1/creditnotes/{note['Id']}", headers=contract.headers)
    assert sent["data"] == json.loads(answer.text, parse_float=Decimal)
