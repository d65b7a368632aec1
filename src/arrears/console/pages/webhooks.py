"""Webhooks (SPEC §13, §14): the seller's endpoints, each one's deliveries, and sending a
delivery again now ("Retry now", the same service call as the API's retry).

A retry asks no confirmation: it sends one more attempt of an event the receiver has
already been sent, and changes nothing else.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from arrears.api.context import Context
from arrears.api.routers.webhooks import webhooks_of
from arrears.console.pages.routing import console_router, form_of, see_other
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf, check_csrf
from arrears.console.tables import table_of
from arrears.domain.webhooks import DeliveryStatus
from arrears.services.console import Sort

router = console_router()

DELIVERY_SORTS = {"due": None}


@router.get("/webhooks")
def webhooks_page(request: Request, session: SessionOf, context: Context) -> Response:
    table = table_of(request.query_params, {"created": None}, Sort("created", True))
    with context.database.unit_of_work(session.seller_id, "read") as work:
        webhooks = webhooks_of(work, context)
        page = webhooks.page(table.request)
        failing = webhooks.failing_counts()
    return render(
        request, "webhooks.html", session=session, table=table, page=page, failing=failing
    )


@router.get("/webhooks/{webhookId}")
def webhook_page(
    request: Request, webhookId: str, session: SessionOf, context: Context
) -> Response:
    query = request.query_params
    status_value = query.get("status")
    status = DeliveryStatus(status_value) if status_value in set(DeliveryStatus) else None
    table = table_of(query, DELIVERY_SORTS, Sort("due", True), keep=("status",))
    with context.database.unit_of_work(session.seller_id, "read") as work:
        webhooks = webhooks_of(work, context)
        endpoint = webhooks.get(webhookId)
        page = webhooks.deliveries(
            webhookId, status, table.request, oldest_first=not table.sort.descending
        )
        failing = webhooks.failing_counts().get(webhookId, 0)
    return render(
        request,
        "webhook.html",
        session=session,
        endpoint=endpoint,
        failing=failing,
        table=table,
        page=page,
        status=status.value if status else "",
        statuses=[s.value for s in DeliveryStatus],
    )


@router.post("/webhooks/{webhookId}/deliveries/{deliveryId}/retry")
async def retry_delivery(
    request: Request, webhookId: str, deliveryId: str, session: SessionOf, context: Context
) -> Response:
    """Bring the event's waiting attempt forward to now, or add one due now; then the
    endpoint's page (303)."""
    form = await form_of(request)
    check_csrf(session.csrf_token, form)

    def retry() -> None:
        with context.database.unit_of_work(session.seller_id) as work:
            webhooks_of(work, context).retry(webhookId, deliveryId)

    await run_in_threadpool(retry)
    return see_other(f"/console/webhooks/{webhookId}?retried=1")
