"""Seller consumption API (SPEC §6): bulk submissions as tasks, and the older
one-subscription-at-a-time endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import Field, StringConstraints

from arrears.api.auth import SellerInPath
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import CamelModel, Instant, Quantity
from arrears.domain.errors import FieldError, Invalid
from arrears.domain.ids import new_id
from arrears.domain.tasks import Outcome, RecordError, Task, TaskStatus
from arrears.services import ingest, tasks
from arrears.services.reports import consumption_report
from arrears.store.catalog import CatalogRepository
from arrears.store.contracts import ContractRepository
from arrears.store.tasks import TaskRepository
from arrears.store.usage import UsageRepository

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


_BULK_BODY_SCHEMA = {
    "type": "object",
    "required": ["consumptions"],
    "additionalProperties": False,
    "properties": {
        "consumptions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["subscriptionId", "quantity"],
                "additionalProperties": False,
                "properties": {
                    "subscriptionId": {"type": "string"},
                    "productId": {"type": "string"},
                    "itemCode": {"type": "string"},
                    "quantity": {"oneOf": [{"type": "number"}, {"type": "string"}]},
                    "dueDate": {"type": "string", "format": "date-time"},
                    "key": {"type": "string"},
                    "description": {"type": "string"},
                    "price": {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
                },
            },
        }
    },
}


@router.post(
    "/bulkconsumptions",
    status_code=202,
    response_model=TaskOut,
    responses={200: {"model": TaskOut, "description": "The outcome of a dry run."}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BULK_BODY_SCHEMA}},
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
    limit = context.settings.bulk_max_records
    if dry_run:
        with context.database.read() as session:
            outcome = tasks.dry_run(
                UsageRepository(session, seller_id), context.clock, body, max_records=limit
            )
        return json_response(_dry_run_out(outcome))
    with context.database.write() as session:
        task, _new = tasks.submit(
            TaskRepository(session, seller_id),
            context.clock,
            body,
            idempotency_key=idempotency_key or None,
            max_records=limit,
        )
    context.wake_worker()
    location = f"/api/sellers/{seller_id}/services/bulkconsumptions/{task.id}"
    return json_response(_task_out(task), 202, headers={"Location": location})


@router.get("/bulkconsumptions/{taskId}", response_model=TaskOut)
def get_bulk(
    task_id: Annotated[str, Path(alias="taskId")], seller_id: SellerInPath, context: Context
) -> Response:
    """The state of a bulk submission: Processing, then Successful or Failed."""
    with context.database.read() as session:
        task = TaskRepository(session, seller_id).get(task_id)
    return json_response(_task_out(task))


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
    unbilled_quantity: Quantity
    billed_quantity: Quantity


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
    with context.database.read() as session:
        report = consumption_report(
            ContractRepository(session, seller_id),
            CatalogRepository(session, seller_id),
            UsageRepository(session, seller_id),
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
    consumptions: list[dict[str, Any]] = Field(max_length=10_000)


class SavedConsumption(CamelModel):
    id: str
    product_id: str
    quantity: Quantity
    due_date: datetime
    key: str | None


class SubmissionResult(CamelModel):
    subscription_id: str
    consumptions: list[SavedConsumption]


@router.put("/consumptions", response_model=SubmissionResult, deprecated=True)
def submit_consumption(
    body: SubscriptionSubmission, seller_id: SellerInPath, context: Context
) -> Response:
    """Submit the consumption of one subscription synchronously, all or nothing: 200 with
    the saved entries, or 422 naming every failing record. Deprecated: use bulk."""
    records = [
        ingest.read_record({**record, "subscriptionId": body.subscription_id}, index)
        for index, record in enumerate(body.consumptions)
    ]
    submission_id = new_id()
    with context.database.write() as session:
        usage = UsageRepository(session, seller_id)
        outcome = ingest.apply_submission(
            usage,
            records,
            submission_id=submission_id,
            submitted_at=context.clock.now(),
            transferred_at=context.clock.now(),
        )
        if outcome.errors:
            raise Invalid([_field_error(e) for e in outcome.errors])
        saved = usage.entries_of_submission(submission_id)
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


def _field_error(error: RecordError) -> FieldError:
    field = f"consumptions[{error.index}].{error.field}" if error.index is not None else error.field
    return FieldError(field, error.code, error.message, error.index)
