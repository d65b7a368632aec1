"""Migrations: `arrears db upgrade` on an empty database, twice, matches the models."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store import schema
from arrears.store.database import Database
from arrears.store.tables import BilledUsageRow, InvoiceLineRow, UsageEntryRow
from tests.billing_factories import (
    Metered,
    app_without_worker,
    bill_interim_at,
    get_invoice,
    new_priced_contract,
    post_usage,
    totals,
    volume,
)
from tests.conftest import POSTGRES_SERVER


@pytest.fixture
def empty_database_url(database_kind: str, tmp_path: Path) -> Iterator[str]:
    if database_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = make_url(POSTGRES_SERVER)
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"arrears_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _arrears(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own console script)
        [sys.executable, "-m", "arrears", *args],
        env={**os.environ, "ARREARS_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_on_an_empty_database_then_again_is_idempotent(
    empty_database_url: str,
) -> None:
    first = _arrears("db", "upgrade", url=empty_database_url)
    assert first.returncode == 0, first.stderr
    second = _arrears("db", "upgrade", url=empty_database_url)
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    check = _arrears("db", "check", url=empty_database_url)
    assert check.returncode == 0, check.stdout + check.stderr


def test_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    try:
        schema.upgrade(database)
        assert schema.pending_differences(database) == []
        assert schema.current_revision(database) is not None
    finally:
        database.dispose()


def _without_parties(invoice: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in invoice.items() if key not in ("Seller", "Customer")}


def test_0011_keeps_every_invoice_amount_exact_down_to_0010_and_up_again(
    empty_database_url: str, settings: Settings, clock: TestClock
) -> None:
    database = Database(empty_database_url)
    try:
        schema.upgrade(database)
        with TestClient(app_without_worker(settings, database, clock)) as client:
            contract = new_priced_contract(
                client,
                None,
                Metered(pricing=volume(("100", "1.00"), (None, "0.10"))),
                tax_rate="19",
            )
            # 50 units at 1.00, then 110 in all at 0.10: the second line takes 39.00 back.
            post_usage(client, contract, "50", "2026-01-02T00:00:00Z")
            first = bill_interim_at(client, contract, "2026-01-03T00:00:00Z")
            post_usage(client, contract, "60.000001", "2026-01-04T00:00:00Z")
            second = bill_interim_at(client, contract, "2026-01-05T00:00:00Z")
            issued = [get_invoice(client, contract.seller, i["Id"]) for i in (first, second)]
            assert [totals(invoice) for invoice in issued] == [
                ("50.00", "19", "9.50", "59.50"),
                ("-39.00", "19", "-7.41", "-46.41"),
            ]

            schema.downgrade(database, "0010")
            with database.read() as session:
                stored = session.execute(
                    text("SELECT subtotal FROM invoices ORDER BY invoice_number")
                ).scalars()
                # The narrower forms: integers of millionths on SQLite, NUMERIC(24, 6).
                assert [Decimal(value) for value in stored] == (
                    [Decimal(50_000_000), Decimal(-39_000_000)]
                    if database.engine.dialect.name == "sqlite"
                    else [Decimal("50.000000"), Decimal("-39.000000")]
                )
            schema.upgrade(database)

            again = [get_invoice(client, contract.seller, i["Id"]) for i in (first, second)]
            # Going below 0014 drops the parties an invoice keeps (0014's downgrade).
            assert [_without_parties(i) for i in again] == [_without_parties(i) for i in issued]
            assert schema.pending_differences(database) == []
    finally:
        database.dispose()


# -- migration 0010: usage ids drawn at random ---------------------------------------------

FAR_APART = 2**32
JANUARY = datetime(2026, 1, 1, tzinfo=UTC)


def _stored_before_0010(database: Database) -> None:
    """Entries numbered 1 to 5 by the old counter (two submissions), 1 and 2 billed on
    one invoice line."""
    entry = {
        "seller_id": "s",
        "contract_id": "c",
        "component_id": "p",
        "quantity": Decimal(1),
        "due_date": JANUARY,
        "transferred_at": JANUARY,
    }
    line = {
        "invoice_id": "inv",
        "position": 0,
        "kind": "Usage",
        "component_id": "p",
        "description": "p",
        "quantity": Decimal(2),
        "free_quantity": Decimal(0),
        "billable_quantity": Decimal(2),
        "late": False,
        "override": False,
        "unit_price": Decimal(1),
        "tiers": [],
        "usage_ids": [1, 2],
        "amount": Decimal(2),
    }
    entries = [
        {**entry, "id": n, "key": f"k{n}", "submission_id": "one" if n < 4 else "two"}
        for n in range(1, 6)
    ]
    with database.write() as session:
        session.execute(insert(UsageEntryRow), entries)
        session.execute(
            insert(BilledUsageRow), [{"usage_id": n, "invoice_id": "inv"} for n in (1, 2)]
        )
        session.execute(insert(InvoiceLineRow), [line, {**line, "position": 1, "usage_ids": []}])


def test_migration_0010_renumbers_stored_usage_and_its_links_at_random(
    empty_database_url: str,
) -> None:
    database = Database(empty_database_url)
    try:
        schema.upgrade(database, "0009")
        _stored_before_0010(database)
        schema.upgrade(database)
        with database.read() as session:
            by_key = dict(session.execute(select(UsageEntryRow.key, UsageEntryRow.id)).all())
            links = dict(
                session.execute(select(BilledUsageRow.usage_id, BilledUsageRow.invoice_id)).all()
            )
            lines = session.execute(
                select(InvoiceLineRow.usage_ids).order_by(InvoiceLineRow.position)
            ).scalars()
            line_ids = list(lines)
        assert all(id_ >= FAR_APART for id_ in by_key.values())
        # Each submission keeps its order; the billed entries stay billed on their line.
        assert by_key["k1"] < by_key["k2"] < by_key["k3"]
        assert by_key["k4"] < by_key["k5"]
        assert links == {by_key["k1"]: "inv", by_key["k2"]: "inv"}
        assert line_ids == [[by_key["k1"], by_key["k2"]], []]
        assert schema.pending_differences(database) == []
    finally:
        database.dispose()
