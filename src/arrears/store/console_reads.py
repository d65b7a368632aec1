"""What the console reads: searches, sorted pages and sums, each one query, scoped by seller.

Sums run in SQL (`GROUP BY`), never by loading rows into Python, but for one: invoice
amounts on SQLite are exact decimal text (`WideDecimal`, wide enough for any amount the
service accepts), which SQL cannot sum, so the month's invoice totals are summed in
Python there. Quantities on SQLite are integers scaled by 10**6, summed in three parts
(`ExactDecimal.sqlite_sums`) so that no number of entries can overflow. How each
database sums, sorts and formats is its dialect's (`store/dialect.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from arrears.domain.paging import Page, PageRequest
from arrears.store.tables import (
    ComponentRow,
    CustomerRow,
    InvoiceRow,
    TaskRow,
    UsageEntryRow,
)
from arrears.store.tasks import TaskRepository
from arrears.store.tenancy import TenantRepository
from arrears.store.usage_days import day_sums

__all__ = [
    "ConsoleReads",
    "CustomerSummary",
    "InvoiceQuery",
    "InvoiceSummary",
    "Sort",
    "TaskSummary",
    "UsageSum",
]


@dataclass(frozen=True, slots=True)
class Sort:
    """A column the page is ordered by; `descending` puts the largest first."""

    key: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    id: str
    name: str
    email_address: str | None
    external_customer_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    id: str
    invoice_number: str
    kind: str
    status: str
    customer_id: str
    customer_name: str
    contract_id: str
    document_date: datetime
    currency: str
    total: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceQuery:
    """Filters of the invoice list; each one left None filters nothing."""

    customer_id: str | None = None
    contract_id: str | None = None
    kind: str | None = None
    number: str | None = None
    document_from: datetime | None = None
    document_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskSummary:
    id: str
    status: str
    total_records: int
    saved_records: int
    duplicate_records: int
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class UsageSum:
    """The quantity of one component on one UTC day (`YYYY-MM-DD`)."""

    component_id: str
    component_name: str
    unit: str
    day: str
    quantity: Decimal


CUSTOMER_SORTS: dict[str, Any] = {
    "name": func.coalesce(
        CustomerRow.company_name, CustomerRow.last_name, CustomerRow.first_name, ""
    ),
    "email": CustomerRow.email_address,
    "external": CustomerRow.external_customer_id,
    "created": CustomerRow.created_at,
}
INVOICE_SORTS: dict[str, Any] = {
    "number": InvoiceRow.invoice_number,
    "date": InvoiceRow.document_date,
    "total": InvoiceRow.total,
    "customer": CUSTOMER_SORTS["name"],
}
_INVOICE_COLUMNS = (
    InvoiceRow.id,
    InvoiceRow.invoice_number,
    InvoiceRow.kind,
    InvoiceRow.status,
    InvoiceRow.customer_id,
    InvoiceRow.contract_id,
    InvoiceRow.document_date,
    InvoiceRow.currency,
    InvoiceRow.total,
)
# What `_name` reads of a customer (its id is the invoice's `customer_id`).
_NAME_COLUMNS = (
    CustomerRow.company_name,
    CustomerRow.first_name,
    CustomerRow.last_name,
    CustomerRow.email_address,
)
_TASK_COLUMNS = (
    TaskRow.id,
    TaskRow.status,
    TaskRow.total_records,
    TaskRow.saved_records,
    TaskRow.duplicate_records,
    TaskRow.created_at,
    TaskRow.completed_at,
)
TASK_SORTS: dict[str, Any] = {
    "created": TaskRow.created_at,
    "status": TaskRow.status,
    "records": TaskRow.total_records,
}


class ConsoleReads(TenantRepository):
    # -- customers -----------------------------------------------------------------------

    def customers(self, search: str, sort: Sort, page: PageRequest) -> Page[CustomerSummary]:
        """Customers whose name, e-mail address or external id contains `search` (any
        case), ordered by `sort` (a key of `CUSTOMER_SORTS`)."""
        query = select(CustomerRow).where(CustomerRow.seller_id == self.seller_id)
        if search:
            pattern = f"%{_escape_like(search.lower())}%"
            query = query.where(
                or_(
                    *(
                        func.lower(column).like(pattern, escape="\\")
                        for column in (
                            CustomerRow.company_name,
                            CustomerRow.first_name,
                            CustomerRow.last_name,
                            CustomerRow.email_address,
                            CustomerRow.external_customer_id,
                        )
                    )
                )
            )
        rows = self._sorted_page(query, CUSTOMER_SORTS, sort, CustomerRow.id, page)
        return Page(items=[_customer_summary(row) for (row,) in rows.items], total=rows.total)

    # -- invoices ------------------------------------------------------------------------

    def invoices(
        self, invoice_query: InvoiceQuery, sort: Sort, page: PageRequest
    ) -> Page[InvoiceSummary]:
        """Invoices matching every filter, with their customer's name."""
        # The columns a summary shows, not whole rows: an invoice keeps its parties as
        # JSON, which made every row PostgreSQL sorts for a page several times as wide.
        query: Select[Any] = (
            select(*_INVOICE_COLUMNS, *_NAME_COLUMNS)
            .join(CustomerRow, CustomerRow.id == InvoiceRow.customer_id)
            .where(InvoiceRow.seller_id == self.seller_id, CustomerRow.seller_id == self.seller_id)
        )
        q = invoice_query
        for column, value in (
            (InvoiceRow.customer_id, q.customer_id),
            (InvoiceRow.contract_id, q.contract_id),
            (InvoiceRow.kind, q.kind),
        ):
            if value is not None:
                query = query.where(column == value)
        if q.number:
            pattern = f"%{_escape_like(q.number.lower())}%"
            query = query.where(func.lower(InvoiceRow.invoice_number).like(pattern, escape="\\"))
        if q.document_from is not None:
            query = query.where(InvoiceRow.document_date >= q.document_from)
        if q.document_to is not None:
            query = query.where(InvoiceRow.document_date < q.document_to)
        rows = self._sorted_page(query, INVOICE_SORTS, sort, InvoiceRow.id, page)
        return Page(
            items=[_invoice_summary(row) for row in rows.items],
            total=rows.total,
        )

    def revenue_by_month(self, since: datetime) -> list[tuple[str, str, Decimal]]:
        """(month `YYYY-MM`, currency, billed total) for invoices dated from `since`,
        oldest month first."""
        dialect = self._dialect
        month = dialect.instant_text(InvoiceRow.document_date, 7)
        where = (InvoiceRow.seller_id == self.seller_id, InvoiceRow.document_date >= since)
        sums = dialect.amount_sums(
            self._session, (month, InvoiceRow.currency), InvoiceRow.total, where
        )
        return [(m, c, total) for m, c, total in sums]

    # -- usage ---------------------------------------------------------------------------

    def usage_by_day(
        self, due_from: datetime, due_to: datetime, *, contract_id: str | None = None
    ) -> list[UsageSum]:
        """The quantity per UTC day and component due in `[due_from, due_to)`, of one
        contract or of all."""
        # Grouped without the components joined in: the join's lookup per entry about
        # doubled the time over a million entries; the few names come in a second query.
        dialect = self._dialect
        day = dialect.instant_text(UsageEntryRow.due_date, 10)
        query = (
            select(UsageEntryRow.component_id, day, *dialect.quantity_sums(UsageEntryRow.quantity))
            .where(
                UsageEntryRow.seller_id == self.seller_id,
                UsageEntryRow.due_date >= due_from,
                UsageEntryRow.due_date < due_to,
            )
            .group_by(UsageEntryRow.component_id, day)
        )
        if contract_id is not None:
            query = query.where(UsageEntryRow.contract_id == contract_id)
        rows = [
            (component_id, day, dialect.quantity_total(totals))
            for component_id, day, *totals in self._session.execute(query)
        ]
        return self._named(rows)

    def daily_usage(self, first_day: date, end_day: date) -> list[UsageSum]:
        """The quantity per UTC day and component of all contracts, on the days from
        `first_day` to before `end_day`: read from the daily rollup (`usage_days`), a
        row per day and component (and shard), not from the entries."""
        connection = self._session.connection()
        first, end = first_day.isoformat(), end_day.isoformat()
        sums = day_sums(connection, self._dialect.rollup, self.seller_id, first, end)
        return self._named(list(sums))

    def _named(self, rows: list[tuple[str, str, Decimal]]) -> list[UsageSum]:
        """(component id, day, quantity) rows with their components' names and units,
        by day, then component name."""
        names = self._session.execute(
            select(ComponentRow.id, ComponentRow.name, ComponentRow.unit).where(
                ComponentRow.seller_id == self.seller_id,
                ComponentRow.id.in_({row[0] for row in rows}),
            )
        )
        components = {id_: (name, unit) for id_, name, unit in names}
        sums = [
            UsageSum(
                component_id=component_id,
                component_name=components[component_id][0],
                unit=components[component_id][1],
                day=day,
                quantity=quantity,
            )
            for component_id, day, quantity in rows
            if component_id in components
        ]
        return sorted(sums, key=lambda s: (s.day, s.component_name))

    # -- bulk submissions ----------------------------------------------------------------

    def tasks(self, status: str | None, sort: Sort, page: PageRequest) -> Page[TaskSummary]:
        """Bulk submissions, optionally of one status."""
        # Columns, not rows: a failed task's errors can run to thousands of entries.
        query = select(*_TASK_COLUMNS).where(TaskRow.seller_id == self.seller_id)
        if status is not None:
            query = query.where(TaskRow.status == status)
        rows = self._sorted_page(query, TASK_SORTS, sort, TaskRow.id, page)
        return Page(items=[TaskSummary(*row) for row in rows.items], total=rows.total)

    def task_repository(self) -> TaskRepository:
        return TaskRepository(self._session, self.seller_id)

    # -- shared --------------------------------------------------------------------------

    def customer_names(self, customer_ids: Sequence[str]) -> dict[str, str]:
        if not customer_ids:
            return {}
        query = select(CustomerRow).where(
            CustomerRow.seller_id == self.seller_id, CustomerRow.id.in_(set(customer_ids))
        )
        return {row.id: _name(row) for row in self._session.execute(query).scalars()}

    def _sorted_page(
        self,
        query: Select[Any],
        sorts: dict[str, Any],
        sort: Sort,
        tie: InstrumentedAttribute[str],
        page: PageRequest,
    ) -> Page[Any]:
        total = self._session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        column = sorts[sort.key]
        if column is InvoiceRow.total:  # wide amounts: exact text on SQLite
            column = self._dialect.sortable_amount(column)
        order = [column.desc(), tie.desc()] if sort.descending else [column.asc(), tie.asc()]
        rows = self._session.execute(query.order_by(*order).offset(page.skip).limit(page.take))
        return Page(items=[tuple(row) for row in rows], total=total)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name(row: CustomerRow) -> str:
    return _display_name(row.company_name, row.first_name, row.last_name, row.email_address, row.id)


def _display_name(
    company: str | None, first: str | None, last: str | None, email: str | None, id_: str
) -> str:
    person = " ".join(part for part in (first, last) if part)
    return company or person or email or id_


def _customer_summary(row: CustomerRow) -> CustomerSummary:
    return CustomerSummary(
        id=row.id,
        name=_name(row),
        email_address=row.email_address,
        external_customer_id=row.external_customer_id,
        created_at=row.created_at,
    )


def _invoice_summary(row: tuple[Any, ...]) -> InvoiceSummary:
    """A row of `_INVOICE_COLUMNS` then `_NAME_COLUMNS`, as the list shows it."""
    id_, number, kind, status, customer_id, contract_id, date_, currency, total = row[:9]
    return InvoiceSummary(
        id=id_,
        invoice_number=number,
        kind=kind,
        status=status,
        customer_id=customer_id,
        customer_name=_display_name(*row[9:], customer_id),
        contract_id=contract_id,
        document_date=date_,
        currency=currency,
        total=total,
    )
