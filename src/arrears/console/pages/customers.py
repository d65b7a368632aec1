"""Customers: search by name, e-mail address or external id; a customer's contracts and
invoices."""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request, Response

from arrears.api.context import Context
from arrears.console.pages.routing import console_router
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf
from arrears.console.tables import table_of
from arrears.services.console import CUSTOMER_SORTS, Sort, customer_view, find_customers

router = console_router()


@router.get("/customers")
def customers_page(request: Request, session: SessionOf, context: Context) -> Response:
    query = request.query_params
    search = query.get("q", "")[:200]
    table = table_of(query, CUSTOMER_SORTS, Sort("name"), keep=("q",))
    with context.database.unit_of_work(session.seller_id, "read") as work:
        page = find_customers(work, search, table.sort, table.request)
    return render(request, "customers.html", session=session, search=search, table=table, page=page)


@router.get("/customers/{customerId}")
def customer_page(
    request: Request, customerId: str, session: SessionOf, context: Context
) -> Response:
    query = request.query_params
    # Two tables on one page: each keeps its own page number.
    contracts = table_of(query, {"created": None}, Sort("created", True), prefix="c_")
    invoices = table_of(query, {"date": None}, Sort("date", True), prefix="i_")
    contracts = replace(contracts, keep={"i_page": str(invoices.page)})
    invoices = replace(invoices, keep={"c_page": str(contracts.page)})
    with context.database.unit_of_work(session.seller_id, "read") as work:
        view = customer_view(work, customerId, contracts.request, invoices.request)
    return render(
        request,
        "customer.html",
        session=session,
        view=view,
        contracts=contracts,
        invoices=invoices,
        now=context.clock.now(),
    )
