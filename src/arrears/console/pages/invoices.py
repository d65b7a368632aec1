"""Invoices: a filtered, sorted list; an invoice's lines down to their usage entries."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from fastapi import Request, Response

from arrears.api.context import Context
from arrears.console.pages.routing import console_router
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf
from arrears.console.tables import table_of
from arrears.domain.invoices import InvoiceKind
from arrears.services.console import INVOICE_SORTS, InvoiceQuery, Sort, find_invoices, invoice_view

router = console_router()

FILTERS = ("customer", "kind", "number", "from", "to")


def day_of(value: str | None, *, after: bool = False) -> datetime | None:
    """A `YYYY-MM-DD` filter as the instant its UTC day starts (or, for `after`, ends);
    a value that is no date filters nothing."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return None
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start + timedelta(days=1) if after else start


@router.get("/invoices")
def invoices_page(request: Request, session: SessionOf, context: Context) -> Response:
    query = request.query_params
    kind = query.get("kind")
    invoice_query = InvoiceQuery(
        customer_id=query.get("customer") or None,
        kind=kind if kind in {k.value for k in InvoiceKind} else None,
        number=(query.get("number") or "")[:40] or None,
        document_from=day_of(query.get("from")),
        document_to=day_of(query.get("to"), after=True),
    )
    table = table_of(query, INVOICE_SORTS, Sort("date", True), keep=FILTERS)
    with context.database.unit_of_work(session.seller_id, "read") as work:
        page = find_invoices(work, invoice_query, table.sort, table.request)
    return render(
        request,
        "invoices.html",
        session=session,
        table=table,
        page=page,
        filters={name: query.get(name, "") for name in FILTERS},
        kinds=[k.value for k in InvoiceKind],
    )


@router.get("/invoices/{invoiceId}")
def invoice_page(
    request: Request, invoiceId: str, session: SessionOf, context: Context
) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        view = invoice_view(work, invoiceId)
    return render(request, "invoice.html", session=session, view=view)
