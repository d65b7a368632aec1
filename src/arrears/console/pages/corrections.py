"""An invoice's documents and corrections (SPEC §10, §12, §14): its PDF, and crediting,
voiding and recording a payment, each after a confirmation page.

An action's form posts its fields without `confirmed`: the answer is a page that repeats
them and asks; posting that page (`confirmed=yes`) acts. Both carry the session's CSRF
token. An error of the service (over-credit, a voided invoice) is shown on the invoice's
page with its status, never a server error; a foreign invoice is a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from arrears.api.context import AppContext, Context
from arrears.api.routers.documents import credit_note_pdf_response, invoice_pdf_response
from arrears.console.pages.routing import console_router, form_of, see_other
from arrears.console.rendering import render
from arrears.console.sessions import ConsoleSession, SessionOf, check_csrf
from arrears.domain.credit_notes import LineCredit
from arrears.domain.errors import ArrearsError, Invalid
from arrears.domain.grammar import NotInGrammar, parse_decimal
from arrears.domain.limits import PRICE_PLACES
from arrears.domain.usage import check_decimal
from arrears.services import corrections
from arrears.services.console import invoice_view
from arrears.store.unit_of_work import UnitOfWork

router = console_router()

ACTIONS = {"credit": "Credit", "void": "Void", "payment": "Record a payment"}


@router.get("/invoices/{invoiceId}/pdf")
def invoice_pdf(invoiceId: str, session: SessionOf, context: Context) -> Response:
    return invoice_pdf_response(context, session.seller_id, invoiceId)


@router.get("/creditnotes/{creditNoteId}/pdf")
def credit_note_pdf(creditNoteId: str, session: SessionOf, context: Context) -> Response:
    return credit_note_pdf_response(context, session.seller_id, creditNoteId)


def _amount(value: str, field: str) -> Decimal:
    """An amount as the API reads one (its grammar, below 10^12, at most six places);
    the currency's own places and what is left are the service's to check."""
    try:
        amount = parse_decimal(value.strip())
    except NotInGrammar:
        raise Invalid.one(field, "not_a_decimal", "Enter an amount, such as 12.50.") from None
    error = check_decimal(amount, field, PRICE_PLACES)
    if error is not None:
        raise Invalid([error])
    if amount == 0:
        raise Invalid.one(field, "not_positive", "Enter an amount above 0.")
    return amount


def _reason(form: dict[str, str]) -> str:
    reason = form.get("reason", "").strip()[:1000]
    if not reason:
        raise Invalid.one("reason", "required", "Say why: the reason is on the document.")
    return reason


def _lines(form: dict[str, str]) -> list[LineCredit] | None:
    """One line by amount (`line`: its number from 1), or None: the whole invoice."""
    if form.get("line", "") in {"", "all"}:
        return None
    try:
        index = int(form["line"]) - 1
    except ValueError:
        raise Invalid.one("line", "number", "Choose a line of the invoice.") from None
    return [LineCredit(index, _amount(form.get("amount", ""), "amount"))]


Act = Callable[[UnitOfWork, AppContext, str], object]


def _action(name: str, form: dict[str, str]) -> Act:
    """The service call the form asks for; `Invalid` for fields it cannot read."""
    if name == "void":
        reason = _reason(form)
        return lambda work, ctx, i: corrections.void_invoice(work, ctx.clock, i, reason=reason)
    if name == "credit":
        reason, lines = _reason(form), _lines(form)
        return lambda work, ctx, i: corrections.issue_credit_note(
            work, ctx.clock, i, reason=reason, lines=lines
        )
    amount = _amount(form.get("amount", ""), "amount")
    reference = form.get("reference", "").strip()[:200]
    if not reference:
        raise Invalid.one("reference", "required", "Give the payment's reference.")
    return lambda work, ctx, i: corrections.record_payment(
        work, ctx.clock, i, amount=amount, paid_at=None, reference=reference
    )


def _invoice(
    request: Request,
    context: AppContext,
    session: ConsoleSession,
    invoice_id: str,
    error: ArrearsError | None = None,
) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        view = invoice_view(work, invoice_id)
    status = error.status if error is not None else 200
    detail = None
    if error is not None:
        fields = getattr(error, "errors", [])
        detail = " ".join([error.detail, *(f"{e.field}: {e.message}" for e in fields)])
    return render(request, "invoice.html", status, session=session, view=view, error=detail)


@router.post("/invoices/{invoiceId}/credit")
async def credit(
    request: Request, invoiceId: str, session: SessionOf, context: Context
) -> Response:
    return await _act(request, "credit", invoiceId, session, context)


@router.post("/invoices/{invoiceId}/void")
async def void(request: Request, invoiceId: str, session: SessionOf, context: Context) -> Response:
    return await _act(request, "void", invoiceId, session, context)


@router.post("/invoices/{invoiceId}/payment")
async def payment(
    request: Request, invoiceId: str, session: SessionOf, context: Context
) -> Response:
    return await _act(request, "payment", invoiceId, session, context)


async def _act(
    request: Request, action: str, invoice_id: str, session: ConsoleSession, context: AppContext
) -> Response:
    """Without `confirmed=yes`, the page that asks; with it, the action, then the
    invoice's page (303) or, for an error of the service, the invoice's page with it."""
    form = await form_of(request)
    check_csrf(session.csrf_token, form)
    try:
        act = _action(action, form)
        if form.get("confirmed") != "yes":
            return await run_in_threadpool(
                _confirm, request, context, session, invoice_id, action=action, form=form, act=act
            )
        await run_in_threadpool(_run, context, session, invoice_id, act)
    except ArrearsError as error:
        if error.status == 404:
            raise
        return await run_in_threadpool(_invoice, request, context, session, invoice_id, error)
    return see_other(f"/console/invoices/{invoice_id}")


def _confirm(
    request: Request,
    context: AppContext,
    session: ConsoleSession,
    invoice_id: str,
    *,
    action: str,
    form: dict[str, str],
    act: Act,
) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        view = invoice_view(work, invoice_id)  # a foreign invoice: 404 before asking
    # Rehearsed first, all rolled back: what the service would refuse (an amount past
    # what is due, a line overdrawn) is said now, not after the operator confirmed.
    _run(context, session, invoice_id, act, access="rehearsal")
    fields = {k: v for k, v in form.items() if k not in {"csrf_token", "confirmed"}}
    return render(
        request,
        "confirm.html",
        session=session,
        view=view,
        action=action,
        action_title=ACTIONS[action],
        fields=fields,
    )


def _run(
    context: AppContext,
    session: ConsoleSession,
    invoice_id: str,
    act: Act,
    access: Literal["write", "rehearsal"] = "write",
) -> None:
    with context.database.unit_of_work(session.seller_id, access) as work:
        act(work, context, invoice_id)
