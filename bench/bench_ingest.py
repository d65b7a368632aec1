"""Bulk consumption ingestion: one large submission from POST to `Successful`.

For each database, against a real `arrears serve` process on a fresh database:

- the catalog (a seller, two components, a plan variant, `--contracts` contracts) is
  created over HTTP;
- a bulk body of `--records` records spread over the contracts, each with its own key,
  is built once (not timed);
- timed: the wall clock from sending the POST to seeing `Successful`, waiting on the
  task's `Location` with `?wait=10` (the answer comes when the task finishes), or with
  `--poll-every S`, polling it every S seconds as a client without `wait` would; the
  server's peak RSS is read afterwards.

Baseline, in the same run: the same rows inserted into the same `usage_entries` table
(same indexes and constraints) of a second fresh database holding the same catalog,
with a plain sqlite3 `executemany` in one transaction (values already in their stored
forms; the service's WAL, full sync and foreign keys) on SQLite, and a plain psycopg
`COPY ... FROM STDIN` on PostgreSQL. Only the insert and the commit are timed. The
service gives SQLite a 64 MiB page cache for bulk inserts; for reference, the SQLite
baseline is also measured with that cache (a third database), and reported beside.

    .venv/bin/python bench/bench_ingest.py [--db sqlite|postgresql|both]
        [--records 100000] [--contracts 1000] [--poll-every 0.01]

Targets are reported, not asserted: the script exits 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url

from _server import (
    START,
    USAGE_COLUMNS,
    Catalog,
    Server,
    conninfo,
    create_catalog,
    fresh_database,
    running_server,
)
from arrears.domain.ids import UsageIds
from arrears.store.database import Database
from arrears.store.tables import Base

WAIT_SECONDS = 10


@dataclass(frozen=True)
class Target:
    seconds: float
    ratio: float
    peak_rss_mb: float = 500.0


TARGETS = {
    "sqlite": Target(seconds=1.0, ratio=0.5),
    "postgresql": Target(seconds=1.5, ratio=0.3),
}


@dataclass(frozen=True)
class Record:
    contract_id: str
    component_id: str
    item_code: str | None  # the record names its component by itemCode instead
    quantity: Decimal
    due_date: datetime
    key: str
    memo: str | None


@dataclass(frozen=True)
class Result:
    kind: str
    records: int
    accepted_seconds: float
    seconds: float
    baseline_seconds: float
    peak_rss_mb: float
    # SQLite only: the baseline with the page cache the service uses for bulk inserts.
    cached_baseline_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def baseline_rate(self) -> float:
        return self.records / self.baseline_seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate


# -- databases -------------------------------------------------------------------------


def copy_catalog(source_url: str, target_url: str) -> None:
    """Copy every row but usage entries and tasks, so the baseline inserts the same rows
    against the same foreign keys."""
    source, target = Database(source_url), Database(target_url)
    try:
        with source.engine.connect() as reading, target.engine.begin() as writing:
            for table in Base.metadata.sorted_tables:
                if table.name in ("usage_entries", "tasks"):
                    continue
                rows = [dict(row) for row in reading.execute(select(table)).mappings()]
                if rows:
                    writing.execute(insert(table), rows)
    finally:
        source.dispose()
        target.dispose()


# -- the server ------------------------------------------------------------------------


# -- the catalog and the body ----------------------------------------------------------


def make_records(catalog: Catalog, count: int) -> list[Record]:
    """`count` records over every contract and both components, each with its own key;
    one in ten names its component by itemCode, one in ten has a description."""
    components = list(catalog.components.items())
    contracts = catalog.contract_ids
    records = []
    for n in range(count):
        component_id, code = components[(n // len(contracts)) % len(components)]
        records.append(
            Record(
                contract_id=contracts[n % len(contracts)],
                component_id=component_id,
                item_code=code if n % 10 == 3 else None,
                quantity=Decimal(f"{n % 997}.{n % 1000:03d}"),
                due_date=START + timedelta(seconds=5 * n, microseconds=n % 1000),
                key=f"vm-{n}/2026-01",
                memo=f"vm-{n}" if n % 10 == 7 else None,
            )
        )
    return records


def bulk_body(records: list[Record]) -> bytes:
    consumptions = []
    for record in records:
        item: dict[str, Any] = {"subscriptionId": record.contract_id}
        if record.item_code is None:
            item["productId"] = record.component_id
        else:
            item["itemCode"] = record.item_code
        item["quantity"] = record.quantity
        item["dueDate"] = record.due_date.isoformat().replace("+00:00", "Z")
        item["key"] = record.key
        if record.memo is not None:
            item["description"] = record.memo
        consumptions.append(item)
    return msgspec.json.Encoder(decimal_format="number").encode({"consumptions": consumptions})


# -- the measurements ------------------------------------------------------------------


def time_submission(
    server: Server, catalog: Catalog, body: bytes, poll_every: float | None
) -> tuple[float, float]:
    """(seconds until the 202, seconds until the task is seen `Successful`)."""
    headers = {"Authorization": f"Bearer {catalog.api_key}", "Content-Type": "application/json"}
    path = f"/api/sellers/{catalog.seller_id}/services/bulkconsumptions"
    params = {"wait": WAIT_SECONDS} if poll_every is None else {}
    with httpx.Client(base_url=server.url, timeout=120, headers=headers) as client:
        client.get("/readyz")  # open the connection before the clock starts
        started = time.perf_counter()
        response = client.post(path, content=body)
        accepted = time.perf_counter() - started
        if response.status_code != 202:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:2000]}")
        location = response.headers["Location"]
        while (task := client.get(location, params=params).json())["message"] == "Processing":
            if poll_every is not None:
                time.sleep(poll_every)
        finished = time.perf_counter() - started
    if task["message"] != "Successful" or task["savedRecords"] != task["totalRecords"]:
        raise RuntimeError(f"the task did not succeed: {str(task)[:2000]}")
    return accepted, finished


def baseline_rows(kind: str, catalog: Catalog, records: list[Record]) -> list[tuple[Any, ...]]:
    """The rows the service stores, in the form each database's driver takes them:
    on SQLite, quantities as integers scaled by 10**6 and instants as naive UTC text
    (what `arrears.store.types` binds); on PostgreSQL, Decimals and aware datetimes."""
    transferred_at = datetime.now(UTC)
    submission = "bench-baseline"

    def instant(value: datetime) -> Any:
        if kind == "sqlite":
            return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    def quantity(value: Decimal) -> Any:
        return int(value.scaleb(6)) if kind == "sqlite" else value

    # Ids drawn as the service draws them: one run for the submission (arrears.domain.ids).
    ids = UsageIds().take(len(records))
    return [
        (
            id_,
            catalog.seller_id,
            r.contract_id,
            r.component_id,
            quantity(r.quantity),
            instant(r.due_date),
            instant(transferred_at),
            r.key,
            r.memo,
            None,
            None,
            None,
            submission,
        )
        for id_, r in zip(ids, records, strict=True)
    ]


SERVICE_BULK_CACHE = "PRAGMA cache_size = -65536"  # as arrears.store.usage, in KiB


def time_sqlite_executemany(
    url: str, rows: list[tuple[Any, ...]], *, service_cache: bool = False
) -> float:
    connection = sqlite3.connect(make_url(url).database or "", isolation_level=None)
    try:
        # The service's settings: WAL, a full sync at commit, foreign keys checked.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        if service_cache:
            connection.execute(SERVICE_BULK_CACHE)
        statement = (
            f"INSERT INTO usage_entries ({', '.join(USAGE_COLUMNS)}) "  # noqa: S608 (constants)
            f"VALUES ({', '.join('?' for _ in USAGE_COLUMNS)})"
        )
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(statement, rows)
        connection.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        connection.close()


def time_postgresql_copy(url: str, rows: list[tuple[Any, ...]]) -> float:
    with psycopg.connect(conninfo(url)) as connection:
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY usage_entries ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        connection.commit()
        return time.perf_counter() - started


def stored_sample(url: str) -> list[tuple[Any, ...]]:
    """A slice of the stored rows, to check the baseline stored what the service stored."""
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.execute(
                    text(
                        "SELECT contract_id, component_id, quantity, due_date, key, memo "
                        "FROM usage_entries ORDER BY contract_id, key LIMIT 2000"
                    )
                )
            ]
    finally:
        database.dispose()


def run(
    kind: str, records_count: int, contracts: int, workdir: Path, poll_every: float | None
) -> Result:
    print(f"[{kind}] preparing: a server, {contracts} contracts over HTTP ...", flush=True)
    with fresh_database(kind, workdir, "service") as service_url:
        with running_server(service_url, workdir / f"{kind}-server.log") as server:
            catalog = create_catalog(server, contracts)
            records = make_records(catalog, records_count)
            body = bulk_body(records)
            print(f"[{kind}] submitting {records_count:,} records ({len(body) / 1e6:.1f} MB) ...")
            accepted, seconds = time_submission(server, catalog, body, poll_every)
            peak_rss_mb = server.peak_rss_mb()
        print(f"[{kind}] baseline: the same rows into a second database ...", flush=True)
        rows = baseline_rows(kind, catalog, records)
        baseline_seconds = time_baseline(service_url, workdir, "baseline", rows)
        cached = None
        if kind == "sqlite":
            cached = time_baseline(service_url, workdir, "cached", rows, service_cache=True)
    return Result(kind, records_count, accepted, seconds, baseline_seconds, peak_rss_mb, cached)


def time_baseline(
    service_url: str,
    workdir: Path,
    name: str,
    rows: list[tuple[Any, ...]],
    *,
    service_cache: bool = False,
) -> float:
    """The baseline insert into a fresh database with the service's catalog; checks that
    it stored what the service stored."""
    kind = make_url(service_url).get_backend_name()
    with fresh_database(kind, workdir, name) as url:
        copy_catalog(service_url, url)
        if kind == "sqlite":
            seconds = time_sqlite_executemany(url, rows, service_cache=service_cache)
        else:
            seconds = time_postgresql_copy(url, rows)
        if stored_sample(service_url) != stored_sample(url):
            raise RuntimeError("the baseline did not store the same rows as the service")
    return seconds


# -- the report ------------------------------------------------------------------------


def report(result: Result) -> None:
    target = TARGETS[result.kind]
    baseline = "sqlite3 executemany" if result.kind == "sqlite" else "psycopg COPY"

    def verdict(met: bool) -> str:
        return "met" if met else "MISSED"

    lines = [
        ("records", f"{result.records:,}", ""),
        ("POST answered 202 after", f"{result.accepted_seconds:.3f} s", ""),
        (
            "POST to Successful",
            f"{result.seconds:.3f} s",
            f"target < {target.seconds} s: {verdict(result.seconds < target.seconds)}",
        ),
        ("service rate", f"{result.rate:,.0f} records/s", ""),
        (
            f"baseline ({baseline})",
            f"{result.baseline_rate:,.0f} records/s",
            f"({result.baseline_seconds:.3f} s)",
        ),
        (
            "ratio service / baseline",
            f"{result.ratio:.3f}",
            f"target >= {target.ratio}: {verdict(result.ratio >= target.ratio)}",
        ),
    ]
    if result.cached_baseline_seconds is not None:
        cached_rate = result.records / result.cached_baseline_seconds
        lines += [
            (
                "baseline, service's page cache",
                f"{cached_rate:,.0f} records/s",
                f"({result.cached_baseline_seconds:.3f} s; ratio {result.rate / cached_rate:.2f},"
                " for reference)",
            ),
        ]
    lines += [
        (
            "server peak RSS",
            f"{result.peak_rss_mb:.0f} MB",
            f"target < {target.peak_rss_mb:.0f} MB: "
            f"{verdict(result.peak_rss_mb < target.peak_rss_mb)}",
        ),
    ]
    print(f"\n== {result.kind} ==")
    for name, value, note in lines:
        print(f"  {name:<34}{value:>22}   {note}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--contracts", type=int, default=1_000)
    parser.add_argument(
        "--poll-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="poll the task this often instead of waiting on it with ?wait=",
    )
    args = parser.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    seen = "waiting on" if args.poll_every is None else f"polling every {args.poll_every} s"
    print(
        f"bench_ingest: {args.records:,} records over {args.contracts:,} contracts, "
        f"{seen} the task; Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="arrears-bench-") as workdir:
        for kind in kinds:
            results.append(run(kind, args.records, args.contracts, Path(workdir), args.poll_every))
    for result in results:
        report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
