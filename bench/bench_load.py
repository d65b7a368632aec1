"""Load: single usage posts and bulk submissions against real `arrears serve` processes.

For each server configuration (SQLite with the default `arrears serve`; PostgreSQL with
the default and with `--workers N`), on a fresh database, the server run as a user
would: default settings, so one JSON access log line per request (to a file here):

- the catalog (a seller, two components, a plan variant, `--contracts` contracts) is
  created over HTTP, not timed;
- `GET /healthz` is driven at the first client count: the most requests per second the
  server's HTTP stack and this driver reach together, for reference;
- single usage posts (`POST /api/v1/contracts/{id}/usage`, each with its own Key, the
  contracts and both components taken in turn) are driven by each client count in
  `--clients` for `--seconds` after `--warmup`: requests/s, p50/p99/max latency, the
  answers other than 201, and the CPU the server and the driver spent per request;
  afterwards the stored entries are counted: every 201 must be stored;
- the deprecated `PUT /api/sellers/{id}/services/consumptions` with one record (its own
  key), at the first client count, the same way (each `200` a stored entry);
- bulk: `--bulk-tasks` submissions of `--bulk-records` records each are POSTed at once
  and polled until `Successful`: records/s from the first POST to the last success.

Baselines, in the same run:

- the stack's floor: a bare Starlette app (bench/_bare_app.py) served by the same server
  with the same options as `arrears serve` (`arrears.cli.run_server`, and as many
  processes), answering `GET /healthz` and the same usage posts with a fixed 201; the
  service's figures are printed as a ratio to it;
- the driver's ceiling: the driver against a trivial asyncio HTTP server in another
  process that answers every request with a fixed 201, at each client count; a figure
  near it would measure the driver.

The driver is a minimal HTTP/1.1 keep-alive client over asyncio streams, in
`--driver-processes` processes, each client a connection that sends its next request
when the last answer arrived (closed loop). It is this small because on two cores
every microsecond the driver spends is taken from the server being measured.

    .venv/bin/python bench/bench_load.py [--quick] [--db sqlite|postgresql|both]
        [--workers 2] [--clients 50,200] [--seconds 10] [--warmup 2]
        [--driver-processes 1] [--contracts 1000] [--bulk-tasks 4] [--bulk-records 100000]
        [--no-ceiling]

`--workers N` (N > 1) adds a configuration with `arrears serve --workers N` for each
database, and the bare app's floor with as many processes.

`--quick` is a smoke run of about a minute and a half (2 s per figure, 100 contracts,
bulk 2 x 10,000 records): it shows the script works, its figures mean little.

Targets (issue #23) are reported, not asserted: the script exits 0 whenever it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
from sqlalchemy import func, select

from _server import (
    START,
    Catalog,
    Server,
    create_catalog,
    free_port,
    fresh_database,
    running_server,
)
from arrears.store.database import Database
from arrears.store.tables import UsageEntryRow

# Issue #23, per database: posts/s and p99 at TARGET_CLIENTS clients.
TARGET_POSTS = {"sqlite": (5_000, 25.0), "postgresql": (3_000, 40.0)}
TARGET_POSTS_TO_FLOOR = 0.4  # SQLite's posts/s to the bare app's
TARGET_HEALTHZ_TO_FLOOR = 0.8
TARGET_CLIENTS = 50
TARGET_BULK_RECORDS_PER_SECOND = 150_000
BARE_APP = Path(__file__).with_name("_bare_app.py")
READ_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.02
DUE_DATE = (START + timedelta(days=1)).isoformat().replace("+00:00", "Z")


# -- the driver ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one driver process does: `clients` connections to `port`, from `start` (a
    `time.monotonic()` instant, the same in every process) for `warmup + seconds`."""

    port: int
    kind: str  # "usage" posts, "put" of one consumption, or "get" of `path`
    clients: int
    start: float
    warmup: float
    seconds: float
    process: int
    label: str = ""
    path: str = "/healthz"
    api_key: str = ""
    seller_id: str = ""
    contract_ids: tuple[str, ...] = ()
    component_ids: tuple[str, ...] = ()


@dataclass
class Tally:
    """What one driver process saw. Latencies and CPU are of the measured window only;
    `created` counts every 201, warm-up and tail included."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    created: int = 0
    cpu_seconds: float = 0.0

    def add(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)
        self.created += other.created
        self.cpu_seconds += other.cpu_seconds


def _requests(plan: Plan, client: int) -> Iterator[bytes]:
    """The requests one client sends, in order: for usage, a new Key each time."""
    host = f"Host: 127.0.0.1:{plan.port}\r\n"
    if plan.kind == "get":
        request = f"GET {plan.path} HTTP/1.1\r\n{host}\r\n".encode()
        while True:
            yield request
    contracts, components = plan.contract_ids, plan.component_ids
    head = f"{host}Authorization: Bearer {plan.api_key}\r\nContent-Type: application/json\r\n"
    sequence = 0
    while True:
        # Clients start at different contracts, so concurrent posts spread over them.
        turn = client * 7919 + sequence
        contract = contracts[turn % len(contracts)]
        component = components[turn % len(components)]
        key = f"{plan.label}-{plan.process}-{client}-{sequence}"
        if plan.kind == "put":  # the deprecated PUT, one consumption
            body = (
                f'{{"subscriptionId":"{contract}","consumptions":[{{"productId":"{component}",'
                f'"quantity":"{sequence % 1000}.25","key":"{key}","dueDate":"{DUE_DATE}"}}]}}'
            ).encode()
            line = f"PUT /api/sellers/{plan.seller_id}/services/consumptions HTTP/1.1"
        else:
            body = (
                f'{{"DueDate":"{DUE_DATE}","ComponentId":"{component}",'
                f'"Quantity":"{sequence % 1000}.25","Key":"{key}"}}'
            ).encode()
            line = f"POST /api/v1/contracts/{contract}/usage HTTP/1.1"
        yield f"{line}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        sequence += 1


async def _client(plan: Plan, client: int, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", plan.port)
    window_start = plan.start + plan.warmup
    window_end = window_start + plan.seconds
    requests = _requests(plan, client)
    await asyncio.sleep(max(0.0, plan.start - time.monotonic()))
    try:
        while time.monotonic() < window_end:
            request = next(requests)
            sent = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lowered = head.lower()
            at = lowered.find(b"content-length:")
            length = int(lowered[at + 15 : lowered.find(b"\r\n", at)]) if at >= 0 else 0
            if length:
                await reader.readexactly(length)
            done = time.perf_counter()
            if status == 201 or (status == 200 and plan.kind == "put"):
                tally.created += 1  # a new entry stored
            if window_start <= time.monotonic() < window_end:
                tally.latencies.append(done - sent)
                tally.statuses[status] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError) as error:
        tally.failures[type(error).__name__] += 1
    finally:
        writer.close()


async def _drive(plan: Plan) -> Tally:
    tally = Tally()
    clients = [asyncio.create_task(_client(plan, n, tally)) for n in range(plan.clients)]
    window_start = plan.start + plan.warmup
    await asyncio.sleep(max(0.0, window_start - time.monotonic()))
    cpu_before = time.process_time()
    await asyncio.sleep(max(0.0, window_start + plan.seconds - time.monotonic()))
    tally.cpu_seconds = time.process_time() - cpu_before
    # Bounded: a server that stops answering ends the run instead of hanging it.
    _, pending = await asyncio.wait(clients, timeout=READ_TIMEOUT_SECONDS)
    for task in pending:
        task.cancel()
        tally.failures["timeout"] += 1
    return tally


def _drive_process(plan: Plan, results: Any) -> None:
    results.put(_encode_tally(asyncio.run(_drive(plan))))


def _encode_tally(tally: Tally) -> bytes:
    return msgspec.msgpack.encode(
        {
            "latencies": tally.latencies.tobytes(),
            "statuses": dict(tally.statuses),
            "failures": dict(tally.failures),
            "created": tally.created,
            "cpu": tally.cpu_seconds,
        }
    )


def _decode_tally(data: bytes) -> Tally:
    raw = msgspec.msgpack.decode(data)
    latencies = array("d")
    latencies.frombytes(raw["latencies"])
    return Tally(
        latencies,
        Counter({int(k): v for k, v in raw["statuses"].items()}),
        Counter(raw["failures"]),
        raw["created"],
        raw["cpu"],
    )


@dataclass(frozen=True)
class Settings:
    clients: tuple[int, ...]
    seconds: float
    warmup: float
    driver_processes: int
    contracts: int
    bulk_tasks: int
    bulk_records: int


@dataclass(frozen=True)
class Measurement:
    what: str
    clients: int
    seconds: float
    tally: Tally
    server_cpu_seconds: float | None

    @property
    def requests(self) -> int:
        return len(self.tally.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def errors(self) -> int:
        expected = 201 if "POST" in self.what or "trivial" in self.what else 200
        wrong = sum(n for status, n in self.tally.statuses.items() if status != expected)
        return wrong + sum(self.tally.failures.values())

    def percentile_ms(self, fraction: float) -> float:
        if not self.tally.latencies:
            return float("nan")
        ordered = sorted(self.tally.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000

    @property
    def max_ms(self) -> float:
        return max(self.tally.latencies, default=float("nan")) * 1000

    def cpu_us_per_request(self, seconds: float | None) -> float | None:
        if seconds is None or not self.requests:
            return None
        return seconds / self.requests * 1e6


def drive(
    what: str, settings: Settings, clients: int, base: Plan, server: Server | None
) -> Measurement:
    """Run `clients` connections spread over the driver processes; one measurement."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = min(settings.driver_processes, clients)
    start = time.monotonic() + 1.5  # time for the processes to start and connect
    workers = []
    for process in range(processes):
        share = clients // processes + (1 if process < clients % processes else 0)
        plan = replace(
            base,
            clients=share,
            start=start,
            warmup=settings.warmup,
            seconds=settings.seconds,
            process=process,
        )
        worker = context.Process(target=_drive_process, args=(plan, results), daemon=True)
        worker.start()
        workers.append(worker)
    time.sleep(max(0.0, start + settings.warmup - time.monotonic()))
    cpu_before = server.cpu_seconds() if server else None
    time.sleep(max(0.0, start + settings.warmup + settings.seconds - time.monotonic()))
    cpu_after = server.cpu_seconds() if server else None
    tally = Tally()
    for _ in workers:
        tally.add(_decode_tally(results.get(timeout=READ_TIMEOUT_SECONDS + 30)))
    for worker in workers:
        worker.join(timeout=30)
    server_cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after else None
    return Measurement(what, clients, settings.seconds, tally, server_cpu)


# -- the trivial server (the driver's ceiling) ------------------------------------------

_FIXED_BODY = b'{"Id":"1","ContractId":"c","Quantity":1.25,"Key":"k","InvoiceId":null}' * 3
_FIXED_RESPONSE = (
    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_FIXED_BODY)}\r\n\r\n".encode()
    + _FIXED_BODY
)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lowered = head.lower()
            at = lowered.find(b"content-length:")
            if at >= 0:
                await reader.readexactly(int(lowered[at + 15 : lowered.find(b"\r\n", at)]))
            writer.write(_FIXED_RESPONSE)
    except (OSError, asyncio.IncompleteReadError):
        writer.close()


def _trivial_server_process(port: int, ready: Any) -> None:
    async def serve() -> None:
        server = await asyncio.start_server(_answer, "127.0.0.1", port, backlog=1024)
        ready.set()
        await server.serve_forever()

    asyncio.run(serve())


@contextmanager
def trivial_server() -> Iterator[int]:
    context = multiprocessing.get_context("spawn")
    port, ready = free_port(), context.Event()
    process = context.Process(target=_trivial_server_process, args=(port, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the trivial server did not start")
        yield port
    finally:
        process.terminate()
        process.join(10)


# -- the bare app (the stack's floor) ---------------------------------------------------


@contextmanager
def bare_server(workdir: Path, workers: int) -> Iterator[Server]:
    """bench/_bare_app.py served as `arrears serve` serves (same server, same options)."""
    port = free_port()
    with (workdir / f"bare-{workers}.log").open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own script)
            [sys.executable, str(BARE_APP), "--port", str(port), "--workers", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            server = Server(f"http://127.0.0.1:{port}", process.pid)
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the bare app did not start")
                time.sleep(0.05)
            yield server
        finally:
            process.terminate()
            process.wait(15)


def measure_floor(settings: Settings, workers: int, workdir: Path) -> Run:
    """The bare app's `GET /healthz` and usage posts (each client count), `workers`
    processes."""
    run = Run(_floor_name(workers))
    with bare_server(workdir, workers) as server:
        print(f"[{run.name}] GET /healthz, {settings.clients[0]} clients ...", flush=True)
        healthz = Plan(port=server.port, kind="get", clients=0, start=0, warmup=0, seconds=0,
                       process=0, path="/healthz")  # fmt: skip
        run.measurements.append(
            drive("GET /healthz", settings, settings.clients[0], healthz, server)
        )
        for clients in settings.clients:
            print(f"[{run.name}] POST usage, {clients} clients ...", flush=True)
            plan = Plan(port=server.port, kind="usage", clients=0, start=0, warmup=0,
                        seconds=0, process=0, label="bare", api_key="x",
                        contract_ids=("0661d6199178e145c5c70900",),
                        component_ids=("0661d6199178e145c5c70901",))  # fmt: skip
            run.measurements.append(drive("POST usage", settings, clients, plan, server))
    return run


def _floor_name(workers: int) -> str:
    return "bare Starlette" if workers == 1 else f"bare Starlette {workers} workers"


# -- bulk ------------------------------------------------------------------------------


def bulk_body(catalog: Catalog, task: int, records: int) -> bytes:
    components = list(catalog.components)
    contracts = catalog.contract_ids
    consumptions = [
        {
            "subscriptionId": contracts[n % len(contracts)],
            "productId": components[(n // len(contracts)) % len(components)],
            "quantity": f"{n % 997}.{n % 1000:03d}",
            "dueDate": DUE_DATE,
            "key": f"bulk-{task}-{n}",
        }
        for n in range(records)
    ]
    return msgspec.json.encode({"consumptions": consumptions})


@dataclass(frozen=True)
class BulkMeasurement:
    tasks: int
    records: int
    seconds: float
    accepted_seconds: float

    @property
    def rate(self) -> float:
        return self.tasks * self.records / self.seconds


def measure_bulk(server: Server, catalog: Catalog, tasks: int, records: int) -> BulkMeasurement:
    bodies = [bulk_body(catalog, task, records) for task in range(tasks)]
    headers = {"Authorization": f"Bearer {catalog.api_key}", "Content-Type": "application/json"}
    path = f"/api/sellers/{catalog.seller_id}/services/bulkconsumptions"
    go = threading.Barrier(tasks)
    started = time.perf_counter()

    def submit(body: bytes) -> tuple[float, float]:
        with httpx.Client(base_url=server.url, timeout=300, headers=headers) as client:
            client.get("/healthz")  # connect before the clock starts
            go.wait(timeout=60)
            response = client.post(path, content=body)
            accepted = time.perf_counter()
            if response.status_code != 202:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
            location = response.headers["Location"]
            while (task := client.get(location).json())["message"] == "Processing":
                time.sleep(POLL_SECONDS)
            if task["message"] != "Successful" or task["savedRecords"] != records:
                raise RuntimeError(f"bulk task did not succeed: {str(task)[:1000]}")
            return accepted, time.perf_counter()

    with ThreadPoolExecutor(tasks) as pool:
        started = time.perf_counter()
        times = list(pool.map(submit, bodies))
    return BulkMeasurement(
        tasks,
        records,
        max(done for _, done in times) - started,
        max(accepted for accepted, _ in times) - started,
    )


# -- one server configuration ----------------------------------------------------------


@dataclass
class Run:
    name: str
    measurements: list[Measurement] = field(default_factory=list)
    database: str | None = None  # "sqlite" or "postgresql"; None for a baseline
    workers: int = 1
    bulk: BulkMeasurement | None = None
    stored: int = 0
    acknowledged: int = 0


def stored_entries(url: str) -> int:
    database = Database(url)
    try:
        with database.read() as session:
            return int(session.execute(select(func.count(UsageEntryRow.id))).scalar_one())
    finally:
        database.dispose()


def run_configuration(name: str, kind: str, workers: int, settings: Settings, workdir: Path) -> Run:
    run = Run(name, database=kind, workers=workers)
    serve_args = ["--workers", str(workers)] if workers > 1 else []
    print(f"[{name}] preparing a server and {settings.contracts} contracts ...", flush=True)
    with (
        fresh_database(kind, workdir, name.replace(" ", "-")) as url,
        running_server(
            url, workdir / f"{name.replace(' ', '-')}.log", serve_args, log_level="INFO"
        ) as server,
    ):
        catalog = create_catalog(server, settings.contracts)
        healthz = Plan(port=server.port, kind="get", clients=0, start=0, warmup=0, seconds=0,
                       process=0, path="/healthz")  # fmt: skip
        print(f"[{name}] GET /healthz, {settings.clients[0]} clients ...", flush=True)
        run.measurements.append(
            drive("GET /healthz", settings, settings.clients[0], healthz, server)
        )
        for clients in settings.clients:
            print(f"[{name}] POST usage, {clients} clients ...", flush=True)
            posts = Plan(
                port=server.port, kind="usage", clients=0, start=0, warmup=0, seconds=0,
                process=0, label=f"c{clients}", api_key=catalog.api_key,
                contract_ids=tuple(catalog.contract_ids),
                component_ids=tuple(catalog.components),
            )  # fmt: skip
            measurement = drive("POST usage", settings, clients, posts, server)
            run.measurements.append(measurement)
            run.acknowledged += measurement.tally.created
        clients = settings.clients[0]
        print(f"[{name}] PUT consumptions (one record), {clients} clients ...", flush=True)
        puts = Plan(
            port=server.port, kind="put", clients=0, start=0, warmup=0, seconds=0,
            process=0, label=f"put{clients}", api_key=catalog.api_key,
            seller_id=catalog.seller_id, contract_ids=tuple(catalog.contract_ids),
            component_ids=tuple(catalog.components),
        )  # fmt: skip
        measurement = drive("PUT consumption", settings, clients, puts, server)
        run.measurements.append(measurement)
        run.acknowledged += measurement.tally.created
        run.stored = stored_entries(url)
        if settings.bulk_tasks:
            print(
                f"[{name}] bulk: {settings.bulk_tasks} x {settings.bulk_records:,} records ...",
                flush=True,
            )
            run.bulk = measure_bulk(server, catalog, settings.bulk_tasks, settings.bulk_records)
    return run


def measure_ceiling(settings: Settings) -> Run:
    run = Run("driver ceiling")
    with trivial_server() as port:
        for clients in settings.clients:
            print(f"[driver ceiling] trivial server, {clients} clients ...", flush=True)
            plan = Plan(port=port, kind="usage", clients=0, start=0, warmup=0, seconds=0,
                        process=0, label="trivial", api_key="x", contract_ids=("c",),
                        component_ids=("p",))  # fmt: skip
            run.measurements.append(
                drive("POST to a trivial server", settings, clients, plan, None)
            )
    return run


# -- the report ------------------------------------------------------------------------


def report(runs: list[Run], settings: Settings) -> None:
    print(
        f"\nsingle requests: {settings.seconds:g} s measured after {settings.warmup:g} s "
        f"warm-up, {settings.driver_processes} driver process(es); closed loop"
    )
    header = (
        f"{'configuration':<28}{'what':<26}{'clients':>8}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'srv µs/req':>12}{'drv µs/req':>12}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        for m in run.measurements:
            server_us = m.cpu_us_per_request(m.server_cpu_seconds)
            driver_us = m.cpu_us_per_request(m.tally.cpu_seconds)
            print(
                f"{run.name:<28}{m.what:<26}{m.clients:>8}{m.rate:>9,.0f}"
                f"{m.percentile_ms(0.5):>9.2f}{m.percentile_ms(0.99):>9.2f}{m.max_ms:>9.1f}"
                f"{m.errors:>8}{_or_dash(server_us):>12}{_or_dash(driver_us):>12}"
            )
    print("\nchecks and targets")
    for run in runs:
        if run.database is None:
            continue
        durable = "ok" if run.stored == run.acknowledged else "LOST OR EXTRA ENTRIES"
        print(f"  {run.name}: {run.acknowledged:,} posts (201) and PUTs (200) answered, "
              f"{run.stored:,} entries stored: {durable}")  # fmt: skip
        floor = next((r for r in runs if r.name == _floor_name(run.workers)), None)
        for line in _target_lines(run, floor):
            print(f"  {run.name}: {line}")


def _target_lines(run: Run, floor: Run | None) -> Iterator[str]:
    def at(r: Run | None, what: str, clients: int) -> Measurement | None:
        if r is None:
            return None
        return next((m for m in r.measurements if m.what == what and m.clients == clients), None)

    healthz, bare_healthz = (at(r, "GET /healthz", TARGET_CLIENTS) for r in (run, floor))
    if healthz is not None and bare_healthz is not None:
        ratio = healthz.rate / bare_healthz.rate
        met = ratio >= TARGET_HEALTHZ_TO_FLOOR
        yield (f"GET /healthz {healthz.rate:,.0f}/s = {ratio:.2f} x the bare app's "
               f"{bare_healthz.rate:,.0f}/s; target >= {TARGET_HEALTHZ_TO_FLOOR} x: "
               f"{'met' if met else 'MISSED'}")  # fmt: skip
    posts, bare_posts = (at(r, "POST usage", TARGET_CLIENTS) for r in (run, floor))
    if posts is not None and run.database is not None:
        rate, p99_ms = TARGET_POSTS[run.database]
        met = posts.rate >= rate and posts.percentile_ms(0.99) < p99_ms
        yield (f"{posts.rate:,.0f} posts/s, p99 {posts.percentile_ms(0.99):.1f} ms at "
               f"{TARGET_CLIENTS} clients; target >= {rate:,}/s with p99 < {p99_ms:g} ms: "
               f"{'met' if met else 'MISSED'}")  # fmt: skip
        if bare_posts is not None:
            ratio = posts.rate / bare_posts.rate
            target = f"; target >= {TARGET_POSTS_TO_FLOOR} x: " + (
                "met" if ratio >= TARGET_POSTS_TO_FLOOR else "MISSED"
            )
            yield (f"posts {ratio:.2f} x the bare app's {bare_posts.rate:,.0f}/s"
                   f"{target if run.database == 'sqlite' else ''}")  # fmt: skip
    puts = at(run, "PUT consumption", TARGET_CLIENTS)
    if puts is not None and run.database is not None:
        rate, p99_ms = TARGET_POSTS[run.database]  # the same targets as the posts'
        met = puts.rate >= rate and puts.percentile_ms(0.99) < p99_ms
        yield (f"{puts.rate:,.0f} PUTs of one consumption/s, p99 "
               f"{puts.percentile_ms(0.99):.1f} ms; target >= {rate:,}/s with p99 < "
               f"{p99_ms:g} ms: {'met' if met else 'MISSED'}")  # fmt: skip
    if run.bulk is not None:
        b = run.bulk
        met = b.rate >= TARGET_BULK_RECORDS_PER_SECOND
        yield (f"bulk {b.tasks} x {b.records:,} records in {b.seconds:.2f} s (all accepted "
               f"after {b.accepted_seconds:.2f} s): {b.rate:,.0f} records/s; target >= "
               f"{TARGET_BULK_RECORDS_PER_SECOND:,}/s: {'met' if met else 'MISSED'}")  # fmt: skip


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2, help="also serve --workers N (1: not)")
    parser.add_argument(
        "--no-ceiling", action="store_true", help="skip the driver's ceiling (trivial server)"
    )
    parser.add_argument("--clients", default="50,200", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured per figure")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--driver-processes", type=int, default=1)
    parser.add_argument("--contracts", type=int, default=1_000)
    parser.add_argument("--bulk-tasks", type=int, default=4)
    parser.add_argument("--bulk-records", type=int, default=100_000)
    args = parser.parse_args()
    settings = Settings(
        clients=tuple(int(n) for n in args.clients.split(",")),
        seconds=2.0 if args.quick else args.seconds,
        warmup=0.5 if args.quick else args.warmup,
        driver_processes=args.driver_processes,
        contracts=100 if args.quick else args.contracts,
        bulk_tasks=min(2, args.bulk_tasks) if args.quick else args.bulk_tasks,
        bulk_records=10_000 if args.quick else args.bulk_records,
    )
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    worker_counts = [1, args.workers] if args.workers > 1 else [1]
    print(
        f"bench_load: Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs, load average {_load_average()}"
    )
    runs = [] if args.no_ceiling else [measure_ceiling(settings)]
    with tempfile.TemporaryDirectory(prefix="arrears-load-") as workdir:
        for workers in worker_counts:
            runs.append(measure_floor(settings, workers, Path(workdir)))
        for database in databases:
            for workers in worker_counts:
                name = database if workers == 1 else f"{database} {workers} workers"
                runs.append(run_configuration(name, database, workers, settings, Path(workdir)))
    report(runs, settings)
    print(f"\nload average at the end: {_load_average()}")
    return 0


def _load_average() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
