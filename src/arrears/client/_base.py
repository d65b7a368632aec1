"""What the sync and async clients share: configuration, paths, bodies and decoding."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import msgspec

from arrears.client._errors import (
    BadRequestError,
    InvalidError,
    Problem,
    TooLargeError,
    UnexpectedResponse,
)
from arrears.client._models import BulkResult, Task
from arrears.client._records import (
    ConsumptionRecord,
    chunk_body,
    idempotency_key,
    with_key,
)
from arrears.client._retry import RETRYABLE_STATUSES

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "TASK_WAIT_SECONDS",
    "AsyncSleep",
    "BulkTally",
    "Chunk",
    "Json",
    "Sleep",
    "TaskWatch",
    "chunks",
    "decode_json",
    "decode_task",
]

Json = dict[str, Any]
DEFAULT_CHUNK_SIZE = 10_000

# What pauses a client between retries and polls. Named, so that the sync client is the
# async one with names swapped (`make client`): `Awaitable[None]` is not a name to swap.
Sleep = Callable[[float], None]
AsyncSleep = Callable[[float], Awaitable[None]]

_encoder = msgspec.json.Encoder(decimal_format="number")
_json_decoder = msgspec.json.Decoder(float_hook=Decimal)
_task_decoder = msgspec.json.Decoder(Task)


@dataclass(frozen=True, slots=True)
class Chunk:
    """Records `start` to `start + len(records)` of a submission, as one bulk task."""

    start: int
    records: Sequence[ConsumptionRecord]
    body: bytes
    idempotency_key: str


def chunks(records: Iterable[ConsumptionRecord], size: int) -> Iterator[Chunk]:
    """The records, each given its derived key if it has none, in chunks of `size`."""
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    batch: list[ConsumptionRecord] = []
    start = 0
    for record in records:
        batch.append(with_key(record))
        if len(batch) == size:
            yield _chunk(start, batch)
            start += size
            batch = []
    if batch:
        yield _chunk(start, batch)


def _chunk(start: int, records: list[ConsumptionRecord]) -> Chunk:
    body = chunk_body(records)
    return Chunk(start, records, body, idempotency_key(body))


class BulkTally:
    """The `BulkResult` of a `submit_bulk` in progress, told of each chunk as it ends;
    `on_progress` is told how many records that was."""

    def __init__(self, on_progress: Callable[[int], None] | None) -> None:
        self._result = BulkResult()
        self._on_progress = on_progress

    def finished(self, chunk: Chunk, task: Task, *, replayed: bool = False) -> None:
        """A chunk whose task finished (see `BulkResult.add` for `replayed`)."""
        self._result.add(chunk.start, chunk.records, task, replayed=replayed)
        self._progressed(chunk)

    def refused(self, chunk: Chunk, problem: Problem) -> None:
        """A chunk the server refused outright: none of it was saved."""
        self._result.add_refused(chunk.start, chunk.records, problem)
        self._progressed(chunk)

    def _progressed(self, chunk: Chunk) -> None:
        if self._on_progress:
            self._on_progress(len(chunk.records))

    def outcome(self) -> BulkResult:
        """The result, its failed records in submission order."""
        self._result.failed.sort(key=lambda failed: failed.index)
        return self._result


def encode(payload: object) -> bytes:
    """JSON with decimals written as the exact numbers they hold."""
    return _encoder.encode(payload)


def decode_json(response: httpx.Response) -> Any:
    """A JSON answer with fractional numbers read as `Decimal`, never as float."""
    try:
        return _json_decoder.decode(response.content)
    except msgspec.DecodeError as error:
        raise UnexpectedResponse(f"{response.status_code}: not JSON: {error}") from None


def decode_task(response: httpx.Response) -> Task:
    try:
        return _task_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise UnexpectedResponse(f"{response.status_code}: not a task: {error}") from None


def compact(fields: Mapping[str, object]) -> Json:
    """The fields that are set (None means: not sent)."""
    return {name: value for name, value in fields.items() if value is not None}


def retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRYABLE_STATUSES


USER_AGENT = "arrears-client/0.1"

# The server refused a chunk outright: its records are reported failed, the rest go on.
REFUSED_CHUNK = (BadRequestError, InvalidError, TooLargeError)


def headers_for(api_key: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {api_key}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }


def bulk_path(seller_id: str) -> str:
    return f"/api/sellers/{seller_id}/services/bulkconsumptions"


def task_location(seller_id: str, task_id_or_location: str) -> str:
    """A task's URL from its id, or the `Location` itself."""
    if "/" in task_id_or_location:
        return task_id_or_location
    return f"{bulk_path(seller_id)}/{task_id_or_location}"


TASK_WAIT_SECONDS = 10
"""The longest an Arrears server holds the answer about a task (`?wait=`)."""


class TaskWatch:
    """How a client waits for a task to finish.

    Each GET asks the server to hold its answer until the task finishes (`?wait=`: up to
    `TASK_WAIT_SECONDS`, within the HTTP timeout and the caller's own timeout), so the
    outcome comes at once and nothing is polled. A server that answers sooner than asked
    (one that does not hold answers) is polled at growing intervals instead."""

    def __init__(
        self, http_timeout: float, poll: tuple[float, float], timeout: float | None
    ) -> None:
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._longest = max(0, min(TASK_WAIT_SECONDS, int(http_timeout) - 1))
        self._interval, self._max_interval = poll
        self._wait = 0
        self._asked_at = 0.0

    def params(self) -> dict[str, str]:
        """The query of the next GET."""
        self._wait = self._longest
        if self._deadline is not None:
            self._wait = max(0, min(self._wait, int(self._deadline - time.monotonic())))
        self._asked_at = time.monotonic()
        return {"wait": str(self._wait)}

    def expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def pause(self) -> float:
        """Seconds to sleep before the next GET: none after an answer held as asked."""
        if self._wait and time.monotonic() - self._asked_at >= self._wait:
            return 0.0
        pause, self._interval = self._interval, min(self._max_interval, self._interval * 1.5)
        return pause


def billing_period(unit: str, quantity: int) -> Json:
    return {"Unit": unit, "Quantity": quantity}
