"""Where a request's CPU goes, apart from the HTTP server and the machine's load: the app
driven in this process through ASGI (no sockets, no server), its CPU per request
(`time.process_time`, every thread: the event loop and the group commit's writer), next
to a bare Starlette app that answers the same requests with a fixed body, and a cProfile
of each, summed by package.

On a shared machine wall time follows the load; CPU per request is the figure to compare
between two commits, run alternately.

    .venv/bin/python bench/profile_requests.py [--db sqlite|postgresql]
        [--requests 5000] [--clients 50] [--profile] [--top 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import json
import logging
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvloop
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).parent))

from _server import ADMIN_TOKEN, START, fresh_database
from arrears.api.app import create_app
from arrears.api.middleware import RequestContextMiddleware
from arrears.config import Settings
from arrears.logs import configure_logging
from arrears.store import group_commit

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
DUE_DATE = START.isoformat().replace("+00:00", "Z")
_runs = itertools.count()  # each measurement posts Keys of its own
FIXED_BODY = b'{"Id":"1","ContractId":"c","Quantity":1.25,"Key":"k","InvoiceId":null}'


def bare_fastapi(*, sync: bool) -> FastAPI:
    """FastAPI's own floor: one route, no middleware of ours."""
    app = FastAPI()
    if sync:
        app.get("/healthz")(lambda: {"status": "ok"})
    else:

        async def ok() -> dict[str, str]:
            return {"status": "ok"}

        app.get("/healthz")(ok)
    return app


def bare_app() -> Starlette:
    """The floor: routing and a fixed answer, nothing of ours."""

    async def created(_request: Request) -> Response:
        return Response(FIXED_BODY, 201, media_type="application/json")

    async def ok(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', 200, media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/v1/contracts/{contractId}/usage", created, methods=["POST"]),
            Route("/healthz", ok, methods=["GET"]),
        ]
    )


# -- an ASGI client that costs next to nothing -------------------------------------------


async def call(
    app: ASGIApp, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


@dataclass(frozen=True)
class Target:
    api_key: str
    contract_ids: list[str]
    component_ids: list[str]
    seller_id: str = ""


def posts(
    target: Target, label: str, client: int
) -> Iterator[tuple[str, list[tuple[bytes, bytes]], bytes]]:
    """A client's usage posts, each with its own Key (bench_load's request)."""
    head = [
        (b"host", b"127.0.0.1:8000"),
        (b"authorization", f"Bearer {target.api_key}".encode()),
        (b"content-type", b"application/json"),
    ]
    sequence = 0
    while True:
        turn = client * 7919 + sequence
        contract = target.contract_ids[turn % len(target.contract_ids)]
        component = target.component_ids[turn % len(target.component_ids)]
        body = (
            f'{{"DueDate":"{DUE_DATE}","ComponentId":"{component}","Quantity":'
            f'"{sequence % 1000}.25","Key":"{label}-{client}-{sequence}"}}'
        ).encode()
        headers = [*head, (b"content-length", str(len(body)).encode())]
        yield f"/api/v1/contracts/{contract}/usage", headers, body
        sequence += 1


def puts(
    target: Target, label: str, client: int
) -> Iterator[tuple[str, list[tuple[bytes, bytes]], bytes]]:
    """A client's PUTs of one consumption each, with its own key (bench_load's request)."""
    for path, post_headers, post_body in posts(target, label, client):
        fields = json.loads(post_body)
        body = json.dumps(
            {
                "subscriptionId": path.split("/")[4],
                "consumptions": [
                    {
                        "productId": fields["ComponentId"],
                        "quantity": fields["Quantity"],
                        "key": fields["Key"],
                        "dueDate": fields["DueDate"],
                    }
                ],
            }
        ).encode()
        headers = [*post_headers[:-1], (b"content-length", str(len(body)).encode())]
        yield f"/api/sellers/{target.seller_id}/services/consumptions", headers, body


@dataclass(frozen=True)
class Figure:
    what: str
    requests: int
    cpu_seconds: float
    wall_seconds: float
    statuses: dict[int, int]

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


async def measure(
    what: str, app: ASGIApp, kind: str, target: Target, *, requests: int, clients: int
) -> Figure:
    """`requests` requests from `clients` concurrent clients (closed loop)."""
    statuses: dict[int, int] = defaultdict(int)
    share = requests // clients

    async def client(n: int) -> None:
        if kind == "get":
            for _ in range(share):
                statuses[await call(app, "GET", "/healthz", [(b"host", b"x")])] += 1
            return
        method, requests = ("PUT", puts) if kind == "put" else ("POST", posts)
        requests_of = requests(target, f"{what}-{next(_runs)}", n)
        for _ in range(share):
            path, headers, body = next(requests_of)
            statuses[await call(app, method, path, headers, body)] += 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return Figure(
        what, share * clients, time.process_time() - cpu, time.perf_counter() - wall, dict(statuses)
    )


# -- profiles ------------------------------------------------------------------------------

TIMERS = {"cpu": time.thread_time, "wall": time.perf_counter}
_PACKAGES = (
    "arrears",
    "starlette",
    "fastapi",
    "pydantic_core",
    "pydantic",
    "sqlalchemy",
    "prometheus_client",
    "pythonjsonlogger",
    "logging",
    "json",
    "asyncio",
    "uvloop",
    "concurrent",
    "threading",
    "uuid",
    "sqlite3",
    "psycopg",
    "msgspec",
    "anyio",
    "typing",
    "inspect",
    "re",
    "contextvars",
    "http",
    "email",
    "urllib",
)


def package_of(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: named by its object, e.g. <method 'execute' of ...>
        for name in ("sqlite3", "psycopg", "msgspec", "pydantic_core", "_json", "uuid", "hashlib"):
            if name in function:
                return name
        return "builtins"
    parts = Path(filename).parts
    if "arrears" in parts:
        at = parts.index("arrears")
        module = "/".join(parts[at + 1 : at + 3]).removesuffix(".py")
        return f"arrears/{module}"
    for package in _PACKAGES:
        if package in parts or f"{package}.py" in parts or f"{package}/__init__.py" in parts:
            return package
    return Path(filename).name


def by_package(stats: pstats.Stats, requests: int, top: int) -> str:
    own: dict[str, float] = defaultdict(float)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, tottime, _, _) in raw.items():
        own[package_of(filename, function)] += tottime
    total = sum(own.values())
    lines = [f"  {'package':<36}{'µs/req':>9}{'share':>8}"]
    for package, seconds in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {package:<36}{seconds / requests * 1e6:>9.1f}{seconds / total:>8.0%}")
    lines.append(f"  {'all (profiled, inflated)':<36}{total / requests * 1e6:>9.1f}")
    return "\n".join(lines)


class WriterProfile:
    """cProfile of the group commit's writer thread (cProfile sees one thread only)."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self.profiler = cProfile.Profile(timer)
        self._commit = group_commit.GroupCommit._commit

    def __enter__(self) -> WriterProfile:
        original, profiler = self._commit, self.profiler

        def commit(self_: Any, batch: Any) -> None:
            profiler.enable()
            try:
                original(self_, batch)
            finally:
                profiler.disable()

        group_commit.GroupCommit._commit = commit  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        group_commit.GroupCommit._commit = self._commit  # type: ignore[method-assign]


def print_profile(title: str, profiler: cProfile.Profile, requests: int, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    print(f"\n== {title}: own time by package ({requests} requests)")
    print(by_package(stats, requests, top))
    stats.sort_stats("tottime").print_stats(top)
    print("\n".join(out.getvalue().splitlines()[6:]))


# -- the catalog, in process ----------------------------------------------------------------


async def create_catalog(app: ASGIApp, contracts: int) -> Target:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:

        async def created(path: str, payload: dict[str, Any], token: str) -> Any:
            response = await client.post(
                path, json=payload, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
            return response.json()

        seller = await created("/admin/sellers", {"name": "Bench", "currency": "EUR"}, ADMIN_TOKEN)
        key = seller["apiKey"]
        components = [
            (await created("/api/v1/components", {"Name": n, "Unit": "GB", "ItemCode": n}, key))[
                "Id"
            ]
            for n in ("storage", "egress")
        ]
        plan = await created("/api/v1/plans", {"Name": "Cloud"}, key)
        variant = await created(
            "/api/v1/planvariants",
            {
                "PlanId": plan["Id"],
                "Name": "Monthly",
                "Currency": "EUR",
                "BillingPeriod": {"Unit": "Month", "Quantity": 1},
                "MeteredComponents": [
                    {"ComponentId": c, "Pricing": {"Model": "PerUnit", "PricePerUnit": 0.1}}
                    for c in components
                ],
            },
            key,
        )
        customer = (await created("/api/v1/customers", {"CompanyName": "Customer"}, key))["Id"]
        contract_ids = [
            (
                await created(
                    "/api/v1/contracts",
                    {
                        "CustomerId": customer,
                        "PlanVariantId": variant["Id"],
                        "StartDate": START.isoformat().replace("+00:00", "Z"),
                    },
                    key,
                )
            )["Id"]
            for _ in range(contracts)
        ]
    return Target(key, contract_ids, components, seller["sellerId"])


# -- main ----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, url: str, log_path: Path) -> None:
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN, embedded_worker=False)
    # As `arrears serve` logs: JSON lines at INFO, here to a file.
    log = log_path.open("a")
    with redirect_stderr(log):
        configure_logging("INFO", "json")
    app: Any = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    target = await create_catalog(app, args.contracts)
    bare: Any = bare_app()
    cases = [
        ("bare Starlette GET /healthz", bare, "get"),
        ("GET /healthz", app, "get"),
        ("bare Starlette POST usage", bare, "post"),
        ("POST usage", app, "post"),
        ("PUT one consumption", app, "put"),
    ]
    for what, asgi, kind in cases:  # warm-up: first calls build caches
        await measure(
            what, asgi, kind, target, requests=min(500, args.requests), clients=args.clients
        )
    figures = [
        await measure(what, asgi, kind, target, requests=args.requests, clients=args.clients)
        for what, asgi, kind in cases
    ]
    print(
        f"\n{args.requests} requests from {args.clients} clients, in process (ASGI), "
        f"{args.db}; CPU of every thread"
    )
    print(f"  {'what':<32}{'CPU µs/req':>12}{'wall req/s':>12}  statuses")
    for f in figures:
        print(f"  {f.what:<32}{f.cpu_us:>12.0f}{f.requests / f.wall_seconds:>12,.0f}  {f.statuses}")
    if args.ablate:
        await ablate(args, settings, target)
    if not args.profile:
        return
    for what, asgi, kind in cases:
        profiler = cProfile.Profile(TIMERS[args.timer])
        with WriterProfile(TIMERS[args.timer]) as writer:
            profiler.enable()
            figure = await measure(
                what, asgi, kind, target, requests=args.requests, clients=args.clients
            )
            profiler.disable()
        print_profile(f"{what}: event loop", profiler, figure.requests, args.top)
        if kind in ("post", "put") and asgi is app:
            print_profile(
                f"{what}: group commit writer", writer.profiler, figure.requests, args.top
            )


async def ablate(args: argparse.Namespace, settings: Settings, target: Target) -> None:
    """`GET /healthz` with one layer taken away at a time: what each layer costs."""
    access = logging.getLogger("arrears.access")
    without_context: Any = create_app(settings)
    without_context.user_middleware = [
        m for m in without_context.user_middleware if m.cls is not RequestContextMiddleware
    ]
    variants: list[tuple[str, Any, Callable[[bool], None]]] = [
        ("the app as served", create_app(settings), lambda _: None),
        (
            "access log off",
            create_app(settings),
            lambda on: access.setLevel(logging.WARNING if on else logging.NOTSET),
        ),
        ("metrics off", create_app(settings.model_copy(update={"metrics": False})), lambda _: None),
        ("no RequestContextMiddleware", without_context, lambda _: None),
        ("bare FastAPI, sync endpoint", bare_fastapi(sync=True), lambda _: None),
        ("bare FastAPI, async endpoint", bare_fastapi(sync=False), lambda _: None),
        ("bare Starlette", bare_app(), lambda _: None),
    ]
    print(f"\nGET /healthz, a layer at a time ({args.requests} requests, CPU of every thread)")
    for what, app, toggle in variants:
        toggle(True)
        try:
            await measure(
                what, app, "get", target, requests=min(500, args.requests), clients=args.clients
            )
            runs = [
                await measure(
                    what, app, "get", target, requests=args.requests, clients=args.clients
                )
                for _ in range(args.rounds)
            ]
        finally:
            toggle(False)
        cpu = sorted(f.cpu_us for f in runs)
        print(f"  {what:<34}{cpu[len(cpu) // 2]:>8.0f} µs  ({', '.join(f'{c:.0f}' for c in cpu)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--contracts", type=int, default=100)
    parser.add_argument("--profile", action="store_true", help="cProfile each case")
    parser.add_argument("--ablate", action="store_true", help="healthz a layer at a time")
    parser.add_argument("--rounds", type=int, default=3, help="of each ablation")
    parser.add_argument(
        "--timer",
        choices=("cpu", "wall"),
        default="cpu",
        help="cProfile's timer: this thread's CPU time, or wall time (counts GIL waits)",
    )
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="arrears-profile-") as workdir,
        fresh_database(args.db, Path(workdir), "profile") as url,
    ):
        uvloop.run(run(args, url, Path(workdir) / "server.log"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
