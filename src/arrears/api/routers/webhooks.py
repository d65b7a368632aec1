"""Contract usage API, webhooks (SPEC §13): endpoints, their deliveries, and the events
as the OpenAPI's `webhooks` section declares them (docs/webhooks.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Response
from pydantic import Field, StringConstraints

from arrears.api.auth import SellerId
from arrears.api.context import AppContext, Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import PascalModel, list_response
from arrears.api.paging import Paging
from arrears.config import webhook_secrets_for
from arrears.domain.webhooks import MAX_URL_LENGTH, Delivery, DeliveryStatus, Endpoint
from arrears.services.webhooks import EndpointChange, Webhooks
from arrears.store.unit_of_work import UnitOfWork

__all__ = ["document_events", "router", "webhooks_of"]

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["webhooks"])

WebhookIdPath = Annotated[str, Path(alias="webhookId")]
DeliveryIdPath = Annotated[str, Path(alias="deliveryId")]
Url = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
EventName = Annotated[str, StringConstraints(min_length=1, max_length=40)]
Description = Annotated[str, StringConstraints(max_length=500)]


class NewWebhook(PascalModel):
    url: Url = Field(description="Where events are POSTed: a public http(s) URL.")
    events: list[EventName] = Field(
        max_length=20, description='The event types to receive, or `["*"]` for all.'
    )
    description: Description | None = None


class WebhookChange(PascalModel):
    url: Url | None = None
    events: list[EventName] | None = Field(default=None, max_length=20)
    enabled: bool | None = Field(
        default=None, description="`true` enables a disabled endpoint (and clears why)."
    )
    description: Description | None = None


class WebhookOut(PascalModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why the endpoint is disabled: by its seller, or after failing every "
        "delivery for three days; null while enabled."
    )
    disabled_at: datetime | None
    created_at: datetime


class CreatedWebhook(WebhookOut):
    secret: str = Field(description="The signing secret (`whsec_...`): shown only here.")


class RotatedSecret(PascalModel):
    secret: str = Field(description="The new signing secret: shown only here.")
    previous_secret_expires_at: datetime = Field(
        description="Until then the previous secret signs beside the new one."
    )


class DeliveryOut(PascalModel):
    id: str
    webhook_id: str
    event_id: str = Field(description="The `webhook-id` header: the same on every attempt.")
    event_type: str
    attempt: int = Field(description="1 for the first attempt at the event, then 2, ...")
    status: DeliveryStatus
    due_at: datetime
    attempted_at: datetime | None
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_body: str | None = Field(description="At most 1 KiB of the receiver's answer.")
    next_attempt_at: datetime | None = Field(
        description="When the event is tried again after this failed attempt; null if not."
    )


_ENDPOINT_MISSING = {404: "The seller has no such webhook."}


def webhooks_of(work: UnitOfWork, context: AppContext) -> Webhooks:
    """The webhooks use cases over `work`, with the process's secrets box and private-
    target rule: the API's and the console's one way to reach them."""
    return Webhooks(
        work,
        context.clock,
        box=webhook_secrets_for(context.settings),
        allow_private=context.settings.webhooks_allow_private,
    )


@router.post("/webhooks", status_code=201, response_model=CreatedWebhook)
def create_webhook(body: NewWebhook, seller_id: SellerId, context: Context) -> Response:
    """Register a receiver of events. The answer holds its signing secret, which is
    never shown again (rotate it to get a new one)."""
    with context.database.unit_of_work(seller_id) as work:
        endpoint, secret = webhooks_of(work, context).create(
            body.url, body.events, body.description
        )
    out = CreatedWebhook(**_out(endpoint).model_dump(), secret=secret)
    return json_response(out, 201)


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's webhook endpoints, newest first."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = webhooks_of(work, context).page(paging)
    return list_response([_out(e) for e in page.items], page.total)


@router.get("/webhooks/{webhookId}", response_model=WebhookOut)
def get_webhook(webhook_id: WebhookIdPath, seller_id: SellerId, context: Context) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        endpoint = webhooks_of(work, context).get(webhook_id)
    return json_response(_out(endpoint))


@router.patch("/webhooks/{webhookId}", response_model=WebhookOut)
def change_webhook(
    webhook_id: WebhookIdPath, body: WebhookChange, seller_id: SellerId, context: Context
) -> Response:
    """Change the URL, the events or the description, or enable or disable it."""
    change = EndpointChange(
        url=body.url, events=body.events, enabled=body.enabled, description=body.description
    )
    with context.database.unit_of_work(seller_id) as work:
        endpoint = webhooks_of(work, context).change(webhook_id, change)
    return json_response(_out(endpoint))


@router.delete("/webhooks/{webhookId}", status_code=204)
def delete_webhook(webhook_id: WebhookIdPath, seller_id: SellerId, context: Context) -> Response:
    """Forget the endpoint and its deliveries; nothing more is sent to it."""
    with context.database.unit_of_work(seller_id) as work:
        webhooks_of(work, context).delete(webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhookId}/rotatesecret", response_model=RotatedSecret)
def rotate_webhook_secret(
    webhook_id: WebhookIdPath, seller_id: SellerId, context: Context
) -> Response:
    """A new signing secret. For 24 hours each message is signed with both the new and
    the previous secret, so the receiver can switch at its own pace."""
    with context.database.unit_of_work(seller_id) as work:
        secret, expires = webhooks_of(work, context).rotate_secret(webhook_id)
    return json_response(RotatedSecret(secret=secret, previous_secret_expires_at=expires))


@router.post("/webhooks/{webhookId}/test", status_code=202, response_model=DeliveryOut)
def send_webhook_test(webhook_id: WebhookIdPath, seller_id: SellerId, context: Context) -> Response:
    """Send a `webhook.test` event to this endpoint now; the answer is its delivery."""
    with context.database.unit_of_work(seller_id) as work:
        delivery = webhooks_of(work, context).send_test(webhook_id)
    return json_response(_delivery_out(delivery), 202)


@router.get("/webhooks/{webhookId}/deliveries", response_model=list[DeliveryOut])
def list_webhook_deliveries(
    webhook_id: WebhookIdPath,
    seller_id: SellerId,
    context: Context,
    paging: Paging,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Response:
    """Every attempt to deliver an event to the endpoint (and the next one due), latest
    first: its event, status code, latency, error and the next attempt."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = webhooks_of(work, context).deliveries(webhook_id, status, paging)
    return list_response([_delivery_out(d) for d in page.items], page.total)


@router.post(
    "/webhooks/{webhookId}/deliveries/{deliveryId}/retry",
    status_code=202,
    response_model=DeliveryOut,
)
def retry_webhook_delivery(
    webhook_id: WebhookIdPath, delivery_id: DeliveryIdPath, seller_id: SellerId, context: Context
) -> Response:
    """Send the delivery's event again now (once; an attempt already waiting is brought
    forward). The answer is the attempt, Pending until a worker makes it."""
    with context.database.unit_of_work(seller_id) as work:
        delivery = webhooks_of(work, context).retry(webhook_id, delivery_id)
    return json_response(_delivery_out(delivery), 202)


def _out(endpoint: Endpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        description=endpoint.description,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        disabled_at=endpoint.disabled_at,
        created_at=endpoint.created_at,
    )


def _delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        attempt=delivery.attempt,
        status=delivery.status,
        due_at=delivery.due_at,
        attempted_at=delivery.attempted_at,
        status_code=delivery.status_code,
        latency_ms=delivery.latency_ms,
        error=delivery.error,
        response_body=delivery.response_body,
        next_attempt_at=delivery.next_attempt_at,
    )


# -- the events, as the OpenAPI's `webhooks` section declares them -----------------------

# Each event's body refers to the schema its object's `GET` answers with: written by
# hand, since a response model used as a request body would be documented twice.
_EVENTS = {
    "bulkconsumption.succeeded": (
        "BulkConsumptionSucceededEvent",
        "TaskOut",
        "A bulk submission was applied: every record saved (or a duplicate).",
    ),
    "bulkconsumption.failed": (
        "BulkConsumptionFailedEvent",
        "TaskOut",
        "A bulk submission was refused whole; `data.errors` names at most 100 bad records.",
    ),
    "invoice.finalized": (
        "InvoiceFinalizedEvent",
        "InvoiceOut",
        "An invoice was issued (regular, interim or final).",
    ),
    "invoice.voided": (
        "InvoiceVoidedEvent",
        "InvoiceOut",
        "An invoice was voided (after the credit note that credits what was left).",
    ),
    "invoice.paid": (
        "InvoicePaidEvent",
        "InvoiceOut",
        "A payment or a credit note settled what was left of an invoice.",
    ),
    "creditnote.issued": (
        "CreditNoteIssuedEvent",
        "CreditNoteOut",
        "A credit note was issued (on its own, or by a void).",
    ),
    "contract.ended": (
        "ContractEndedEvent",
        "ContractOut",
        "A contract was given its end date; its final invoice follows at that date.",
    ),
    "webhook.test": (
        "WebhookTestEvent",
        "WebhookTestData",
        "Sent by `POST /api/v1/webhooks/{webhookId}/test`.",
    ),
}

_HEADERS = (
    "Signed as Standard Webhooks: `webhook-id` (the event's id, the same on every "
    "attempt), `webhook-timestamp` (Unix seconds of the attempt) and `webhook-signature` "
    "(`v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret that signs). Any 2xx "
    "within 15 s is success; anything else is retried (docs/webhooks.md)."
)


def _event_schema(name: str, event_type: str, data: str) -> dict[str, Any]:
    return {
        "title": name,
        "type": "object",
        "required": ["type", "timestamp", "data"],
        "additionalProperties": False,
        "properties": {
            "type": {"type": "string", "enum": [event_type]},
            "timestamp": {
                "type": "string",
                "format": "date-time",
                "description": "When the change the event reports happened.",
            },
            "data": {"$ref": f"#/components/schemas/{data}"},
        },
    }


def document_events(app: FastAPI) -> None:
    """Declare every event in the OpenAPI's `webhooks` section (OpenAPI 3.1), its body
    and its headers."""
    for event_type, (name, _, summary) in _EVENTS.items():
        app.webhooks.add_api_route(
            event_type,
            _receiver,
            methods=["POST"],
            summary=summary,
            description=_HEADERS,
            operation_id="receive" + name.removesuffix("Event"),
            responses={200: {"description": "Received."}},
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                    },
                }
            },
        )
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["WebhookTestData"] = {
            "title": "WebhookTestData",
            "type": "object",
            "required": ["WebhookId"],
            "properties": {"WebhookId": {"type": "string"}},
        }
        for event_type, (name, data, _) in _EVENTS.items():
            schemas[name] = _event_schema(name, event_type, data)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _receiver() -> None:
    """What a seller's receiver implements (never called here)."""
