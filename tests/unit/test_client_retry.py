"""`arrears.client` over `httpx.MockTransport`: retries, backoff, Retry-After, typed
errors, chunking and the mapping of task errors back to records. No server."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal

import httpx
import msgspec
import pytest

from arrears.client import (
    AsyncClient,
    Client,
    ConsumptionRecord,
    InvalidError,
    NotFoundError,
    RetryPolicy,
    ServerError,
    TransportFailure,
)
from arrears.client._base import TASK_WAIT_SECONDS

SELLER = "s1"
BULK = f"/api/sellers/{SELLER}/services/bulkconsumptions"

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, waits: list[float], **options: object) -> Client:
    retry = RetryPolicy(attempts=5, base_delay=1.0, max_delay=8.0, rng=random.Random(7))  # noqa: S311 (seeded jitter)
    return Client(
        "http://arrears.test",
        "key",
        SELLER,
        transport=httpx.MockTransport(handler),
        retry=retry,
        sleep=waits.append,
        **options,  # type: ignore[arg-type]
    )


def _task(task_id: str, message: str = "Successful", **fields: object) -> dict[str, object]:
    return {
        "taskId": task_id,
        "message": message,
        "totalRecords": fields.get("total", 0),
        "savedRecords": fields.get("saved", 0),
        "duplicateRecords": 0,
        "errors": fields.get("errors", []),
        "createdAt": None,
        "completedAt": None,
    }


def _records(count: int) -> list[ConsumptionRecord]:
    return [
        ConsumptionRecord(
            subscription_id="c1",
            item_code="storage-gb",
            quantity=f"{n}.5",
            due_date="2026-01-02T00:00:00Z",
            key=f"k-{n}",
        )
        for n in range(count)
    ]


class FakeServer:
    """Accepts bulk posts as tasks (Successful at once) after the scripted failures."""

    def __init__(self, failures: list[Callable[[httpx.Request], httpx.Response]]) -> None:
        self.failures = failures
        self.posts: list[httpx.Request] = []
        self.tasks: dict[str, dict[str, object]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            return self.failures.pop(0)(request)
        if request.method == "POST":
            self.posts.append(request)
            count = len(msgspec.json.decode(request.content)["consumptions"])
            task_id = f"t{len(self.tasks)}"
            self.tasks[task_id] = _task(task_id, total=count, saved=count)
            return httpx.Response(
                202, json=_task(task_id, "Processing"), headers={"Location": f"{BULK}/{task_id}"}
            )
        return httpx.Response(200, json=self.tasks[request.url.path.rsplit("/", 1)[1]])


def _status(status: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, headers=headers, json={"status": status})


def _drop(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadError("connection reset", request=request)


def test_503_and_429_are_retried_after_the_seconds_retry_after_asks() -> None:
    server = FakeServer(
        [_status(503, **{"Retry-After": "3"}), _status(429, **{"Retry-After": "7"})]
    )
    waits: list[float] = []
    with _client(server, waits) as client:
        result = client.submit_bulk(_records(2))
    assert (result.ok, result.saved) == (True, 2)
    assert waits == [3.0, 7.0]


def test_backoff_without_retry_after_grows_exponentially_with_full_jitter() -> None:
    server = FakeServer([_status(502), _status(500), _drop, _status(504)])
    waits: list[float] = []
    with _client(server, waits) as client:
        assert client.submit_bulk(_records(1)).ok
    assert len(waits) == 4
    for attempt, wait in enumerate(waits):
        assert 0 <= wait <= min(8.0, 2**attempt)


def test_every_retry_of_a_chunk_carries_the_same_idempotency_key_and_body() -> None:
    seen: list[tuple[str, bytes]] = []

    def lose_first(request: httpx.Request) -> httpx.Response:
        seen.append((request.headers["Idempotency-Key"], request.content))
        raise httpx.RemoteProtocolError("answer lost", request=request)

    server = FakeServer([lose_first])
    waits: list[float] = []
    with _client(server, waits) as client:
        assert client.submit_bulk(_records(3)).ok
    retried = server.posts[0]
    assert seen == [(retried.headers["Idempotency-Key"], retried.content)]
    assert seen[0][0].startswith("sha256-")


def test_the_idempotency_key_of_a_chunk_depends_only_on_its_content() -> None:
    keys: list[list[str]] = []
    for _ in range(2):
        server = FakeServer([])
        with _client(server, []) as client:
            client.submit_bulk(_records(5), chunk_size=2)
        keys.append([post.headers["Idempotency-Key"] for post in server.posts])
    assert keys[0] == keys[1]
    assert len(set(keys[0])) == 3  # chunks of 2, 2 and 1 records


def test_after_the_last_attempt_the_error_is_raised_with_its_problem() -> None:
    waits: list[float] = []
    with (
        _client(
            lambda _: httpx.Response(
                503, json={"status": 503, "title": "Busy", "detail": "try later"}
            ),
            waits,
        ) as client,
        pytest.raises(ServerError) as raised,
    ):
        client.get_task("t1")
    assert raised.value.problem.detail == "try later"
    assert len(waits) == 4  # 5 attempts


def test_a_connection_that_keeps_failing_raises_transport_failure() -> None:
    with _client(_drop, []) as client, pytest.raises(TransportFailure):
        client.get_task("t1")


def test_a_write_without_idempotency_is_not_repeated_after_its_request_was_sent() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadError("reset after sending", request=request)

    with _client(handler, []) as client, pytest.raises(TransportFailure):
        client.create_customer(company_name="Globex")
    assert len(calls) == 1


def test_errors_are_typed_and_carry_every_bad_field_of_the_problem() -> None:
    problem = {
        "type": "about:blank",
        "title": "Validation failed",
        "status": 422,
        "detail": "The request has invalid fields; see errors.",
        "errors": [{"field": "Quantity", "code": "negative", "message": "Quantity < 0"}],
    }

    def handler(_: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422, json=problem, headers={"Content-Type": "application/problem+json"}
        )

    with _client(handler, []) as client, pytest.raises(InvalidError) as raised:
        client.post_usage("c1", component_id="p1", quantity="-1", due_date="2026-01-01")
    assert raised.value.status == 422
    assert raised.value.problem.errors[0].code == "negative"
    assert raised.value.problem.raw == problem

    with (
        _client(
            lambda _: httpx.Response(
                404, json={"status": 404, "title": "Not found", "detail": "no"}
            ),
            [],
        ) as client,
        pytest.raises(NotFoundError),
    ):
        client.get_contract("nope")


def test_quantities_reach_the_wire_exactly_as_strings_or_exact_numbers() -> None:
    server = FakeServer([])
    records = [
        ConsumptionRecord(
            subscription_id="c",
            item_code="i",
            quantity="0.1000000",
            due_date="2026-01-01T00:00:00Z",
            key="a",
        ),
        ConsumptionRecord(
            subscription_id="c",
            item_code="i",
            quantity=Decimal("0.30"),
            due_date="2026-01-01T00:00:00Z",
            key="b",
            price=Decimal("1.10"),
        ),
    ]
    with _client(server, []) as client:
        client.submit_bulk(records)
    body = server.posts[0].content
    assert b'"quantity":"0.1000000"' in body
    assert b'"quantity":0.30' in body
    assert b'"price":1.10' in body


def test_a_failed_chunk_reports_every_record_with_its_own_errors_and_others_go_through() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            records = msgspec.json.decode(request.content)["consumptions"]
            task_id = records[0]["key"]
            return httpx.Response(
                202, json=_task(task_id, "Processing"), headers={"Location": f"{BULK}/{task_id}"}
            )
        task_id = request.url.path.rsplit("/", 1)[1]
        if task_id == "k-3":  # the second chunk: records 3, 4, 5
            error = {
                "index": 1,
                "subscriptionId": "c1",
                "field": "quantity",
                "code": "negative",
                "message": "quantity must not be negative.",
            }
            return httpx.Response(200, json=_task(task_id, "Failed", total=3, errors=[error]))
        return httpx.Response(200, json=_task(task_id, total=3, saved=3))

    with _client(handler, []) as client:
        result = client.submit_bulk(_records(9), chunk_size=3)
    assert (result.total, result.saved, result.ok) == (9, 6, False)
    assert [f.index for f in result.failed] == [3, 4, 5]
    assert [f.errors[0].code for f in result.failed] == ["not_saved", "negative", "not_saved"]
    assert result.failed[1].message == "quantity must not be negative."


def test_known_tasks_are_polled_instead_of_posted_again() -> None:
    server = FakeServer([])
    journal: dict[str, str] = {}
    with _client(server, []) as client:
        client.submit_bulk(_records(4), chunk_size=2, on_task=journal.__setitem__)
        assert len(server.posts) == 2
        result = client.submit_bulk(_records(4), chunk_size=2, known_tasks=journal)
    assert result.ok
    assert len(server.posts) == 2


def test_the_async_client_retries_and_submits_like_the_sync_one() -> None:
    server = FakeServer([_status(429, **{"Retry-After": "2"}), _drop])
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def run() -> bool:
        async with AsyncClient(
            "http://arrears.test",
            "key",
            SELLER,
            transport=httpx.MockTransport(server),
            retry=RetryPolicy(attempts=4, base_delay=0.5, rng=random.Random(1)),  # noqa: S311 (seeded jitter)
            sleep=sleep,
        ) as client:
            result = await client.submit_bulk(_records(3))
            return result.ok and result.saved == 3

    assert asyncio.run(run())
    assert waits[0] == 2.0
    assert len(waits) == 2


def test_a_chunk_answered_by_a_task_finished_before_counts_its_records_as_duplicates() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        done = _task("t0", total=2, saved=2)  # the same content, submitted yesterday
        return httpx.Response(202, json=done, headers={"Location": f"{BULK}/t0"})

    with _client(handler, []) as client:
        result = client.submit_bulk(_records(2))
    assert (result.ok, result.saved, result.duplicates) == (True, 0, 2)


# -- waiting for a task ---------------------------------------------------------------


def _task_answers(messages: list[str], asked: list[httpx.Request]) -> Handler:
    """A server answering GETs of task t0 with `messages` in turn, at once."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json=_task("t0", messages.pop(0)))

    return answer


def test_waiting_for_a_task_asks_the_server_to_hold_its_answer_until_it_finishes() -> None:
    asked: list[httpx.Request] = []
    waits: list[float] = []
    with _client(_task_answers(["Successful"], asked), waits) as client:
        assert client.wait_for_task("t0").message == "Successful"
    assert [request.url.params["wait"] for request in asked] == [str(TASK_WAIT_SECONDS)]
    assert waits == []


def test_a_server_answering_processing_without_holding_it_is_polled_at_growing_intervals() -> None:
    asked: list[httpx.Request] = []
    waits: list[float] = []
    messages = ["Processing", "Processing", "Processing", "Failed"]
    with _client(_task_answers(messages, asked), waits, poll_interval=0.1) as client:
        assert client.wait_for_task("t0").message == "Failed"
    assert waits == pytest.approx([0.1, 0.15, 0.225])


def test_the_wait_asked_stays_within_the_http_timeout_and_the_callers_own_timeout() -> None:
    asked: list[httpx.Request] = []
    with _client(_task_answers(["Successful"], asked), [], timeout=5.0) as client:
        client.wait_for_task("t0")
    with _client(_task_answers(["Successful"], asked), []) as client:
        client.wait_for_task("t0", timeout=3.0)
    assert [request.url.params["wait"] for request in asked] == ["4", "2"]


def test_the_async_client_waits_for_a_task_the_same_way() -> None:
    asked: list[httpx.Request] = []
    handler = _task_answers(["Processing", "Successful"], asked)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def wait() -> str:
        transport = httpx.MockTransport(handler)
        async with AsyncClient(
            "http://arrears.test", "key", SELLER, transport=transport, sleep=sleep
        ) as client:
            return (await client.wait_for_task("t0")).message

    assert asyncio.run(wait()) == "Successful"
    assert [request.url.params["wait"] for request in asked] == [str(TASK_WAIT_SECONDS)] * 2
    assert slept == [0.05]
