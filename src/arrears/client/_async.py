"""The asynchronous client: the same API as `Client`, awaited.

`_sync.py` (`Client`) is generated from this file by `scripts/sync_client.py`: edit this
one, then run `make client` (docs/development.md).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

import httpx

from arrears.client._base import (
    DEFAULT_CHUNK_SIZE,
    REFUSED_CHUNK,
    AsyncSleep,
    BulkTally,
    Chunk,
    Json,
    TaskWatch,
    billing_period,
    bulk_path,
    chunks,
    compact,
    decode_json,
    decode_task,
    encode,
    headers_for,
    retryable,
    task_location,
)
from arrears.client._errors import (
    TransportFailure,
    UnexpectedResponse,
    error_for,
)
from arrears.client._models import BulkResult, Task
from arrears.client._records import ConsumptionRecord
from arrears.client._retry import RetryPolicy

__all__ = ["AsyncClient"]


class AsyncClient:
    """A client of both Arrears APIs: `Client`, or `AsyncClient` with the same methods
    awaited. Every request is retried on connection errors, 429 and 5xx (see
    `RetryPolicy`) when repeating it is safe: reads, bulk submissions (they carry an
    `Idempotency-Key`) and usage posts with a `Key`. Other writes are retried only when
    the connection failed before the request was sent, or on 429. Errors are raised as
    `ApiError` subclasses carrying the problem+json body.

    `transport` replaces the network (e.g. `httpx.MockTransport` in tests); `sleep`
    replaces the pause for backoff and polling (`time.sleep` in `Client`, `asyncio.sleep`
    in `AsyncClient`).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        seller_id: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        max_in_flight: int = 4,
        poll_interval: float = 0.05,
        max_poll_interval: float = 2.0,
        sleep: AsyncSleep = asyncio.sleep,
    ) -> None:
        self.seller_id = seller_id
        self.chunk_size = chunk_size
        self.max_in_flight = max(1, max_in_flight)
        self._retry = retry or RetryPolicy()
        self._poll = (poll_interval, max_poll_interval)
        self._timeout = timeout
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers_for(api_key),
            transport=transport,
            timeout=timeout,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- transport ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool | None = None,
    ) -> httpx.Response:
        """Send one request, retrying as the policy allows; the successful response.
        `repeatable` defaults to True for GET, PUT and DELETE."""
        if repeatable is None:
            repeatable = method in ("GET", "PUT", "DELETE")
        all_headers = dict(headers or {})
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        attempt = 0
        while True:
            last = attempt + 1 >= self._retry.attempts
            try:
                response = await self._http.request(
                    method, path, content=body, params=params, headers=all_headers
                )
            except httpx.TransportError as error:
                unsent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                if last or not (repeatable or unsent):
                    raise TransportFailure(
                        f"{method} {path}: {error!r} (attempt {attempt + 1})"
                    ) from error
                await self._sleep(self._retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            if not last and retryable(response) and (repeatable or response.status_code == 429):
                await self._sleep(self._retry.delay(attempt, response))
                attempt += 1
                continue
            raise error_for(response)

    async def _json(self, method: str, path: str, payload: object = None, **kwargs: Any) -> Any:
        body = None if payload is None else encode(payload)
        return decode_json(await self.request(method, path, body=body, **kwargs))

    # Named for what they return, so that mypy checks each method's declared result.
    async def _object(self, method: str, path: str, payload: object = None, **kwargs: Any) -> Json:
        result: Json = await self._json(method, path, payload, **kwargs)
        return result

    async def _list(self, method: str, path: str, **kwargs: Any) -> list[Json]:
        result: list[Json] = await self._json(method, path, **kwargs)
        return result

    def _seller(self) -> str:
        if not self.seller_id:
            raise ValueError("this call needs the client's seller_id")
        return self.seller_id

    # -- contract usage API (SPEC §3-§5, §8) -------------------------------------------

    async def create_customer(
        self,
        *,
        company_name: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        email_address: str | None = None,
        external_customer_id: str | None = None,
        tax_rate: Decimal | None = None,
    ) -> Json:
        payload = compact(
            {
                "CompanyName": company_name,
                "FirstName": first_name,
                "LastName": last_name,
                "EmailAddress": email_address,
                "ExternalCustomerId": external_customer_id,
                "TaxRate": tax_rate,
            }
        )
        return await self._object("POST", "/api/v1/customers", payload)

    async def create_component(
        self, *, name: str, unit: str, item_code: str | None = None, description: str | None = None
    ) -> Json:
        payload = compact(
            {"Name": name, "Unit": unit, "ItemCode": item_code, "Description": description}
        )
        return await self._object("POST", "/api/v1/components", payload)

    async def create_plan(self, *, name: str, description: str | None = None) -> Json:
        payload = compact({"Name": name, "Description": description})
        return await self._object("POST", "/api/v1/plans", payload)

    async def create_plan_variant(
        self,
        *,
        plan_id: str,
        name: str,
        currency: str,
        metered_components: list[Json],
        period_unit: str = "Month",
        period_quantity: int = 1,
        recurring_fee: Decimal | None = None,
        tax_rate: Decimal | None = None,
    ) -> Json:
        """`metered_components`: `{"ComponentId", "Pricing", "FreeQuota"?}` as in SPEC §3."""
        payload = compact(
            {
                "PlanId": plan_id,
                "Name": name,
                "Currency": currency,
                "BillingPeriod": billing_period(period_unit, period_quantity),
                "RecurringFee": recurring_fee,
                "TaxRate": tax_rate,
                "MeteredComponents": metered_components,
            }
        )
        return await self._object("POST", "/api/v1/planvariants", payload)

    async def create_contract(
        self, *, customer_id: str, plan_variant_id: str, start_date: str
    ) -> Json:
        payload = {
            "CustomerId": customer_id,
            "PlanVariantId": plan_variant_id,
            "StartDate": start_date,
        }
        return await self._object("POST", "/api/v1/contracts", payload)

    async def get_contract(self, contract_id: str) -> Json:
        return await self._object("GET", f"/api/v1/contracts/{contract_id}")

    async def end_contract(self, contract_id: str, *, end_date: str) -> Json:
        return await self._object(
            "POST", f"/api/v1/contracts/{contract_id}/end", {"EndDate": end_date}
        )

    async def post_usage(
        self,
        contract_id: str,
        *,
        component_id: str,
        quantity: Decimal | str,
        due_date: str,
        key: str | None = None,
        memo: str | None = None,
        price_per_unit: Decimal | str | None = None,
    ) -> Json:
        """Post one usage entry; with a `key` it is idempotent and retried freely."""
        payload = compact(
            {
                "ComponentId": component_id,
                "Quantity": quantity,
                "DueDate": due_date,
                "Key": key,
                "Memo": memo,
                "ProductOverride": None
                if price_per_unit is None
                else {"PricePerUnit": price_per_unit},
            }
        )
        return await self._object(
            "POST", f"/api/v1/contracts/{contract_id}/usage", payload, repeatable=bool(key)
        )

    async def list_usage(
        self, contract_id: str, *, skip: int = 0, take: int = 100, billed: bool | None = None
    ) -> list[Json]:
        params = {"skip": str(skip), "take": str(take)}
        if billed is not None:
            params["billed"] = "true" if billed else "false"
        return await self._list("GET", f"/api/v1/contracts/{contract_id}/usage", params=params)

    async def list_invoices(
        self, *, contract_id: str | None = None, customer_id: str | None = None
    ) -> list[Json]:
        params = {
            k: v for k, v in {"contractId": contract_id, "customerId": customer_id}.items() if v
        }
        return await self._list("GET", "/api/v1/invoices", params=params)

    async def get_invoice(self, invoice_id: str) -> Json:
        return await self._object("GET", f"/api/v1/invoices/{invoice_id}")

    # -- seller consumption API (SPEC §6) ----------------------------------------------

    async def post_bulk(
        self, records: Iterable[ConsumptionRecord], *, idempotency_key: str | None = None
    ) -> str:
        """Submit records as one task, as they are (no derived keys); the task's URL."""
        body = encode({"consumptions": list(records)})
        location, _ = await self._post_bulk_body(body, idempotency_key)
        return location

    async def _post_bulk_body(self, body: bytes, idempotency_key: str | None) -> tuple[str, Task]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = await self.request(
            "POST",
            bulk_path(self._seller()),
            body=body,
            headers=headers,
            repeatable=idempotency_key is not None,
        )
        location: str | None = response.headers.get("Location")
        if not location:
            raise UnexpectedResponse(f"{response.status_code} without a Location header")
        return location, decode_task(response)

    async def get_task(self, task: str) -> Task:
        """A task by its id or its `Location`."""
        return decode_task(await self.request("GET", task_location(self._seller(), task)))

    async def wait_for_task(self, task: str, *, timeout: float | None = None) -> Task:
        """Wait until a task is Successful or Failed (see `TaskWatch`); `TimeoutError`
        when it is still Processing after `timeout` seconds."""
        watch = TaskWatch(self._timeout, self._poll, timeout)
        location = task_location(self._seller(), task)
        while True:
            response = await self.request("GET", location, params=watch.params())
            current = decode_task(response)
            if current.finished:
                return current
            if watch.expired():
                raise TimeoutError(f"task {current.task_id} still Processing after {timeout} s")
            if pause := watch.pause():
                await self._sleep(pause)

    async def dry_run(self, records: Iterable[ConsumptionRecord]) -> Task:
        """Validate records as one submission, saving nothing (`?dryRun=true`)."""
        return await self._dry_run_body(encode({"consumptions": list(records)}))

    async def _dry_run_body(self, body: bytes) -> Task:
        response = await self.request(
            "POST",
            bulk_path(self._seller()),
            body=body,
            params={"dryRun": "true"},
            repeatable=True,
        )
        return decode_task(response)

    async def consumption_report(
        self,
        *,
        customer_id: str | None = None,
        subscription_ids: list[str] | None = None,
        due_from: str | None = None,
        due_to: str | None = None,
    ) -> Json:
        """Billed and unbilled consumption per subscription and product (deprecated API)."""
        payload = compact(
            {
                "customerId": customer_id,
                "subscriptionIds": subscription_ids,
                "from": due_from,
                "to": due_to,
            }
        )
        path = f"/api/sellers/{self._seller()}/services/consumptions"
        return await self._object("POST", path, payload, repeatable=True)

    async def submit_bulk(
        self,
        records: Iterable[ConsumptionRecord],
        *,
        chunk_size: int | None = None,
        dry_run: bool = False,
        known_tasks: Mapping[str, str] | None = None,
        on_task: Callable[[str, str], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> BulkResult:
        """Submit any number of records in chunks, each its own all-or-nothing task, and
        wait for every task.

        A record without a key is given its derived key (`derived_key`); each chunk is
        sent with an `Idempotency-Key` derived from its content, so submitting the same
        records again — after a lost answer, a crash or on purpose — never stores a
        record twice. `known_tasks` maps Idempotency-Keys to task URLs already known
        (a journal): those chunks are polled, not posted. `on_task(key, url)` is called
        once a chunk's task is accepted; `on_progress(n)` as n more records finished.
        A chunk that fails does not stop the others; its records are in `failed`.
        """
        tally = BulkTally(on_progress)
        known = dict(known_tasks or {})
        in_flight: deque[tuple[Chunk, str]] = deque()

        async def finish(chunk: Chunk, location: str) -> None:
            tally.finished(chunk, await self.wait_for_task(location))

        for chunk in chunks(records, chunk_size or self.chunk_size):
            try:
                if dry_run:
                    tally.finished(chunk, await self._dry_run_body(chunk.body))
                    continue
                location = known.get(chunk.idempotency_key)
                if location is None:
                    location, accepted = await self._post_bulk_body(
                        chunk.body, chunk.idempotency_key
                    )
                    if on_task:
                        on_task(chunk.idempotency_key, location)
                    if accepted.finished:
                        # A new task is always Processing when accepted: this one was
                        # submitted before, with the same content.
                        tally.finished(chunk, accepted, replayed=True)
                        continue
            except REFUSED_CHUNK as error:
                tally.refused(chunk, error.problem)
                continue
            in_flight.append((chunk, location))
            if len(in_flight) >= self.max_in_flight:
                await finish(*in_flight.popleft())
        while in_flight:
            await finish(*in_flight.popleft())
        return tally.outcome()
