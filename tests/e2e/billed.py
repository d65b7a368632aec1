"""What a database holds as billed, in a form two databases can be compared by: the
tests that interrupt billing compare what it issued with what an uninterrupted run
issues on a twin of the database."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from arrears.store.database import Database
from arrears.store.tables import BilledUsageRow, InvoiceLineRow, InvoiceRow, UsageEntryRow

__all__ = [
    "Invoices",
    "assert_each_entry_billed_once",
    "assert_gapless",
    "bill_process",
    "invoice_count",
    "invoices",
    "twin_of",
    "unbilled_count",
    "worker_process",
]

Invoices = dict[str, list[tuple[Any, ...]]]
"""Per contract, its invoices as (kind, period start, period end, subtotal, tax, total,
lines) in period order; everything but ids, numbers and the document date."""


def invoices(database: Database, *, numbered: bool = False) -> tuple[Invoices, list[str]]:
    """Every contract's invoices (`Invoices`, each with its number first if `numbered`),
    and every invoice number."""
    with database.read() as session:
        rows = session.execute(select(InvoiceRow)).scalars().all()
        lines: dict[str, list[tuple[Any, ...]]] = {row.id: [] for row in rows}
        for line in session.execute(
            select(InvoiceLineRow).order_by(InvoiceLineRow.invoice_id, InvoiceLineRow.position)
        ).scalars():
            lines[line.invoice_id].append(
                (
                    line.kind,
                    line.component_id,
                    line.description,
                    line.quantity,
                    line.free_quantity,
                    line.billable_quantity,
                    line.late,
                    line.amount,
                    tuple(line.usage_ids),
                )
            )
        by_contract: Invoices = {}
        for row in sorted(rows, key=lambda r: r.period_start):
            by_contract.setdefault(row.contract_id, []).append(
                (
                    *((row.invoice_number,) if numbered else ()),
                    row.kind,
                    row.period_start,
                    row.period_end,
                    row.subtotal,
                    row.tax_amount,
                    row.total,
                    tuple(lines[row.id]),
                )
            )
        numbers = [row.invoice_number for row in rows]
    return by_contract, numbers


def bill_process(database: Database, log: Path, billing_time: str) -> subprocess.Popen[bytes]:
    """A real `arrears bill` on `database` with the test clock at `billing_time`, its
    output appended to `log`."""
    return _arrears_process(["bill"], database, log, billing_time)


def worker_process(database: Database, log: Path, now: str) -> subprocess.Popen[bytes]:
    """A real `arrears worker` (tasks and billing, polling five times a second) on
    `database` with the test clock at `now`, its output appended to `log`; leases
    as configured by default."""
    return _arrears_process(["worker", "--poll", "0.2"], database, log, now)


def _arrears_process(
    command: list[str], database: Database, log: Path, now: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database.url.render_as_string(hide_password=False),
        "ARREARS_TEST_CLOCK": now,
        "ARREARS_LOG_FORMAT": "text",
    }
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (the test's own commands)
            [sys.executable, "-m", "arrears", *command], env=env, stdout=out, stderr=out
        )


def invoice_count(database: Database) -> int:
    with database.read() as session:
        return int(session.execute(select(func.count()).select_from(InvoiceRow)).scalar_one())


def unbilled_count(database: Database) -> int:
    with database.read() as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(UsageEntryRow)
                .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
                .where(BilledUsageRow.usage_id.is_(None))
            ).scalar_one()
        )


def assert_gapless(numbers: list[str]) -> None:
    """The invoice numbers' sequences are exactly 1..N."""
    sequence = sorted(int(number.rsplit("-", 1)[1]) for number in numbers)
    assert sequence == list(range(1, len(numbers) + 1))


def assert_each_entry_billed_once(database: Database) -> None:
    """Every billed usage entry is on exactly one line, of the invoice it links to."""
    with database.read() as session:
        entries = dict(
            session.execute(select(BilledUsageRow.usage_id, BilledUsageRow.invoice_id)).all()
        )
        stored = set(session.execute(select(UsageEntryRow.id)).scalars())
        on_lines = Counter(
            (invoice_id, usage_id)
            for invoice_id, usage_ids in session.execute(
                select(InvoiceLineRow.invoice_id, InvoiceLineRow.usage_ids)
            )
            for usage_id in usage_ids
        )
    assert set(entries) <= stored
    assert set(on_lines.values()) <= {1}
    assert sorted(usage_id for _, usage_id in on_lines) == sorted(entries)
    assert {(invoice_id, usage_id) for usage_id, invoice_id in entries.items()} == set(on_lines)


@contextmanager
def twin_of(database: Database, server: str) -> Iterator[Database]:
    """A copy of `database` as it is now, removed afterwards. A PostgreSQL database is
    copied on its server (`server`: a SQLAlchemy URL of it, for the admin connection)."""
    database.dispose()  # no connection may be open on the database copied
    if database.is_sqlite:
        source = Path(database.url.database or "")
        target = source.with_name(f"twin-{source.name}")
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{source}{suffix}").exists():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
        copy = Database(f"sqlite:///{target}")
        try:
            yield copy
        finally:
            copy.dispose()
        return
    name = f"arrears_twin_{uuid.uuid4().hex[:12]}"
    conninfo = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        # PostgreSQL copies only a database nobody is connected to.
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database.url.database,),
        )
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{database.url.database}"')
    copy = Database(database.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield copy
    finally:
        copy.dispose()
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
