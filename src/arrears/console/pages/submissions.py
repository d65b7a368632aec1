"""Bulk submissions: their status, their errors, and the failed records as CSV."""

from __future__ import annotations

import csv
import io

from fastapi import Request, Response

from arrears.api.context import Context
from arrears.console.pages.routing import console_router
from arrears.console.rendering import render
from arrears.console.sessions import SessionOf
from arrears.console.tables import PAGE_SIZE, table_of
from arrears.domain.tasks import RecordError, TaskStatus
from arrears.services.console import TASK_SORTS, Sort, find_tasks, task_view

router = console_router()

CSV_COLUMNS = ("index", "subscriptionId", "field", "code", "message")
# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@router.get("/submissions")
def submissions_page(request: Request, session: SessionOf, context: Context) -> Response:
    query = request.query_params
    status_value = query.get("status")
    status = TaskStatus(status_value) if status_value in set(TaskStatus) else None
    table = table_of(query, TASK_SORTS, Sort("created", True), keep=("status",))
    with context.database.unit_of_work(session.seller_id, "read") as work:
        page = find_tasks(work, status, table.sort, table.request)
    return render(
        request,
        "submissions.html",
        session=session,
        table=table,
        page=page,
        status=status.value if status else "",
        statuses=[s.value for s in TaskStatus],
    )


@router.get("/submissions/{taskId}")
def submission_page(
    request: Request, taskId: str, session: SessionOf, context: Context
) -> Response:
    table = table_of(request.query_params, {"index": None}, Sort("index"))
    with context.database.unit_of_work(session.seller_id, "read") as work:
        task = task_view(work, taskId)
    errors = task.errors[table.request.skip : table.request.skip + PAGE_SIZE]
    return render(
        request, "submission.html", session=session, task=task, errors=errors, table=table
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def failed_records_csv(errors: tuple[RecordError, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for error in errors:
        writer.writerow(
            _cell(v)
            for v in (error.index, error.subscription_id, error.field, error.code, error.message)
        )
    return out.getvalue()


@router.get("/submissions/{taskId}/failed-records.csv")
def failed_records(taskId: str, session: SessionOf, context: Context) -> Response:
    with context.database.unit_of_work(session.seller_id, "read") as work:
        task = task_view(work, taskId)
    return Response(
        failed_records_csv(task.errors),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{task.id}-failed-records.csv"',
            "Cache-Control": "no-store",
        },
    )
