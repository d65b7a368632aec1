"""Billing: one scheduler run over many contracts with a month of usage each.

For each database, on a fresh migrated database (a temporary SQLite file, or a new
PostgreSQL database that is dropped at the end):

- built directly, not timed: one seller, two components (storage: per unit with a
  free quota; API calls: graduated), one monthly plan variant with a recurring fee,
  `--contracts` customers and contracts starting 2026-01-01, and `--entries` usage
  entries per contract due in January, written with a driver-level `executemany`
  (SQLite) or `COPY` (PostgreSQL) in the forms the column types store
  (`ExactDecimal.to_driver`, `UTCDateTime.to_driver`);
- baseline, timed: one `SELECT contract_id, component_id, SUM(quantity) ... GROUP BY
  contract_id, component_id` over the same rows, on the same database;
- timed: `services.billing.run_billing(database, TestClock(2026-02-01))`, the path
  the scheduler takes;
- checked afterwards: every entry is linked to an invoice of its own contract, there
  is one invoice per contract, the invoice numbers are 1..n without a gap, and the
  invoices' usage quantities add up to the entries' quantities.

    .venv/bin/python bench/bench_billing.py [--db sqlite|postgresql|both]
        [--contracts 10000] [--entries 100]

Ratio = baseline seconds / billing seconds (1.0 would be billing as fast as the bare
aggregate). Targets are reported, not asserted: the script exits 0 whenever it ran and
the checks held. With fewer contracts than the target's 10,000 the figures are also
extrapolated linearly to 10,000, and labelled so.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from _server import USAGE_COLUMNS, fresh_database
from arrears.domain.catalog import Component, MeteredComponent, Plan, PlanVariant
from arrears.domain.clock import TestClock
from arrears.domain.ids import UsageIds, new_id
from arrears.domain.periods import BillingPeriod, PeriodUnit
from arrears.domain.pricing import Graduated, PerUnit, Tier
from arrears.services.billing import run_billing
from arrears.store.catalog import CatalogRepository
from arrears.store.database import Database
from arrears.store.sellers import SellerRecord, SellerRegistry
from arrears.store.tables import (
    BilledUsageRow,
    ContractRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    UsageEntryRow,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
BILLED_AT = datetime(2026, 2, 1, tzinfo=UTC)
TARGET_CONTRACTS = 10_000
TARGET_SECONDS = {"sqlite": 10.0, "postgresql": 20.0}

USAGE = UsageEntryRow.__table__
COPY_TYPES = (
    "int8", "varchar", "varchar", "varchar", "numeric", "timestamptz", "timestamptz",
    "varchar", "varchar", "numeric", "varchar", "varchar", "varchar",
)  # fmt: skip


@dataclass(frozen=True)
class Result:
    kind: str
    contracts: int
    invoices: int
    entries: int
    seconds: float
    baseline_seconds: float

    @property
    def ratio(self) -> float:
        return self.baseline_seconds / self.seconds


# -- the data --------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    seller_id: str
    components: tuple[str, str]
    variant_id: str


def build_catalog(database: Database) -> Catalog:
    seller_id = new_id()
    storage, calls = new_id(), new_id()
    variant_id = new_id()
    plan_id = new_id()
    with database.write() as session:
        SellerRegistry(session).add(SellerRecord(seller_id, "Bench", "EUR", "BENCH", START))
        catalog = CatalogRepository(session, seller_id)
        catalog.add_component(Component(storage, START, "Storage", "GB", "storage"))
        catalog.add_component(Component(calls, START, "API calls", "call", "calls"))
        catalog.add_plan(Plan(plan_id, START, "Bench plan"))
        catalog.add_plan_variant(
            PlanVariant(
                id=variant_id,
                created_at=START,
                plan_id=plan_id,
                name="Monthly",
                currency="EUR",
                billing_period=BillingPeriod(PeriodUnit.MONTH, 1),
                tax_rate=Decimal(19),
                metered_components=(
                    MeteredComponent(storage, PerUnit(Decimal("0.05")), Decimal(100)),
                    MeteredComponent(
                        calls,
                        Graduated(
                            (
                                Tier(Decimal(500), Decimal("0.002")),
                                Tier(None, Decimal("0.001")),
                            )
                        ),
                    ),
                ),
                recurring_fee=Decimal("9.90"),
            )
        )
    return Catalog(seller_id, (storage, calls), variant_id)


def build_contracts(database: Database, catalog: Catalog, count: int) -> list[str]:
    customers = [new_id() for _ in range(count)]
    contracts = [new_id() for _ in range(count)]
    first_period_end = datetime(2026, 2, 1, tzinfo=UTC)
    with database.write() as session:
        session.execute(
            insert(CustomerRow),
            [
                {
                    "id": customer,
                    "seller_id": catalog.seller_id,
                    "created_at": START,
                    "company_name": f"Customer {n}",
                    # every tenth customer has its own tax rate
                    "tax_rate": Decimal(7) if n % 10 == 0 else None,
                }
                for n, customer in enumerate(customers)
            ],
        )
        session.execute(
            insert(ContractRow),
            [
                {
                    "id": contract,
                    "seller_id": catalog.seller_id,
                    "created_at": START,
                    "customer_id": customer,
                    "plan_variant_id": catalog.variant_id,
                    "start_date": START,
                    "end_date": None,
                    "billed_periods": 0,
                    "last_billing_date": START,
                    "next_billing_date": first_period_end,
                    "final_invoice_id": None,
                }
                for contract, customer in zip(contracts, customers, strict=True)
            ],
        )
    return contracts


def build_usage(
    database: Database, kind: str, catalog: Catalog, contracts: list[str], per_contract: int
) -> None:
    """`per_contract` entries per contract due in January, inserted at the driver level
    with the values in the forms the column types store."""
    quantity = USAGE.c.quantity.type.to_driver
    instant = USAGE.c.due_date.type.to_driver
    transferred = instant(START + timedelta(days=31), kind)
    minutes = 31 * 24 * 60
    rows: list[tuple[Any, ...]] = []
    # Ids drawn as the service draws them (arrears.domain.ids): the rows are one
    # submission ("bench"), so one run, ascending in the order they are written.
    ids = iter(UsageIds().take(len(contracts) * per_contract))
    for c, contract in enumerate(contracts):
        for n in range(per_contract):
            due = START + timedelta(minutes=(c * 7 + n * 443) % minutes)
            rows.append(
                (
                    next(ids),
                    catalog.seller_id,
                    contract,
                    catalog.components[n % 2],
                    quantity(Decimal((c + n) % 40 + 1) + Decimal("0.25") * (n % 4), kind),
                    instant(due, kind),
                    transferred,
                    None,
                    None,
                    None,
                    None,
                    None,
                    "bench",
                )
            )
    columns = ", ".join(USAGE_COLUMNS)
    with database.write() as session:
        connection = session.connection()
        if kind == "sqlite":
            placeholders = ", ".join("?" for _ in USAGE_COLUMNS)
            connection.exec_driver_sql(
                f"INSERT INTO usage_entries ({columns}) VALUES ({placeholders})",  # noqa: S608
                rows,
            )
        else:
            driver = connection.connection.driver_connection
            copying = f"COPY usage_entries ({columns}) FROM STDIN BINARY"
            with driver.cursor() as cursor, cursor.copy(copying) as copy:
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
    if kind == "postgresql":
        with database.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


# -- measuring -------------------------------------------------------------------------


def baseline(database: Database) -> float:
    """Seconds of one GROUP BY (contract, component) over every usage entry."""
    query = text(
        "SELECT contract_id, component_id, SUM(quantity) FROM usage_entries "
        "GROUP BY contract_id, component_id"
    )
    with database.read() as session:
        started = time.perf_counter()
        groups = session.execute(query).all()
        seconds = time.perf_counter() - started
    assert groups, "the baseline aggregated nothing"
    return seconds


def check(database: Database, catalog: Catalog, contracts: int, entries: int) -> int:
    """Check what the run issued; the number of invoices."""
    with database.read() as session:
        unbilled = session.execute(
            select(func.count())
            .select_from(UsageEntryRow)
            .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .where(BilledUsageRow.usage_id.is_(None))
        ).scalar_one()
        assert unbilled == 0, f"{unbilled} entries were not billed"
        own = session.execute(
            select(func.count())
            .select_from(UsageEntryRow)
            .join(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .join(InvoiceRow, InvoiceRow.id == BilledUsageRow.invoice_id)
            .where(InvoiceRow.contract_id == UsageEntryRow.contract_id)
        ).scalar_one()
        assert own == entries, f"{entries - own} entries are linked to a foreign invoice"
        numbers = sorted(
            int(number.rsplit("-", 1)[1])
            for number in session.execute(select(InvoiceRow.invoice_number)).scalars()
        )
        assert numbers == list(range(1, contracts + 1)), "invoice numbers are not 1..n"
        per_contract = session.execute(
            select(func.count(func.distinct(InvoiceRow.contract_id)))
        ).scalar_one()
        assert per_contract == contracts, "not one invoice per contract"
        billed = sum(
            session.execute(
                select(InvoiceLineRow.quantity).where(InvoiceLineRow.kind == "Usage")
            ).scalars(),
            Decimal(0),
        )
        stored = sum(session.execute(select(UsageEntryRow.quantity)).scalars(), Decimal(0))
        assert billed == stored, f"lines bill {billed}, the entries hold {stored}"
    return len(numbers)


def bench(kind: str, contracts: int, per_contract: int) -> Result:
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_database(kind, Path(workdir), "billing") as url,
    ):
        database = Database(url)
        try:
            started = time.perf_counter()
            catalog = build_catalog(database)
            contract_ids = build_contracts(database, catalog, contracts)
            build_usage(database, kind, catalog, contract_ids, per_contract)
            print(
                f"[{kind}] built {contracts:,} contracts and {contracts * per_contract:,} "
                f"entries in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            baseline_seconds = baseline(database)
            print(f"[{kind}] baseline GROUP BY: {baseline_seconds:.3f} s; billing ...", flush=True)
            started = time.perf_counter()
            run = run_billing(database, TestClock(BILLED_AT))
            seconds = time.perf_counter() - started
            assert run.failed == 0, f"{run.failed} contracts failed to bill"
            invoices = check(database, catalog, contracts, contracts * per_contract)
        finally:
            database.dispose()
    return Result(kind, contracts, invoices, contracts * per_contract, seconds, baseline_seconds)


def report(result: Result) -> None:
    target = TARGET_SECONDS[result.kind]
    print(f"\n== {result.kind} ==")
    rows = [
        ("contracts", f"{result.contracts:,}"),
        ("invoices", f"{result.invoices:,}"),
        ("entries billed", f"{result.entries:,}"),
        ("billing seconds", f"{result.seconds:.2f}"),
        ("invoices/s", f"{result.invoices / result.seconds:,.0f}"),
        ("entries/s", f"{result.entries / result.seconds:,.0f}"),
        ("baseline GROUP BY seconds", f"{result.baseline_seconds:.3f}"),
        ("ratio (baseline / billing)", f"{result.ratio:.3f}"),
    ]
    for name, value in rows:
        print(f"  {name:<30}{value:>16}")
    if result.contracts == TARGET_CONTRACTS:
        met = "met" if result.seconds < target else "NOT met"
        print(f"  target: {TARGET_CONTRACTS:,} contracts in < {target:.0f} s: {met}")
    else:
        scaled = result.seconds * TARGET_CONTRACTS / result.contracts
        met = "met" if scaled < target else "NOT met"
        print(
            f"  EXTRAPOLATED (linearly, from {result.contracts:,} contracts) to "
            f"{TARGET_CONTRACTS:,}: {scaled:.1f} s; target < {target:.0f} s: {met} "
            "(extrapolated, not measured)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--contracts", type=int, default=TARGET_CONTRACTS)
    parser.add_argument("--entries", type=int, default=100, help="usage entries per contract")
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(
        f"billing {args.contracts:,} contracts x {args.entries} entries; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    for kind in kinds:
        report(bench(kind, args.contracts, args.entries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
