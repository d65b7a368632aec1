"""Seller consumption API (SPEC §6): bulk submissions as tasks, and the older
one-subscription-at-a-time endpoints."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from arrears.api.auth import SellerInPath
from arrears.api.context import AppContext, Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import (
    DECIMAL_NUMBER,
    DECIMAL_STRING,
    CamelModel,
    Instant,
    PlainDecimal,
    Quantity,
    list_response,
)
from arrears.api.openapi import LOCATION_HEADER
from arrears.api.paging import Paging
from arrears.api.problems import problem_responses
from arrears.api.task_waits import MAX_WAIT_SECONDS, RECHECK_SECONDS
from arrears.domain import wire
from arrears.domain.tasks import Outcome, Task, TaskStatus
from arrears.services import submissions, tasks
from arrears.services.reports import consumption_report

router = APIRouter(
    prefix="/api/sellers/{sellerId}/services", route_class=ArrearsRoute, tags=["consumption"]
)

BULK_PATH = r"/api/sellers/[^/]+/services/bulkconsumptions"
"""Bulk bodies have their own size limit (see `ARREARS_BULK_MAX_BYTES`)."""


class TaskError(CamelModel):
    index: int | None
    subscription_id: str | None
    field: str
    code: str
    message: str


class TaskOut(CamelModel):
    task_id: str | None
    message: TaskStatus
    total_records: int
    saved_records: int
    duplicate_records: int
    errors: list[TaskError]
    created_at: datetime | None
    completed_at: datetime | None


class TaskSummary(CamelModel):
    """A task as its `GET` answers it, without `errors` (SPEC §6)."""

    task_id: str
    message: TaskStatus
    total_records: int
    saved_records: int
    duplicate_records: int
    created_at: datetime
    completed_at: datetime | None


# A consumption record (SPEC §6), as `ingest.read_record` checks it.
_RECORD_PROPERTIES = {
    "productId": {"type": "string"},
    "itemCode": {"type": "string"},
    "quantity": {"oneOf": [DECIMAL_NUMBER, DECIMAL_STRING]},
    "dueDate": {"type": "string", "format": "date-time"},
    "key": {"type": "string"},
    "description": {"type": "string"},
    "price": {"oneOf": [DECIMAL_NUMBER, DECIMAL_STRING, {"type": "null"}]},
}

# Named schemas, not inline ones, so that generated classes have names of their own
# (`BulkRecord`, not `SubmitBulkConsumptionsBodyConsumptionsItem`).
SCHEMAS = {
    "BulkSubmission": {
        "title": "BulkSubmission",
        "type": "object",
        "required": ["consumptions"],
        "additionalProperties": False,
        "properties": {
            "consumptions": {"type": "array", "items": {"$ref": "#/components/schemas/BulkRecord"}}
        },
    },
    "BulkRecord": {
        "title": "BulkRecord",
        "type": "object",
        "required": [wire.SUBSCRIPTION_ID, "quantity"],
        "additionalProperties": False,
        "properties": {wire.SUBSCRIPTION_ID: {"type": "string"}, **_RECORD_PROPERTIES},
    },
    # A record of one subscription's submission: the body names the subscription.
    "SubscriptionRecord": {
        "title": "SubscriptionRecord",
        "type": "object",
        "required": ["quantity"],
        "additionalProperties": False,
        "properties": _RECORD_PROPERTIES,
    },
}
"""Schemas the routes refer to by name, for `install_openapi`."""


@router.post(
    "/bulkconsumptions",
    status_code=202,
    response_model=TaskOut,
    operation_id="submitBulkConsumptions",
    responses={
        200: {"model": TaskOut, "description": "The outcome of a dry run."},
        202: {"description": "The submission is stored as a task.", "headers": LOCATION_HEADER},
        **problem_responses({409: "The Idempotency-Key was used with a different body."}),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/BulkSubmission"}}
            },
        }
    },
)
async def submit_bulk(
    request: Request,
    seller_id: SellerInPath,
    context: Context,
    dry_run: Annotated[bool, Query(alias="dryRun")] = False,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Response:
    """Submit consumption in bulk. Answers 202 with a `taskId` once the body is stored;
    a worker then validates and applies it all or nothing. Poll the `Location`.
    `?dryRun=true` validates at once, saves nothing and answers 200."""
    body = await request.body()
    # Hashing, storing or validating up to 64 MiB must not block the event loop.
    if dry_run:
        return await run_in_threadpool(_dry_run, context, seller_id, body)
    return await run_in_threadpool(_submit, context, seller_id, body, idempotency_key or None)


def _dry_run(context: AppContext, seller_id: str, body: bytes) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        outcome = tasks.dry_run(
            work,
            context.clock,
            body,
            max_records=context.settings.bulk_max_records,
        )
    return json_response(_dry_run_out(outcome))


def _submit(
    context: AppContext, seller_id: str, body: bytes, idempotency_key: str | None
) -> Response:
    # A bulk commit: SQLite leaves the copy of its log into the database file that a body
    # of many pages would make part of it until after the commit. Where the dialect says
    # so, the worker is woken from the commit, while that copy runs.
    at_commit = context.database.dialect.wakes_worker_at_commit
    committed = context.wake_worker if at_commit else None
    with context.database.unit_of_work(seller_id, bulk=True, committed=committed) as work:
        task, _new = tasks.submit(
            work,
            context.clock,
            body,
            idempotency_key=idempotency_key,
            max_records=context.settings.bulk_max_records,
            hand_over=context.worker is not None,
        )
    if not at_commit:
        context.wake_worker()
    location = f"/api/sellers/{seller_id}/services/bulkconsumptions/{task.id}"
    return json_response(_task_out(task), 202, headers={"Location": location})


@router.get(
    "/bulkconsumptions",
    response_model=list[TaskSummary],
    operation_id="listBulkConsumptionTasks",
)
def list_bulk(
    seller_id: SellerInPath,
    context: Context,
    paging: Paging,
    message: Annotated[
        TaskStatus | None, Query(description="Only the tasks in this state.")
    ] = None,
) -> Response:
    """The seller's bulk submissions, newest first, each as its `GET` answers without
    `errors`; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = tasks.task_page(work, message, paging)
    return list_response([_task_summary(task) for task in page.items], page.total)


@router.get(
    "/bulkconsumptions/{taskId}", response_model=TaskOut, operation_id="getBulkConsumptionTask"
)
async def get_bulk(
    task_id: Annotated[str, Path(alias="taskId")],
    seller_id: SellerInPath,
    context: Context,
    wait: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to hold the answer while the task is Processing: it "
            "comes as soon as the task finishes, or with Processing once they pass.",
        ),
    ] = 0,
) -> Response:
    """The state of a bulk submission: Processing, then Successful or Failed.

    With `?wait=N`, a Processing task is answered when it finishes or after N seconds,
    whichever comes first: one request instead of a poll every few milliseconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with context.task_waits.watching() as finished:
        while True:
            finished.clear()  # before reading: a task finishing meanwhile sets it again
            task = await run_in_threadpool(_task, context, seller_id, task_id)
            remaining = deadline - loop.time()
            if task.status != TaskStatus.PROCESSING or remaining <= 0:
                return json_response(_task_out(task))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished.wait(), min(remaining, RECHECK_SECONDS))


def _task(context: AppContext, seller_id: str, task_id: str) -> Task:
    with context.database.unit_of_work(seller_id, "read") as work:
        return tasks.task(work, task_id)


def _task_out(task: Task) -> TaskOut:
    return TaskOut(
        task_id=task.id,
        message=task.status,
        total_records=task.total_records,
        saved_records=task.saved_records,
        duplicate_records=task.duplicate_records,
        errors=[TaskError.model_validate(e, from_attributes=True) for e in task.errors],
        created_at=task.created_at,
        completed_at=task.completed_at,
    )


def _task_summary(task: Task) -> TaskSummary:
    return TaskSummary(
        task_id=task.id,
        message=task.status,
        total_records=task.total_records,
        saved_records=task.saved_records,
        duplicate_records=task.duplicate_records,
        created_at=task.created_at,
        completed_at=task.completed_at,
    )


def _dry_run_out(outcome: Outcome) -> TaskOut:
    return TaskOut(
        task_id=None,
        message=outcome.status,
        total_records=outcome.total_records,
        saved_records=outcome.saved_records,
        duplicate_records=outcome.duplicate_records,
        errors=[TaskError.model_validate(e, from_attributes=True) for e in outcome.errors],
        created_at=None,
        completed_at=None,
    )


# -- older endpoints -------------------------------------------------------------------


class ConsumptionQuery(CamelModel):
    customer_id: str | None = None
    subscription_ids: list[str] | None = Field(default=None, max_length=10_000)
    due_from: Instant | None = Field(default=None, alias="from")
    due_to: Instant | None = Field(default=None, alias="to", description="Exclusive.")


class ProductConsumption(CamelModel):
    product_id: str
    item_code: str | None
    # Sums of many entries: not bounded like one entry's quantity.
    unbilled_quantity: PlainDecimal
    billed_quantity: PlainDecimal


class SubscriptionConsumption(CamelModel):
    subscription_id: str
    customer_id: str
    products: list[ProductConsumption]


class ConsumptionReport(CamelModel):
    subscriptions: list[SubscriptionConsumption]


@router.post("/consumptions", response_model=ConsumptionReport, deprecated=True)
def report_consumption(
    body: ConsumptionQuery, seller_id: SellerInPath, context: Context
) -> Response:
    """The seller's metered subscriptions with their billed and unbilled consumption per
    product. Deprecated: kept for existing integrations."""
    with context.database.unit_of_work(seller_id, "read") as work:
        report = consumption_report(
            work,
            customer_id=body.customer_id,
            contract_ids=body.subscription_ids,
            due_from=body.due_from,
            due_to=body.due_to,
        )
    subscriptions = [
        SubscriptionConsumption(
            subscription_id=line.contract_id,
            customer_id=line.customer_id,
            products=[
                ProductConsumption(
                    product_id=p.component_id,
                    item_code=p.item_code,
                    unbilled_quantity=p.unbilled,
                    billed_quantity=p.billed,
                )
                for p in line.products
            ],
        )
        for line in report
    ]
    return json_response(ConsumptionReport(subscriptions=subscriptions))


class SubscriptionSubmission(CamelModel):
    subscription_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    # Records are checked one by one (submissions.apply_now), so that a record that is not
    # even an object does not hide the errors of the others.
    consumptions: list[Any] = Field(
        max_length=10_000,
        json_schema_extra={"items": {"$ref": "#/components/schemas/SubscriptionRecord"}},
    )


class SavedConsumption(CamelModel):
    id: str
    product_id: str
    quantity: Quantity
    due_date: datetime
    key: str | None


class SubmissionResult(CamelModel):
    subscription_id: str
    consumptions: list[SavedConsumption]


@router.put(
    "/consumptions",
    response_model=SubmissionResult,
    deprecated=True,
    responses=problem_responses(
        {409: "Concurrent submissions of the same keys kept racing this one; retry."}
    ),
)
def submit_consumption(
    body: SubscriptionSubmission, seller_id: SellerInPath, context: Context
) -> Response:
    """Submit the consumption of one subscription synchronously, all or nothing: 200 with
    the saved entries, or 422 naming every failing record. Deprecated: use bulk."""
    saved = submissions.apply_now(
        context.database, context.clock, seller_id, body.subscription_id, body.consumptions
    )
    return json_response(
        SubmissionResult(
            subscription_id=body.subscription_id,
            consumptions=[
                SavedConsumption(
                    id=str(e.id),
                    product_id=e.component_id,
                    quantity=e.quantity,
                    due_date=e.due_date,
                    key=e.key,
                )
                for e in saved
            ],
        )
    )
