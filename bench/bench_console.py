"""Console pages: how long each takes to answer with 10,000 customers and 1,000,000
usage entries (SPEC §14's target: under 200 ms of server time).

For each database, on a fresh migrated database, built directly as bench_billing.py
builds it (one seller, two components, `--contracts` customers each with one contract,
`--entries` usage entries per contract due in January 2026, the daily usage rollup
summed from them, as the service's writes keep it) and then billed on 1 February (one
invoice per contract, every entry linked): the console's app, in
process, with the clock at 15 February, signed in. Each page is requested once to warm
up, then `--repeat` times; the figure is the median and the slowest, in ms, of the
whole request through the app (routing, session check, queries, rendering), measured
around the in-process call, so no network and no client parsing.

    .venv/bin/python bench/bench_console.py [--db sqlite|postgresql|both]
        [--contracts 10000] [--entries 100] [--repeat 5]

Baseline: the bare `SELECT count(*)` of the usage entries, on the same database, the
cheapest question a page over the whole table could ask. Figures are reported, not
asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from _server import fresh_database
from arrears.api.app import create_app
from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.billing import run_billing
from arrears.services.sellers import issue_key
from arrears.store.database import Database
from arrears.store.dialect import dialect_of
from arrears.store.tables import InvoiceRow, UsageEntryRow
from arrears.store.unit_of_work import RegistryWork
from arrears.store.usage_days import rebuild
from bench_billing import BILLED_AT, build_catalog, build_contracts, build_usage

NOW = datetime(2026, 2, 15, tzinfo=UTC)
TARGET_MS = 200.0


def pages(client: TestClient, contract_id: str, invoice_id: str, customer_id: str) -> list[str]:
    return [
        "/console",
        "/console/customers",
        "/console/customers?q=customer 4711",
        "/console/customers?sort=-name&page=200",
        f"/console/customers/{customer_id}",
        f"/console/contracts/{contract_id}",
        "/console/invoices",
        "/console/invoices?sort=-total&page=100",
        f"/console/invoices/{invoice_id}",
        "/console/submissions",
    ]


def sign_in(client: TestClient, api_key: str) -> None:
    form = client.get("/console/sign-in").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form)
    assert token is not None
    response = client.post(
        "/console/sign-in",
        data={"api_key": api_key, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


def time_page(client: TestClient, url: str, repeat: int) -> tuple[float, float]:
    assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    return statistics.median(times), max(times)


def bench(kind: str, contracts: int, per_contract: int, repeat: int) -> None:
    with (
        tempfile.TemporaryDirectory() as workdir,
        fresh_database(kind, Path(workdir), "console") as url,
    ):
        database = Database(url)
        try:
            started = time.perf_counter()
            catalog = build_catalog(database)
            contract_ids = build_contracts(database, catalog, contracts)
            build_usage(database, kind, catalog, contract_ids, per_contract)
            with database.write() as session:  # written around the repository
                rebuild(session.connection(), dialect_of(session).rollup)
            assert run_billing(database, TestClock(BILLED_AT)).failed == 0
            with database.write() as session:
                key = issue_key(RegistryWork(session), TestClock(NOW), catalog.seller_id)
                invoice = session.execute(
                    select(InvoiceRow).where(InvoiceRow.contract_id == contract_ids[0])
                ).scalar_one()
                customer_id, invoice_id = invoice.customer_id, invoice.id
            print(f"[{kind}] built and billed in {time.perf_counter() - started:.1f} s")
            with database.read() as session:
                started = time.perf_counter()
                session.execute(select(func.count()).select_from(UsageEntryRow)).scalar_one()
                print(
                    f"[{kind}] baseline count(*): {(time.perf_counter() - started) * 1000:.0f} ms"
                )
            settings = Settings(database_url=url, embedded_worker=False, metrics=False)
            app = create_app(settings, database=database, clock=TestClock(NOW))
            with TestClient(app) as client:
                sign_in(client, key.api_key)
                for page in pages(client, contract_ids[0], invoice_id, customer_id):
                    median, slowest = time_page(client, page, repeat)
                    mark = "" if median < TARGET_MS else "  (over target)"
                    print(
                        f"[{kind}] {page:<45} median {median:6.0f} ms, max {slowest:6.0f} ms{mark}"
                    )
        finally:
            database.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=100, help="usage entries per contract")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    print(
        f"console pages, {args.contracts:,} customers x {args.entries} entries; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    for kind in kinds:
        bench(kind, args.contracts, args.entries, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
