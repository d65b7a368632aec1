"""Creating and changing webhook endpoints in the console (SPEC §13, §14): a new
endpoint, editing one (URL, events, description, enabled), and rotating its signing
secret or deleting it, each of those two after a confirmation page.

A form is read by the API's own request models (`NewWebhook`, `WebhookChange`) and
acted on by the API's service (`services/webhooks.py`): a field is refused for the same
reasons, with the same messages, as by `POST` and `PATCH /api/v1/webhooks`; here each
message stands beside its field and the form comes back filled in. A signing secret is
shown once, on the page that answers the post that made it: never in a URL or a cookie.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from arrears.api.context import AppContext, Context
from arrears.api.problems import field_errors_from_pydantic
from arrears.api.routers.webhooks import NewWebhook, WebhookChange, webhooks_of
from arrears.console.pages.routing import console_router, form_lists_of, form_of, see_other
from arrears.console.rendering import render
from arrears.console.sessions import ConsoleSession, SessionOf, check_csrf
from arrears.domain.errors import FieldError, Invalid
from arrears.domain.webhooks import EVERY_EVENT, SECRET_OVERLAP, SUBSCRIBABLE, Endpoint
from arrears.services.webhooks import EndpointChange

router = console_router()

Model = TypeVar("Model", bound=BaseModel)

LABELS = {"url": "URL", "events": "Events", "description": "Description", "enabled": "State"}
"""Each form field's label, by its name in the form (the API's field, in lower case)."""

CONFIRMATIONS = {"delete": "Delete the endpoint", "rotatesecret": "Rotate the signing secret"}


@dataclass(frozen=True, slots=True)
class WebhookForm:
    """What the form shows: as posted, or the endpoint as it is."""

    url: str = ""
    events: tuple[str, ...] = ()
    description: str = ""
    enabled: str = "true"
    """`true` or `false` as the form sends it ("" if it sent none: left as it is)."""

    @classmethod
    def of(cls, endpoint: Endpoint) -> WebhookForm:
        enabled = "true" if endpoint.enabled else "false"
        return cls(endpoint.url, endpoint.events, endpoint.description or "", enabled)

    @classmethod
    def posted(cls, form: dict[str, list[str]]) -> WebhookForm:
        return cls(
            url=_last(form, "url").strip(),
            events=tuple(form.get("events", [])),
            description=_last(form, "description").strip(),
            enabled=_last(form, "enabled"),
        )


def _last(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[-1] if values else ""


def _read(model: type[Model], data: dict[str, object]) -> Model:
    """`data` read as the API reads its body; `Invalid` naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise Invalid(field_errors_from_pydantic(error.errors())) from None


def _by_field(errors: Sequence[FieldError]) -> dict[str, list[str]]:
    """The messages by form field (`Events[2]` is the events'); "" for any other."""
    by_field: dict[str, list[str]] = {}
    for error in errors:
        name = error.field.split("[")[0].split(".")[0].lower()
        by_field.setdefault(name if name in LABELS else "", []).append(error.message)
    return by_field


def _form_page(
    request: Request,
    session: ConsoleSession,
    form: WebhookForm,
    endpoint: Endpoint | None = None,
    invalid: Invalid | None = None,
) -> Response:
    return render(
        request,
        "webhook_form.html",
        422 if invalid else 200,
        session=session,
        endpoint=endpoint,
        form=form,
        errors=_by_field(invalid.errors if invalid else ()),
        labels=LABELS,
        events=SUBSCRIBABLE,
        every_event=EVERY_EVENT,
    )


# -- creating -------------------------------------------------------------------------


async def _posted(request: Request, session: ConsoleSession) -> WebhookForm:
    """The posted form, once its CSRF token is checked."""
    values = await form_lists_of(request)
    check_csrf(session.csrf_token, {"csrf_token": _last(values, "csrf_token")})
    return WebhookForm.posted(values)


@router.get("/webhooks/new")
def new_webhook_page(request: Request, session: SessionOf) -> Response:
    return _form_page(request, session, WebhookForm())


@router.post("/webhooks")
async def create_webhook(request: Request, session: SessionOf, context: Context) -> Response:
    """The endpoint made, and its secret shown this once (201); or the form again with
    what is wrong beside each field (422)."""
    form = await _posted(request, session)
    try:
        body = _read(
            NewWebhook,
            {"Url": form.url, "Events": list(form.events), "Description": form.description or None},
        )

        def create() -> tuple[Endpoint, str]:
            with context.database.unit_of_work(session.seller_id) as work:
                return webhooks_of(work, context).create(body.url, body.events, body.description)

        endpoint, secret = await run_in_threadpool(create)
    except Invalid as invalid:
        return _form_page(request, session, form, invalid=invalid)
    return render(
        request, "webhook_secret.html", 201, session=session, endpoint=endpoint, secret=secret
    )


# -- editing --------------------------------------------------------------------------


@router.get("/webhooks/{webhookId}/edit")
def edit_webhook_page(
    request: Request, webhookId: str, session: SessionOf, context: Context
) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        endpoint = webhooks_of(work, context).get(webhookId)
    return _form_page(request, session, WebhookForm.of(endpoint), endpoint)


@router.post("/webhooks/{webhookId}/edit")
async def edit_webhook(
    request: Request, webhookId: str, session: SessionOf, context: Context
) -> Response:
    """The endpoint changed, then its page (303); or the form again with what is wrong
    beside each field (422). Only what differs from the endpoint is sent to the service,
    as a `PATCH` naming only those fields would be."""
    form = await _posted(request, session)
    try:
        body = _read(
            WebhookChange,
            {
                "Url": form.url,
                "Events": list(form.events),
                "Description": form.description,
                "Enabled": form.enabled or None,
            },
        )
        await run_in_threadpool(_change, context, session, webhookId, body)
    except Invalid as invalid:
        endpoint = await run_in_threadpool(_endpoint, context, session, webhookId)
        return _form_page(request, session, form, endpoint, invalid)
    return see_other(f"/console/webhooks/{webhookId}?changed=1")


def _change(
    context: AppContext, session: ConsoleSession, endpoint_id: str, body: WebhookChange
) -> None:
    with context.database.unit_of_work(session.seller_id) as work:
        webhooks = webhooks_of(work, context)
        now = webhooks.get(endpoint_id)
        events = tuple(body.events or ())
        description = body.description or ""
        change = EndpointChange(
            url=body.url if body.url != now.url else None,
            events=events if events != now.events else None,
            description=description if description != (now.description or "") else None,
            enabled=None if body.enabled in (None, now.enabled) else body.enabled,
        )
        webhooks.change(endpoint_id, change)


def _endpoint(context: AppContext, session: ConsoleSession, endpoint_id: str) -> Endpoint:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        return webhooks_of(work, context).get(endpoint_id)


# -- rotating the secret, deleting: asked first -----------------------------------------


@router.post("/webhooks/{webhookId}/rotatesecret")
async def rotate_secret(
    request: Request, webhookId: str, session: SessionOf, context: Context
) -> Response:
    """Without `confirmed=yes`, the page that asks; with it, a new secret, shown this
    once beside until when the previous one still signs."""
    confirmed = await _confirmed(request, session)
    if not confirmed:
        return await _confirm_page(request, context, session, webhookId, "rotatesecret")

    def rotate() -> tuple[Endpoint, str, datetime]:
        with context.database.unit_of_work(session.seller_id) as work:
            webhooks = webhooks_of(work, context)
            secret, previous_until = webhooks.rotate_secret(webhookId)
            return webhooks.get(webhookId), secret, previous_until

    endpoint, secret, previous_until = await run_in_threadpool(rotate)
    return render(
        request,
        "webhook_secret.html",
        session=session,
        endpoint=endpoint,
        secret=secret,
        previous_until=previous_until,
    )


@router.post("/webhooks/{webhookId}/delete")
async def delete_webhook(
    request: Request, webhookId: str, session: SessionOf, context: Context
) -> Response:
    """Without `confirmed=yes`, the page that asks; with it, the endpoint and its
    deliveries forgotten, then the list of endpoints (303)."""
    if not await _confirmed(request, session):
        return await _confirm_page(request, context, session, webhookId, "delete")

    def delete() -> None:
        with context.database.unit_of_work(session.seller_id) as work:
            webhooks_of(work, context).delete(webhookId)

    await run_in_threadpool(delete)
    return see_other("/console/webhooks?deleted=1")


async def _confirmed(request: Request, session: ConsoleSession) -> bool:
    form = await form_of(request)
    check_csrf(session.csrf_token, form)
    return form.get("confirmed") == "yes"


async def _confirm_page(
    request: Request, context: AppContext, session: ConsoleSession, endpoint_id: str, action: str
) -> Response:
    # A foreign endpoint is a 404 before anything is asked.
    endpoint = await run_in_threadpool(_endpoint, context, session, endpoint_id)
    return render(
        request,
        "webhook_confirm.html",
        session=session,
        endpoint=endpoint,
        action=action,
        action_title=CONFIRMATIONS[action],
        overlap_hours=int(SECRET_OVERLAP.total_seconds() // 3600),
    )
