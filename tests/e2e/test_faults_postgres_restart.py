"""Issue 7: PostgreSQL restarts while bulk tasks are applied and billing runs; the
service recovers without operator action and without losing or duplicating a record.

A real `arrears serve` (API and embedded worker) runs against a private PostgreSQL
server of this test (never the machine's shared cluster). Clients keep submitting
through the SDK, which retries 503s and connection errors as a real client does, and a
probe without retries records every answer. The server is restarted twice:

1. `pg_ctl restart -m fast` while a bulk task is being applied: the task's `COPY` is
   held by a table lock of the test, so the restart lands in the middle of it;
2. `pg_ctl stop -m immediate` (a crash), a second of outage, then `start`, while
   billing runs: one contract's row lock holds billing after its first batch.

Then: the server (never restarted) is ready again; every accepted record is stored
exactly once; no task stays Processing; the invoices equal those an uninterrupted run
issues on a copy of the database taken before billing (numbers gapless); every answer
during the outages was a success or a 503 problem+json with `Retry-After` (never a 500),
and none took longer than a bound.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
import pytest

from arrears.client import ArrearsClientError, Client, ConsumptionRecord
from arrears.domain.clock import TestClock
from arrears.services.billing import run_billing
from arrears.store import schema
from arrears.store.database import Database
from arrears.store.tasks import TaskQueue
from tests.e2e.billed import assert_each_entry_billed_once, assert_gapless, invoices
from tests.e2e.private_postgres import PrivatePostgres, private_postgres
from tests.e2e.served import Served, served
from tests.ingest_factories import seller_with_waiting_task

CONTRACTS = 30
PERIODS = 3
"""Every contract is due for January, February and March at BILLING_TIME: 90 invoices."""
START = "2026-01-01T00:00:00Z"
BILLING_TIME = "2026-04-01T00:00:00Z"
LARGE_TASK = 2_000
"""Records of the bulk task that the first restart interrupts."""
ANSWER_BOUND = 30.0
"""Seconds within which every request must be answered, outage or not (a generous
bound on a loaded two-core machine; a hang would take the client's whole timeout)."""


# -- the seller ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seller:
    seller_id: str
    api_key: str
    component_ids: tuple[str, str]
    contract_ids: tuple[str, ...]

    def client(self, server: Served) -> Client:
        return Client(server.url, self.api_key, self.seller_id)


def _new_seller(server: Served) -> Seller:
    """A seller with `CONTRACTS` contracts on a plan with a free quota, graduated tiers,
    a recurring fee and tax, made over HTTP."""
    response = httpx.post(
        f"{server.url}/admin/sellers",
        json={"name": "Acme", "invoicePrefix": "INV"},
        headers=server.admin,
    )
    assert response.status_code == 201, response.text
    seller_id, api_key = response.json()["sellerId"], response.json()["apiKey"]
    with Client(server.url, api_key, seller_id) as client:
        storage = client.create_component(name="Storage", unit="GB")["Id"]
        calls = client.create_component(name="API calls", unit="call")["Id"]
        plan = client.create_plan(name="Cloud")["Id"]
        variant = client.create_plan_variant(
            plan_id=plan,
            name="Monthly",
            currency="EUR",
            recurring_fee=Decimal("9.90"),
            tax_rate=Decimal(19),
            metered_components=[
                {
                    "ComponentId": storage,
                    "Pricing": {"Model": "PerUnit", "PricePerUnit": Decimal("0.10")},
                    "FreeQuota": Decimal(10),
                },
                {
                    "ComponentId": calls,
                    "Pricing": {
                        "Model": "Graduated",
                        "Tiers": [
                            {"UpTo": Decimal(100), "PricePerUnit": Decimal("0.01")},
                            {"UpTo": None, "PricePerUnit": Decimal("0.005")},
                        ],
                    },
                },
            ],
        )["Id"]
        customer = client.create_customer(company_name="Globex")["Id"]
        contracts = tuple(
            client.create_contract(customer_id=customer, plan_variant_id=variant, start_date=START)[
                "Id"
            ]
            for _ in range(CONTRACTS)
        )
    return Seller(seller_id, api_key, (storage, calls), contracts)


# -- clients that keep submitting ---------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One answer the probe received."""

    what: str
    status: int
    content_type: str
    problem_type: str
    retry_after: str | None
    seconds: float


@dataclass
class Traffic:
    """Clients submitting while the database goes away and comes back.

    - singles: one keyed usage post after another, through the SDK (it retries);
    - bulks: small bulk submissions with an `Idempotency-Key`, half of their records
      without a key (so a task applied twice would show), through the SDK;
    - a probe without retries, alternating a read and a keyed post, that records every
      answer it gets.

    `due(n)` is the due date of the n-th record."""

    server: Served
    seller: Seller
    phase: str
    due: Callable[[int], str]
    accepted_singles: set[str] = field(default_factory=set)
    accepted_probes: set[str] = field(default_factory=set)
    tasks: dict[str, str] = field(default_factory=dict)
    """Idempotency-Key -> the task's URL, for every accepted bulk submission."""
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Traffic:
        for loop in (self._singles, self._bulks, self._probe):
            thread = threading.Thread(target=self._run, args=(loop,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads), "a client hangs"

    def _run(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except Exception as error:  # reported by the test, not lost in a thread
            self.failures.append(f"{loop.__name__}: {error!r}")

    def _contract(self, n: int) -> str:
        return self.seller.contract_ids[n % CONTRACTS]

    def _singles(self) -> None:
        with self.seller.client(self.server) as client:
            n = 0
            while not self._stop.is_set():
                key = f"{self.phase}-single-{n}"
                try:
                    client.post_usage(
                        self._contract(n),
                        component_id=self.seller.component_ids[n % 2],
                        quantity=Decimal(n % 17 + 1),
                        due_date=self.due(n),
                        key=key,
                    )
                except ArrearsClientError as error:
                    self.failures.append(f"single {key}: {error}")
                else:
                    self.accepted_singles.add(key)
                n += 1

    def _bulks(self) -> None:
        with self.seller.client(self.server) as client:
            n = 0
            while not self._stop.is_set():
                key = f"{self.phase}-bulk-{n}"
                records = [
                    ConsumptionRecord(
                        subscription_id=self._contract(n * 7 + i),
                        product_id=self.seller.component_ids[i % 2],
                        quantity=Decimal(i % 13 + 1),
                        due_date=self.due(n + i),
                        key=f"{key}/{i}" if i % 2 else None,
                    )
                    for i in range(100)
                ]
                try:
                    self.tasks[key] = client.post_bulk(records, idempotency_key=key)
                except ArrearsClientError as error:
                    self.failures.append(f"bulk {key}: {error}")
                n += 1
                self._stop.wait(0.05)

    def _probe(self) -> None:
        headers = {"Authorization": f"Bearer {self.seller.api_key}"}
        with httpx.Client(base_url=self.server.url, headers=headers, timeout=120) as http:
            n = 0
            while not self._stop.is_set():
                contract = self._contract(n)
                started = time.monotonic()
                if n % 2:
                    key = f"{self.phase}-probe-{n}"
                    what = f"POST usage {key}"
                    response = http.post(
                        f"/api/v1/contracts/{contract}/usage",
                        json={
                            "ComponentId": self.seller.component_ids[0],
                            "Quantity": 1,
                            "DueDate": self.due(n),
                            "Key": key,
                        },
                    )
                    if response.status_code in (200, 201):
                        self.accepted_probes.add(key)
                else:
                    what = "GET usage"
                    response = http.get(f"/api/v1/contracts/{contract}/usage?take=1")
                problem = (
                    response.json().get("type", "")
                    if response.headers.get("content-type") == "application/problem+json"
                    else ""
                )
                self.answers.append(
                    Answer(
                        what,
                        response.status_code,
                        response.headers.get("content-type", ""),
                        problem,
                        response.headers.get("Retry-After"),
                        time.monotonic() - started,
                    )
                )
                n += 1
                self._stop.wait(0.01)


# -- watching the database ----------------------------------------------------------------


def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _scalar(pg: PrivatePostgres, query: str, *params: object) -> int:
    with psycopg.connect(pg.conninfo("arrears"), autocommit=True) as connection:
        row = connection.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def _waiting_on_a_lock(pg: PrivatePostgres, statement: str) -> Callable[[], bool]:
    """Whether a session of the server waits for a lock in a statement matching the
    regular expression `statement`."""
    return lambda: (
        _scalar(
            pg,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = 'arrears' "
            "AND wait_event_type = 'Lock' AND query ~* %s",
            statement,
        )
        > 0
    )


def _wait_for_tasks(
    seller: Seller, server: Served, traffic: Traffic
) -> dict[str, tuple[str, int, int, int]]:
    """Wait until every accepted task has finished; per Idempotency-Key, the task's
    (message, total, saved, duplicates)."""
    outcomes = {}
    with seller.client(server) as client:
        for key, location in traffic.tasks.items():
            task = client.wait_for_task(location, timeout=90)
            outcomes[key] = (
                task.message,
                task.total_records,
                task.saved_records,
                task.duplicate_records,
            )
    return outcomes


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.mark.slow
def test_postgresql_restarts_lose_and_duplicate_nothing_and_need_no_operator(
    postgres: PrivatePostgres, tmp_path: Path
) -> None:
    url = postgres.create_database("arrears")
    with served(url, tmp_path / "server.log", clock=START) as server:
        seller = _new_seller(server)
        early = Traffic(
            server, seller, "jan", lambda n: f"2026-0{1 + n % 3}-{1 + n % 28:02d}T00:00:00Z"
        )

        # 1. A fast restart in the middle of applying a bulk task.
        with early:
            blocker = psycopg.connect(postgres.conninfo("arrears"))
            blocker.execute("LOCK TABLE usage_entries IN SHARE ROW EXCLUSIVE MODE")
            with seller.client(server) as client:
                early.tasks["jan-large"] = client.post_bulk(
                    [
                        ConsumptionRecord(
                            subscription_id=seller.contract_ids[n % CONTRACTS],
                            product_id=seller.component_ids[n % 2],
                            quantity=Decimal(n % 50 + 1),
                            due_date=f"2026-0{1 + n % 3}-{1 + n % 28:02d}T12:00:00Z",
                            key=f"large/{n}" if n % 3 else None,
                        )
                        for n in range(LARGE_TASK)
                    ],
                    idempotency_key="jan-large",
                )
            _until(
                _waiting_on_a_lock(postgres, r"^\s*COPY\s+usage_entries"), "the task's COPY waits"
            )
            postgres.restart()
            blocker.close()
            time.sleep(0.5)  # clients keep going after the restart
        early_tasks = _wait_for_tasks(seller, server, early)

        # The database as it is before billing, billed later without interruption.
        postgres.dump_into("arrears", "twin")

        # 2. A crash (immediate stop) and a second of outage while billing runs.
        late = Traffic(server, seller, "apr", lambda n: f"2026-04-{15 + n % 10}T00:00:00Z")
        with late:
            held = sorted(seller.contract_ids)[CONTRACTS // 3]
            blocker = psycopg.connect(postgres.conninfo("arrears"))
            blocker.execute("SELECT id FROM contracts WHERE id = %s FOR UPDATE", (held,))
            moved = httpx.put(
                f"{server.url}/admin/clock", json={"now": BILLING_TIME}, headers=server.admin
            )
            assert moved.status_code == 200, moved.text
            _until(_waiting_on_a_lock(postgres, r"\mcontracts\M.*FOR UPDATE"), "billing waits")
            billed_before = _scalar(postgres, "SELECT count(*) FROM invoices")
            postgres.stop("immediate")
            blocker.close()
            time.sleep(1)
            postgres.start()
            _until(
                lambda: _scalar(postgres, "SELECT count(*) FROM invoices") == CONTRACTS * PERIODS,
                "billing catches up",
            )
            time.sleep(0.5)
        late_tasks = _wait_for_tasks(seller, server, late)

        # Recovered by itself: the same server process is ready again.
        assert server.process.poll() is None
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        log = server.log_text()

    assert 0 < billed_before < CONTRACTS * PERIODS, "the crash did not land mid-billing"

    for traffic in (early, late):
        assert traffic.failures == []
        _assert_answers_were_successes_or_503_problems(traffic.answers)
    assert any(a.status == 503 for a in early.answers + late.answers), "no client saw an outage"
    assert "unhandled error" not in log

    database = Database(url)
    twin = Database(postgres.url("twin"))
    try:
        _assert_every_accepted_record_stored_once(
            postgres, [early, late], {**early_tasks, **late_tasks}
        )
        assert _scalar(postgres, "SELECT count(*) FROM tasks WHERE status = 'Processing'") == 0

        assert schema.current_revision(twin) is not None
        reference = run_billing(twin, TestClock(datetime(2026, 4, 1, tzinfo=UTC)))
        assert reference.invoices == CONTRACTS * PERIODS
        billed, numbers = invoices(database)
        expected, _ = invoices(twin)
        assert billed == expected
        assert_gapless(numbers)
        assert_each_entry_billed_once(database)
    finally:
        database.dispose()
        twin.dispose()


def _assert_answers_were_successes_or_503_problems(answers: list[Answer]) -> None:
    assert answers, "the probe got no answer"
    assert Counter(a.status for a in answers).keys() <= {200, 201, 503}, Counter(
        (a.what.split(" ")[0], a.status) for a in answers
    )
    for answer in answers:
        assert answer.seconds < ANSWER_BOUND, answer
        if answer.status == 503:
            assert answer.content_type == "application/problem+json", answer
            assert answer.problem_type.endswith("/database-unavailable"), answer
            assert answer.retry_after is not None, answer
            assert int(answer.retry_after) > 0, answer


def _assert_every_accepted_record_stored_once(
    pg: PrivatePostgres,
    traffics: list[Traffic],
    tasks: dict[str, tuple[str, int, int, int]],
) -> None:
    with psycopg.connect(pg.conninfo("arrears"), autocommit=True) as connection:
        keys = Counter(
            dict(
                connection.execute(
                    "SELECT key, count(*) FROM usage_entries WHERE key IS NOT NULL GROUP BY key"
                ).fetchall()
            )
        )
        per_task = dict(
            connection.execute(
                "SELECT t.idempotency_key, count(u.id) FROM tasks t "
                "LEFT JOIN usage_entries u ON u.submission_id = t.id "
                "GROUP BY t.idempotency_key"
            ).fetchall()
        )
    accepted = set().union(*(t.accepted_singles | t.accepted_probes for t in traffics))
    assert accepted
    assert {key: keys[key] for key in accepted} == dict.fromkeys(accepted, 1)
    assert set(keys.values()) == {1}
    for key, (message, total, saved, duplicates) in tasks.items():
        assert (message, saved + duplicates) == ("Successful", total), key
        assert duplicates == 0, key
        assert per_task[key] == saved, key  # applied once: its keyless records too
    assert set(per_task) == set(tasks)


def test_a_worker_takes_back_at_once_a_task_whose_lease_it_could_not_release(
    database: Database, clock: TestClock
) -> None:
    """When applying a task fails because the database went away, the worker cannot
    release its lease either. The next time it looks for work it takes the task back at
    once, rather than after the lease; other workers still wait for the lease."""
    task_id = seller_with_waiting_task(database, clock)
    lease = timedelta(minutes=5)
    now = datetime.now(UTC)
    with database.write() as session:
        assert TaskQueue(session).claim("worker-a", now, lease) is not None
    # worker-a's attempt failed, and so did its release: the lease stands.
    with database.write() as session:
        assert TaskQueue(session).claim("worker-b", now, lease) is None
    with database.write() as session:
        again = TaskQueue(session).claim("worker-a", now, lease)
    assert again is not None
    assert (again.id, again.attempts) == (task_id, 2)
