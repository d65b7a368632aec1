"""Credit notes: the seller's list, newest first, and one credit note with its lines and
PDF (the PDF itself is served by `console.pages.corrections`)."""

from __future__ import annotations

from fastapi import Request, Response

from arrears.api.context import Context
from arrears.console.pages.invoices import day_of
from arrears.console.pages.routing import console_router
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf
from arrears.console.tables import table_of
from arrears.services.console import (
    CreditNoteFilter,
    Sort,
    credit_note_view,
    find_credit_notes,
)

router = console_router()

FILTERS = ("customer", "invoice", "from", "to")
_NEWEST = Sort("date", descending=True)


@router.get("/creditnotes")
def credit_notes_page(request: Request, session: SessionOf, context: Context) -> Response:
    query = request.query_params
    note_filter = CreditNoteFilter(
        invoice_id=query.get("invoice") or None,
        customer_id=query.get("customer") or None,
        document_from=day_of(query.get("from")),
        document_to=day_of(query.get("to"), after=True),
    )
    # One order only (newest first): the table pages but does not sort.
    table = table_of(query, {"date": None}, _NEWEST, keep=FILTERS)
    with context.database.unit_of_work(session.seller_id, "read") as work:
        found = find_credit_notes(work, note_filter, table.request)
    return render(
        request,
        "credit_notes.html",
        session=session,
        table=table,
        page=found.page,
        customer_names=found.customer_names,
        filters={name: query.get(name, "") for name in FILTERS},
    )


@router.get("/creditnotes/{creditNoteId}")
def credit_note_page(
    request: Request, creditNoteId: str, session: SessionOf, context: Context
) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        view = credit_note_view(work, creditNoteId)
    return render(request, "credit_note.html", session=session, view=view)
