"""How fast webhooks reach a local receiver (issue 20), on SQLite and PostgreSQL.

In one process: a seller with one endpoint pointing at a receiving HTTP server on
loopback (a thread, answering 200 at once), and a `Worker` delivering with its four
sending threads, as `arrears serve` runs it.

- throughput: 1,000 events committed (one transaction each) while no worker runs, then
  a worker started: events delivered per second until the last arrives. Baseline: the
  same 1,000 signed POSTs sent straight to the receiver by four threads with httpx (no
  database), so the ratio is the price of the outbox.
- delay: 1,000 events committed one by one, at most 200 a second (fewer where each
  commit takes longer; the rate reached is printed), while the worker runs: the time
  from each commit to its arrival at the receiver, p50 and p99.

    .venv/bin/python bench/bench_webhooks.py [sqlite|postgresql ...]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from _server import fresh_database
from arrears.api import webhook_payloads
from arrears.domain.clock import SystemClock
from arrears.services import sellers
from arrears.services.webhook_delivery import HttpSender
from arrears.services.webhook_secrets import SecretBox
from arrears.services.webhooks import Webhooks
from arrears.store.unit_of_work import Database, UnitOfWork
from arrears.worker.runner import WebhookSending, Worker

EVENTS = 1_000
RATE = 200  # events committed per second while measuring the delay


class _Server(ThreadingHTTPServer):
    # Workers send many attempts at once: a listen backlog of 5 would refuse some.
    request_queue_size = 256


class _Receiver:
    """Records when each `webhook-id` arrived (perf_counter: one process, one clock)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.done = threading.Event()
        self.expected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.arrived[self.headers["webhook-id"]] = time.perf_counter()
                if len(receiver.arrived) >= receiver.expected:
                    receiver.done.set()
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def expect(self, count: int) -> None:
        self.arrived.clear()
        self.expected = count
        self.done.clear()


def main(kinds: list[str]) -> None:
    webhook_payloads.install()
    with tempfile.TemporaryDirectory() as workdir:
        for kind in kinds:
            with fresh_database(kind, Path(workdir), "webhooks") as url:
                _measure(kind, Database(url))


def _measure(kind: str, database: Database) -> None:
    clock = SystemClock()
    box = SecretBox(Fernet.generate_key().decode())
    receiver = _Receiver()
    with database.registry_work() as registry:
        seller = sellers.create_seller(
            registry, clock, name="Bench", currency_code="EUR", invoice_prefix="INV"
        )
    seller_id = seller.seller_id
    with database.unit_of_work(seller_id) as work:
        endpoint, _ = _webhooks(work, clock, box).create(receiver.url, ["*"], None)

    baseline = _baseline(receiver)

    receiver.expect(EVENTS)
    for _ in range(EVENTS):
        _commit_one(database, clock, seller_id, box, endpoint.id)
    worker = _worker(database, clock, box)
    started = time.perf_counter()
    worker.start()
    receiver.done.wait(300)
    throughput = len(receiver.arrived) / (time.perf_counter() - started)

    receiver.expect(EVENTS)
    committed: dict[str, float] = {}
    paced_from = time.perf_counter()
    for n in range(EVENTS):
        event_id = _commit_one(database, clock, seller_id, box, endpoint.id)
        committed[event_id] = time.perf_counter()
        time.sleep(max(0.0, paced_from + (n + 1) / RATE - time.perf_counter()))
    rate = EVENTS / (time.perf_counter() - paced_from)  # below RATE if commits are slower
    receiver.done.wait(300)
    worker.stop()
    delays = sorted(receiver.arrived[i] - committed[i] for i in committed if i in receiver.arrived)
    p50 = statistics.median(delays) * 1000
    p99 = delays[int(len(delays) * 0.99) - 1] * 1000
    print(
        f"{kind}: {throughput:,.0f} events/s delivered ({baseline:,.0f}/s raw httpx, ratio "
        f"{throughput / baseline:.2f}); commit -> delivery at {rate:.0f}/s: p50 {p50:.0f} ms, "
        f"p99 {p99:.0f} ms ({len(delays)} of {EVENTS} delivered)"
    )
    receiver.server.shutdown()
    database.dispose()


def _webhooks(work: UnitOfWork, clock: SystemClock, box: SecretBox) -> Webhooks:
    return Webhooks(work, clock, box=box, allow_private=True)


def _commit_one(
    database: Database, clock: SystemClock, seller_id: str, box: SecretBox, endpoint_id: str
) -> str:
    """One event (`webhook.test`) in a transaction of its own; its id."""
    with database.unit_of_work(seller_id) as work:
        delivery = _webhooks(work, clock, box).send_test(endpoint_id)
    return delivery.event_id


def _worker(database: Database, clock: SystemClock, box: SecretBox) -> Worker:
    sending = WebhookSending(box=box, sender=HttpSender(allow_private=True))
    return Worker(database, clock, webhooks=sending)


def _baseline(receiver: _Receiver) -> float:
    """Signed-size POSTs straight to the receiver, four threads, no database: per second."""
    receiver.expect(EVENTS)
    body = b'{"type":"webhook.test","timestamp":"2026-01-01T00:00:00Z","data":{}}'
    with httpx.Client() as client, ThreadPoolExecutor(4) as pool:
        started = time.perf_counter()
        list(
            pool.map(
                lambda n: client.post(receiver.url, content=body, headers={"webhook-id": str(n)}),
                range(EVENTS),
            )
        )
        return EVENTS / (time.perf_counter() - started)


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
