"""The overview: billed revenue per month, usage per component, failing bulk tasks and
webhook endpoints."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from fastapi import Request, Response

from arrears.api.context import Context
from arrears.api.routers.webhooks import webhooks_of
from arrears.console.charts import bar_chart, days_between
from arrears.console.pages.routing import console_router
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf
from arrears.services.console import UsageSum, overview

router = console_router()


def usage_charts(usage: list[UsageSum], days: list[str]) -> list[dict[str, object]]:
    """One daily chart per component (each on its own axis, in its own unit)."""
    by_component: dict[str, dict[str, Decimal]] = defaultdict(dict)
    names: dict[str, tuple[str, str]] = {}
    for row in usage:
        by_component[row.component_id][row.day] = row.quantity
        names[row.component_id] = (row.component_name, row.unit)
    charts = []
    for component_id, per_day in sorted(by_component.items(), key=lambda i: names[i[0]][0]):
        name, unit = names[component_id]
        points = [(day, per_day.get(day, Decimal(0))) for day in days]
        charts.append(
            {
                "component_id": component_id,
                "name": name,
                "unit": unit,
                "total": sum(per_day.values(), Decimal(0)),
                "chart": bar_chart(points),
                "days": [(day, q) for day, q in points if q],
            }
        )
    return charts


@router.get("")
def overview_page(request: Request, session: SessionOf, context: Context) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        view = overview(work, context.clock)
        failing_webhooks = webhooks_of(work, context).failing()
    revenue: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for month, currency, total in view.revenue:
        revenue[currency][month] = total
    months = {
        currency: [(month, totals.get(month, Decimal(0))) for month in view.months]
        for currency, totals in revenue.items()
    }
    return render(
        request,
        "overview.html",
        session=session,
        view=view,
        failing_webhooks=failing_webhooks,
        revenue={currency: (rows, bar_chart(rows)) for currency, rows in sorted(months.items())},
        usage=usage_charts(view.usage, days_between(view.usage_from, view.usage_to)),
    )
