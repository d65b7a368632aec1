"""What the benchmarks that drive a real `arrears serve` share: fresh databases, the
server process, and a catalog created over HTTP.

Not a benchmark itself (`make bench` runs only `bench_*.py`).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from arrears.store import schema
from arrears.store.database import Database

__all__ = [
    "ADMIN_TOKEN",
    "POSTGRES_SERVER",
    "START",
    "USAGE_COLUMNS",
    "Catalog",
    "Server",
    "conninfo",
    "create_catalog",
    "free_port",
    "fresh_database",
    "running_server",
]

POSTGRES_SERVER = os.environ.get(
    "ARREARS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# The columns the benchmarks write usage entries with, for their bare baselines.
USAGE_COLUMNS = (
    "id", "seller_id", "contract_id", "component_id", "quantity", "due_date", "transferred_at",
    "key", "memo", "override_price", "override_name", "override_description", "submission_id",
)  # fmt: skip
ADMIN_TOKEN = "bench-admin-token"  # noqa: S105 (a throwaway server's token)
ARREARS = Path(sys.executable).with_name("arrears")
# Contracts start a week ago on monthly periods: usage lies within them, and no invoice
# falls due while a benchmark runs (billing would compete with what is measured).
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)


@dataclass(frozen=True)
class Catalog:
    seller_id: str
    api_key: str
    components: dict[str, str]  # id -> item code
    contract_ids: list[str]


# -- databases -------------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str, workdir: Path, name: str) -> Iterator[str]:
    """The URL of a new, migrated database of `kind`, dropped (PostgreSQL) at the end."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'{name}.db'}"
        _migrate(url)
        yield url
        return
    server = make_url(POSTGRES_SERVER)
    database = f"arrears_bench_{secrets.token_hex(6)}"
    with psycopg.connect(conninfo(POSTGRES_SERVER), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = server.set(database=database).render_as_string(hide_password=False)
    try:
        _migrate(url)
        yield url
    finally:
        with psycopg.connect(conninfo(POSTGRES_SERVER), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _migrate(url: str) -> None:
    database = Database(url)
    try:
        schema.upgrade(database)
    finally:
        database.dispose()


def conninfo(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- the server ------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process has had so far."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc status")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in _process_tree(self.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # a process that ended meanwhile
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total


def _process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents[int(entry.name)] = int(fields[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


@contextmanager
def running_server(
    database_url: str,
    log_path: Path,
    serve_args: Sequence[str] = (),
    *,
    log_level: str = "WARNING",
) -> Iterator[Server]:
    """A real `arrears serve [serve_args]` on a free port, its log lines (at `log_level`)
    going to `log_path`; terminated at the end."""
    port = free_port()
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database_url,
        "ARREARS_ADMIN_TOKEN": ADMIN_TOKEN,
        "ARREARS_LOG_LEVEL": log_level,
    }
    env.pop("ARREARS_TEST_CLOCK", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own executable)
            [str(ARREARS), "serve", "--host", "127.0.0.1", "--port", str(port), *serve_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            server = Server(f"http://127.0.0.1:{port}", process.pid)
            _wait_ready(server, process, log_path)
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(server: Server, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"arrears serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"arrears serve was not ready in 30 s:\n{log_path.read_text()[-3000:]}")


# -- the catalog -----------------------------------------------------------------------


def create_catalog(server: Server, contracts: int) -> Catalog:
    """Over HTTP: a seller, two components (item codes `storage`, `egress`), a monthly
    plan variant metering both at 0.10, ten customers and `contracts` contracts that
    started on `START`."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        seller = _created(
            client,
            "/admin/sellers",
            {"name": "Bench", "currency": "EUR"},
            ADMIN_TOKEN,
        )
        key = seller["apiKey"]
        components = {}
        for name, code in (("Storage", "storage"), ("Egress", "egress")):
            component = _created(
                client, "/api/v1/components", {"Name": name, "Unit": "GB", "ItemCode": code}, key
            )
            components[component["Id"]] = code
        plan = _created(client, "/api/v1/plans", {"Name": "Cloud"}, key)
        pricing = {"Model": "PerUnit", "PricePerUnit": 0.1}  # JSON number, read as Decimal
        variant = _created(
            client,
            "/api/v1/planvariants",
            {
                "PlanId": plan["Id"],
                "Name": "Monthly",
                "Currency": "EUR",
                "BillingPeriod": {"Unit": "Month", "Quantity": 1},
                "MeteredComponents": [
                    {"ComponentId": id_, "Pricing": pricing} for id_ in components
                ],
            },
            key,
        )
        customers = [
            _created(client, "/api/v1/customers", {"CompanyName": f"Customer {n}"}, key)["Id"]
            for n in range(10)
        ]
        contract_ids = [
            _created(
                client,
                "/api/v1/contracts",
                {
                    "CustomerId": customers[n % len(customers)],
                    "PlanVariantId": variant["Id"],
                    "StartDate": START.isoformat().replace("+00:00", "Z"),
                },
                key,
            )["Id"]
            for n in range(contracts)
        ]
    return Catalog(seller["sellerId"], key, components, contract_ids)


def _created(client: httpx.Client, path: str, payload: dict[str, Any], token: str) -> Any:
    response = client.post(path, json=payload, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    return response.json()
