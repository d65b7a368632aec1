"""A contract: usage per day and component, the current period's preview with the free
quota left, and its invoices."""

from __future__ import annotations

from fastapi import Request, Response

from arrears.api.context import Context
from arrears.console.charts import days_between
from arrears.console.pages.overview import usage_charts
from arrears.console.pages.routing import console_router
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf
from arrears.console.tables import table_of
from arrears.services.console import Sort, contract_view

router = console_router()


@router.get("/contracts/{contractId}")
def contract_page(
    request: Request, contractId: str, session: SessionOf, context: Context
) -> Response:
    invoices = table_of(request.query_params, {"date": None}, Sort("date", True))
    # A rehearsal: the preview bills a period that is due but not yet billed first, as
    # the API's preview does, and all of it is rolled back.
    with context.database.unit_of_work(session.seller_id, "rehearsal") as work:
        view = contract_view(work, context.clock, contractId, invoices.request)
    return render(
        request,
        "contract.html",
        session=session,
        view=view,
        invoices=invoices,
        status=view.contract.status(context.clock.now()),
        usage=usage_charts(view.usage, days_between(view.usage_from, view.usage_to)),
    )
