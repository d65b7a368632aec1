"""SPEC §10 from the command line: `arrears invoices credit|pay|void` in a real process,
and a void killed with SIGKILL half-way, which leaves either nothing or everything done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.credit_notes import LineCredit
from arrears.services.corrections import issue_credit_note
from arrears.store.database import Database
from tests.billing_factories import (
    app_without_worker,
    bill_at,
    get_contract,
    get_invoice,
    invoices_of,
    usage_entries,
)
from tests.correction_factories import as_issued, credit, invoice_of_89_35
from tests.threads import until_blocked

NOW = "2026-02-05T00:00:00Z"


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _arrears(database: Database, *arguments: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database.url.render_as_string(hide_password=False),
        "ARREARS_TEST_CLOCK": NOW,
    }
    return subprocess.Popen(  # noqa: S603 (the test's own command)
        [sys.executable, "-m", "arrears", "invoices", *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _json_of(database: Database, *arguments: str) -> Any:
    process = _arrears(database, *arguments, "--json")
    out, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return json.loads(out, parse_float=Decimal)


def test_an_operator_credits_records_a_payment_and_voids(
    client: TestClient, database: Database
) -> None:
    contract, invoice = invoice_of_89_35(client)
    seller = contract.seller.seller_id

    note = _json_of(
        database,
        "credit",
        invoice["Id"],
        "--seller",
        seller,
        "--reason",
        "Typo",
        "--line",
        "2=2.50",
    )
    payment = _json_of(
        database, "pay", invoice["Id"], "--seller", seller, "--amount", "3.35",
        "--reference", "SEPA-1",
    )  # fmt: skip
    refused = _arrears(database, "void", invoice["Id"], "--seller", seller, "--reason", "Oops")
    _, errors = refused.communicate(timeout=60)

    assert (note["CreditNoteNumber"], note["Total"]) == ("INV-CN-2026-000001", Decimal("2.98"))
    assert (payment["Amount"], payment["Reference"]) == (Decimal("3.35"), "SEPA-1")
    assert refused.returncode == 1
    assert "credit it instead" in " ".join(errors.split())


def test_a_void_killed_half_way_leaves_nothing_done_and_then_everything(
    client: TestClient, database: Database, clock: TestClock
) -> None:
    contract, invoice = invoice_of_89_35(client)
    _, other = invoice_of_89_35(client, contract.seller)
    seller = contract.seller.seller_id
    credit(client, contract, other["Id"], (0, "1.00"))  # the year's sequence row exists
    before = (get_contract(client, contract), usage_entries(client, contract))

    # Hold the seller's credit note sequence: the void takes its locks, unbills the
    # usage, moves the contract back, and waits there for its credit note's number.
    with database.unit_of_work(seller) as work:
        issue_credit_note(
            work, clock, other["Id"], reason="Held", lines=[LineCredit(0, Decimal(1))]
        )
        voiding = _arrears(database, "void", invoice["Id"], "--seller", seller, "--reason", "X")
        until_blocked(database)
        if database.is_sqlite:
            _wait_started(voiding)
        voiding.send_signal(signal.SIGKILL)
        voiding.communicate(timeout=30)
        work.session.rollback()

    assert voiding.returncode == -signal.SIGKILL
    assert (get_contract(client, contract), usage_entries(client, contract)) == before
    assert get_invoice(client, contract.seller, invoice["Id"]) == invoice
    assert _credit_notes_of(database, invoice["Id"]) == 0

    voided = _json_of(database, "void", invoice["Id"], "--seller", seller, "--reason", "Again")
    assert as_issued(voided) == as_issued(invoice)
    assert _credit_notes_of(database, invoice["Id"]) == 1
    assert [e["InvoiceId"] for e in usage_entries(client, contract)] == [None, None]
    assert bill_at(client, "2026-02-06T00:00:00Z")["invoices"] == 1
    assert invoices_of(client, contract)[-1]["Total"] == invoice["Total"]


def _wait_started(process: subprocess.Popen[str]) -> None:
    """SQLite shows no waiting writer: give the process time to start and reach the
    database (it waits there, in its busy handler, for the test's transaction)."""
    try:
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        return


def _credit_notes_of(database: Database, invoice_id: str) -> int:
    with database.read() as session:
        query = text("SELECT count(*) FROM credit_notes WHERE invoice_id = :id")
        count: int = session.execute(query, {"id": invoice_id}).scalar_one()
    return count
