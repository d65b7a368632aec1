"""`arrears.client` and `arrears submit` against a real `arrears serve` process.

The server runs on a free port over a temporary SQLite file. Every test builds its own
seller, catalog and contracts over HTTP, then checks the rows stored in the database
against the records of the file: none lost, none stored twice.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import msgspec
import pytest
from sqlalchemy import func, select

from arrears.client import Client, ConsumptionRecord, RetryPolicy, derived_key
from arrears.domain.clock import parse_instant
from arrears.store.database import Database
from arrears.store.tables import TaskRow, UsageEntryRow

ADMIN_TOKEN = "e2e-admin-token"
START = "2026-01-01T00:00:00Z"
COLUMNS = ["subscriptionId", "itemCode", "quantity", "dueDate", "key"]

StoredRow = tuple[str, str, Decimal, str, str]
"""(contract id, component id, quantity, due date in UTC ISO 8601, key) of a usage row."""


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str
    log: Path


@dataclass(frozen=True)
class Seller:
    server: Server
    seller_id: str
    api_key: str
    contract_ids: tuple[str, str]
    component_by_item: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ARREARS_URL": self.server.url,
            "ARREARS_API_KEY": self.api_key,
            "ARREARS_SELLER_ID": self.seller_id,
        }

    def client(self, **options: object) -> Client:
        return Client(self.server.url, self.api_key, self.seller_id, **options)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server")
    database_url = f"sqlite:///{folder / 'arrears.db'}"
    port = _free_port()
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database_url,
        "ARREARS_ADMIN_TOKEN": ADMIN_TOKEN,
        "ARREARS_TEST_CLOCK": START,
        "ARREARS_LOG_FORMAT": "text",
        "ARREARS_LOG_LEVEL": "WARNING",
    }
    log = folder / "server.log"
    with log.open("wb") as stream:
        process = subprocess.Popen(  # noqa: S603 (our own server, fixed arguments)
            [sys.executable, "-m", "arrears", "serve", "--port", str(port)],
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"the server exited:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start:\n{log.read_text()}"
            time.sleep(0.1)
        yield Server(url, database_url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def seller(server: Server) -> Seller:
    """A seller with two metered components (item codes storage-gb, egress-gb, 0.10 per
    unit) and two contracts starting at START, made over HTTP."""
    response = httpx.post(
        f"{server.url}/admin/sellers",
        json={"name": "Acme", "currency": "EUR", "invoicePrefix": "INV"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    seller_id, api_key = response.json()["sellerId"], response.json()["apiKey"]
    with Client(server.url, api_key, seller_id) as client:
        components = {
            code: client.create_component(name=code, unit="GB", item_code=code)["Id"]
            for code in ("storage-gb", "egress-gb")
        }
        plan = client.create_plan(name="Cloud")
        variant = client.create_plan_variant(
            plan_id=plan["Id"],
            name="Monthly",
            currency="EUR",
            metered_components=[
                {
                    "ComponentId": id_,
                    "Pricing": {"Model": "PerUnit", "PricePerUnit": Decimal("0.10")},
                }
                for id_ in components.values()
            ],
        )
        customer = client.create_customer(company_name="Globex")
        contracts = tuple(
            client.create_contract(
                customer_id=customer["Id"], plan_variant_id=variant["Id"], start_date=START
            )["Id"]
            for _ in range(2)
        )
    return Seller(server, seller_id, api_key, (contracts[0], contracts[1]), components)


# -- files and what they should store -------------------------------------------------------


def _rows(seller: Seller, count: int, *, tag: str = "r") -> list[dict[str, str]]:
    """`count` distinct valid rows over both contracts and components; every other one
    has no key (it gets its derived key). Quantities have up to 6 decimal places."""
    items = sorted(seller.component_by_item)
    return [
        {
            "subscriptionId": seller.contract_ids[n % 2],
            "itemCode": items[(n // 2) % 2],
            "quantity": f"{n}.{n % 7:06d}" if n % 3 else str(n),
            "dueDate": f"2026-01-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
            "key": f"{tag}-{n}" if n % 2 else "",
        }
        for n in range(count)
    ]


def _write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = COLUMNS) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _expected(seller: Seller, rows: list[dict[str, str]]) -> list[StoredRow]:
    out = []
    for row in rows:
        record = ConsumptionRecord(
            subscription_id=row["subscriptionId"],
            quantity=row["quantity"],
            item_code=row["itemCode"],
            due_date=row["dueDate"],
        )
        out.append(
            (
                row["subscriptionId"],
                seller.component_by_item[row["itemCode"]],
                Decimal(row["quantity"]),
                parse_instant(row["dueDate"]).isoformat(),
                row["key"] or derived_key(record),
            )
        )
    return sorted(out)


def _stored(seller: Seller) -> list[StoredRow]:
    database = Database(seller.server.database_url)
    try:
        with database.read() as session:
            rows = session.execute(
                select(
                    UsageEntryRow.contract_id,
                    UsageEntryRow.component_id,
                    UsageEntryRow.quantity,
                    UsageEntryRow.due_date,
                    UsageEntryRow.key,
                ).where(UsageEntryRow.seller_id == seller.seller_id)
            ).all()
    finally:
        database.dispose()
    return sorted(
        (r.contract_id, r.component_id, r.quantity, _utc(r.due_date), r.key or "") for r in rows
    )


def _tasks(seller: Seller) -> int:
    database = Database(seller.server.database_url)
    try:
        with database.read() as session:
            return int(
                session.execute(
                    select(func.count())
                    .select_from(TaskRow)
                    .where(TaskRow.seller_id == seller.seller_id)
                ).scalar_one()
            )
    finally:
        database.dispose()


def _utc(instant: object) -> str:
    from datetime import UTC, datetime  # noqa: PLC0415

    assert isinstance(instant, datetime)
    aware = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _cli(seller: Seller, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own CLI)
        [
            sys.executable,
            "-c",
            "from arrears.client.commands import commands_app; commands_app()",
            *args,
        ],
        env=seller.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# -- arrears submit ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_50_000_record_csv_is_saved_exactly_once_and_resubmitting_it_saves_nothing_new(
    seller: Seller, tmp_path: Path
) -> None:
    rows = _rows(seller, 50_000)
    usage = _write_csv(tmp_path / "usage.csv", rows)

    first = _cli(seller, "submit", str(usage), "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "50,000" in first.stdout
    assert not (tmp_path / "usage.csv.errors.csv").exists()
    expected = _expected(seller, rows)
    assert len(expected) == 50_000
    assert _stored(seller) == expected

    again = _cli(seller, "submit", str(usage), "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    # Same chunks, same Idempotency-Keys: the first tasks answer; all count as duplicates.
    assert re.search(r"50,000\W+0\W+50,000\W+0\W", again.stdout), again.stdout
    assert _stored(seller) == expected


def test_bad_rows_go_to_the_errors_csv_and_the_corrected_file_completes_the_submission(
    seller: Seller, tmp_path: Path
) -> None:
    good = _rows(seller, 9)
    bad = [dict(row) for row in good]
    bad[1]["quantity"] = "-4"
    bad[4]["quantity"] = "7.123456789"
    bad[5].update(key="", dueDate="")  # refused before sending: no key and no due date
    usage = _write_csv(tmp_path / "usage.csv", bad)

    # Sent in chunks of 3: rows 0-2 (row 1 bad: the chunk fails), rows 3, 4, 6 (row 4
    # bad: fails), rows 7-8 (saved).
    submitted = _cli(seller, "submit", str(usage), "--no-progress", "--chunk-size", "3")
    assert submitted.returncode == 1, submitted.stdout + submitted.stderr

    held = "not saved: another record of its chunk failed (each chunk is all or nothing)"
    messages = {
        0: held,
        1: "quantity must not be negative.",
        2: held,
        3: held,
        4: "quantity has more than 6 decimal places.",
        5: "a record without a key needs a dueDate",
        6: held,
    }
    expected_errors = "subscriptionId,itemCode,quantity,dueDate,key,error\n" + "".join(
        ",".join([*(bad[n][c] for c in COLUMNS), messages[n]]) + "\n" for n in sorted(messages)
    )
    errors_csv = tmp_path / "usage.csv.errors.csv"
    assert errors_csv.read_text() == expected_errors
    assert "7.123456789" in expected_errors
    assert _stored(seller) == _expected(seller, good[7:])

    # Correct the rows in the errors file itself and submit it.
    fixed = (
        errors_csv.read_text()
        .replace(",-4,", ",4,")
        .replace("7.123456789", "7.123457")
        .replace(f",{bad[5]['quantity']},,,", f",{bad[5]['quantity']},2026-01-06T05:00:00Z,,")
    )
    errors_csv.write_text(fixed)
    corrected = _cli(seller, "submit", str(errors_csv), "--no-progress", "--chunk-size", "3")
    assert corrected.returncode == 0, corrected.stdout + corrected.stderr
    assert not (tmp_path / "usage.csv.errors.csv.errors.csv").exists()
    final = [dict(row) for row in good]
    final[1]["quantity"] = "4"
    final[4]["quantity"] = "7.123457"
    final[5]["key"] = ""  # it has the derived key now
    assert _stored(seller) == _expected(seller, final)

    # The original file again: its bad rows fail as before, nothing new is stored.
    repeated = _cli(seller, "submit", str(usage), "--no-progress", "--chunk-size", "3")
    assert repeated.returncode == 1
    assert errors_csv.read_text() == expected_errors
    assert _stored(seller) == _expected(seller, final)


def test_dry_run_saves_nothing_and_reports_what_would_be_saved(
    seller: Seller, tmp_path: Path
) -> None:
    usage = _write_csv(tmp_path / "usage.csv", _rows(seller, 10))
    result = _cli(seller, "submit", str(usage), "--no-progress", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dry run" in result.stdout
    assert _stored(seller) == []


def test_other_column_names_are_mapped_and_json_and_ndjson_files_are_read(
    seller: Seller, tmp_path: Path
) -> None:
    rows = _rows(seller, 9, tag="m")
    renamed = [
        {
            "contract": r["subscriptionId"],
            "sku": r["itemCode"],
            "qty": r["quantity"],
            "when": r["dueDate"],
            "key": r["key"],
        }
        for r in rows[:3]
    ]
    usage = _write_csv(tmp_path / "usage.csv", renamed, ["contract", "sku", "qty", "when", "key"])
    ndjson = tmp_path / "usage.ndjson"
    # NDJSON with quantities as JSON numbers, JSON with them as strings.
    ndjson.write_bytes(
        b"".join(
            msgspec.json.encode({**r, "quantity": Decimal(r["quantity"])}) + b"\n"
            for r in rows[3:6]
        )
    )
    document = tmp_path / "usage.json"
    document.write_bytes(msgspec.json.encode({"consumptions": rows[6:]}))
    mapped = _cli(
        seller,
        "submit",
        str(usage),
        "--no-progress",
        "--map",
        "subscriptionId=contract,itemCode=sku",
        "--map",
        "quantity=qty",
        "--map",
        "dueDate=when",
    )
    assert mapped.returncode == 0, mapped.stdout + mapped.stderr
    both = _cli(seller, "submit", str(ndjson), str(document), "--no-progress")
    assert both.returncode == 0, both.stdout + both.stderr
    assert _stored(seller) == _expected(seller, rows)


# -- fault injection --------------------------------------------------------------------------


class FaultyTransport(httpx.BaseTransport):
    """The real network to the server, with faults on chosen requests (1-based count):
    `drop` fails before sending, `lose` sends but loses the answer, a status answers it
    without forwarding (with `Retry-After` for 429 and 503)."""

    def __init__(self, faults: dict[int, str | int]) -> None:
        self.inner = httpx.HTTPTransport()
        self.faults = faults
        self.count = 0
        self.fired: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        fault = self.faults.get(self.count)
        if fault is None:
            return self.inner.handle_request(request)
        self.fired.append(f"{request.method} {fault}")
        if fault == "drop":
            raise httpx.ConnectError("injected: connection refused", request=request)
        if fault == "lose":
            response = self.inner.handle_request(request)
            response.read()
            response.close()
            raise httpx.RemoteProtocolError("injected: connection dropped", request=request)
        headers = {"Retry-After": "1"} if fault in (429, 503) else {}
        return httpx.Response(int(fault), headers=headers, json={"status": fault, "title": "x"})

    def close(self) -> None:
        self.inner.close()


def test_dropped_connections_lost_answers_503_and_429_lose_and_duplicate_nothing(
    seller: Seller,
) -> None:
    rows = _rows(seller, 5_000, tag="f")
    records = [
        ConsumptionRecord(
            subscription_id=r["subscriptionId"],
            quantity=r["quantity"],
            item_code=r["itemCode"],
            due_date=r["dueDate"],
            key=r["key"] or None,
        )
        for r in rows
    ]
    # Requests 1-5 post chunks 1-4 (chunk 1's answer is lost, so it is posted twice).
    faults: dict[int, str | int] = {1: "lose", 3: 503, 4: "drop", 6: 429, 8: "lose", 11: 500}
    transport = FaultyTransport(faults)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    retry = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05)
    with seller.client(
        transport=transport, chunk_size=1_000, retry=retry, sleep=sleep, max_in_flight=2
    ) as client:
        result = client.submit_bulk(records)
    assert result.ok, result.failed[:3]
    assert (result.total, result.saved + result.duplicates) == (5_000, 5_000)
    assert len(transport.fired) == len(faults)
    assert waits.count(1.0) == 2  # Retry-After of the 503 and of the 429 were honoured
    assert _stored(seller) == _expected(seller, rows)


# -- arrears agent ----------------------------------------------------------------------------


def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def _agent(seller: Seller, spool: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 (our own CLI)
        [
            sys.executable,
            "-c",
            "from arrears.client.commands import commands_app; commands_app()",
            "agent",
            "--spool",
            str(spool),
            "--poll",
            "0.1",
            *extra,
        ],
        env=seller.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_an_agent_killed_mid_submission_resumes_its_tasks_and_stores_each_record_once(
    seller: Seller, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    (spool / "incoming").mkdir(parents=True)
    rows = _rows(seller, 40_000, tag="a")
    bad = _rows(seller, 4, tag="b")
    bad[2]["quantity"] = "-1"
    _write_csv(tmp_path / ".bad.csv", bad).replace(spool / "incoming" / "b-bad.csv")
    _write_csv(tmp_path / ".usage.csv", rows).replace(spool / "incoming" / "a-usage.csv")

    journal = spool / "journal" / "a-usage.csv.json"
    first = _agent(seller, spool, "--chunk-size", "2000")
    try:
        _until(
            lambda: journal.exists() and journal.read_text().count("sha256-") >= 3,
            "the agent has journaled three tasks",
        )
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait(timeout=30)
        assert first.stdout is not None
        first.stdout.close()
    assert first.returncode == -signal.SIGKILL
    assert (spool / "processing" / "a-usage.csv").exists()

    second = _agent(seller, spool, "--once")
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 1, output  # b-bad.csv failed
    assert "resuming" in output, output
    assert (spool / "done" / "a-usage.csv").exists(), output
    assert (spool / "failed" / "b-bad.csv").exists(), output
    assert "must not be negative" in (spool / "failed" / "b-bad.csv.errors.csv").read_text()
    assert not list((spool / "processing").iterdir())
    assert not list((spool / "journal").glob("*.json"))
    assert _stored(seller) == _expected(seller, rows)
    # The resumed agent polled the journaled tasks and re-posted the others with their
    # Idempotency-Keys: one task per chunk (20) and one for b-bad.csv, none more.
    assert _tasks(seller) == 21
