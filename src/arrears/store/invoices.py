"""The invoice repository: what an invoice bills (unbilled usage, linked and summed by
the database; pending rated items; the lines of its period's earlier invoices), gapless
invoice numbers, invoices stored and read back. Every invoice, whether a scheduler's
batch or one contract's interim invoice, is made through these methods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError

from arrears.domain.errors import Conflict
from arrears.domain.invoices import Invoice, InvoiceLine
from arrears.domain.money import currency
from arrears.domain.paging import Page, PageRequest
from arrears.domain.rating import InvoiceUsage
from arrears.domain.usage import UsageEntry
from arrears.store import billed_usage
from arrears.store.billed_usage import UsageWindow
from arrears.store.invoice_rows import (
    INVOICE_COLUMNS,
    LINE_COLUMNS,
    in_minor_units,
    invoice_from_row,
    line_from_row,
    rows_of_invoices,
)
from arrears.store.tables import (
    BilledUsageRow,
    InvoiceLineRow,
    InvoiceRow,
    InvoiceSequenceRow,
    RatedItemRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository, batched
from arrears.store.usage import usage_entry

__all__ = ["InvoiceFilter", "InvoiceRepository", "PendingRatedItem", "UsageWindow"]

_CHUNK = 2_000  # bound parameters per lookup statement


@dataclass(frozen=True, slots=True)
class PendingRatedItem:
    id: str
    description: str
    quantity: Decimal
    price_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    contract_id: str | None = None
    customer_id: str | None = None
    document_from: datetime | None = None
    document_to: datetime | None = None


class InvoiceRepository(TenantRepository):
    # -- what invoices bill --------------------------------------------------------------

    def link_unbilled_usage(self, windows: Sequence[UsageWindow]) -> dict[str, InvoiceUsage]:
        """Link every unbilled entry in each window to the window's invoice (which the
        caller inserts in this transaction), and return what each invoice bills, summed
        by the database.

        The contracts are locked, and deletes of unbilled entries take their lock too,
        so nothing linked here can be gone; a concurrent link of the same entry breaks
        billed_usage's primary key (`Conflict`, the transaction rolls back)."""
        if not windows:
            return {}
        self._session.flush()  # entries added in this transaction (an order's) count
        groups = billed_usage.link_and_sum(self._session, self.seller_id, windows)
        return self._usage(windows, groups)

    def sum_unbilled_usage(self, windows: Sequence[UsageWindow]) -> dict[str, InvoiceUsage]:
        """What `link_unbilled_usage` returns, linking nothing (a preview)."""
        if not windows:
            return {}
        self._session.flush()
        groups = billed_usage.sum_only(self._session, self.seller_id, windows)
        return self._usage(windows, groups)

    def _usage(
        self, windows: Sequence[UsageWindow], groups: list[billed_usage.UsageGroup]
    ) -> dict[str, InvoiceUsage]:
        entries = self._entries_by_id(billed_usage.override_ids(groups))
        return billed_usage.invoice_usage(windows, groups, entries)

    def _entries_by_id(self, ids: list[int]) -> dict[int, UsageEntry]:
        found: dict[int, UsageEntry] = {}
        for chunk in batched(ids, _CHUNK):
            query = self._scoped(UsageEntryRow).where(UsageEntryRow.id.in_(chunk))
            for row in self._session.execute(query).scalars():
                found[row.id] = usage_entry(row)
        return found

    def unbilled_rated_items(
        self, contract_ids: Sequence[str]
    ) -> dict[str, list[PendingRatedItem]]:
        """Each contract's one-off charges no invoice has billed yet, oldest first."""
        found: dict[str, list[PendingRatedItem]] = {id_: [] for id_ in contract_ids}
        for chunk in batched(contract_ids, _CHUNK):
            query = (
                self._scoped(RatedItemRow)
                .where(RatedItemRow.contract_id.in_(chunk), RatedItemRow.invoice_id.is_(None))
                .order_by(RatedItemRow.created_at, RatedItemRow.id)
            )
            for row in self._session.execute(query).scalars():
                found[row.contract_id].append(
                    PendingRatedItem(row.id, row.description, row.quantity, row.price_per_unit)
                )
        return found

    def period_lines(self, periods: dict[str, int]) -> dict[str, list[InvoiceLine]]:
        """The lines of the earlier (interim) invoices of each contract's period, given
        as contract id -> period index (for shared free quota and tier position). Most
        periods have none: one driver-level query finds the invoices, and only those are
        read with their lines."""
        found: dict[str, list[InvoiceLine]] = {id_: [] for id_ in periods}
        invoice_ids = self._period_invoice_ids(periods)
        for chunk in batched(invoice_ids, _CHUNK):
            query = (
                select(InvoiceLineRow, InvoiceRow.currency, InvoiceRow.contract_id)
                .join(InvoiceRow, InvoiceRow.id == InvoiceLineRow.invoice_id)
                .where(InvoiceRow.seller_id == self.seller_id, InvoiceRow.id.in_(chunk))
                .order_by(InvoiceRow.document_date, InvoiceRow.id, InvoiceLineRow.position)
            )
            for row, code, contract_id in self._session.execute(query):
                line = in_minor_units(line_from_row(row), currency(code).quantum)
                found[contract_id].append(line)
        return found

    def _period_invoice_ids(self, periods: dict[str, int]) -> list[str]:
        if not periods:
            return []
        return self._dialect.period_invoice_ids(self._session.connection(), self.seller_id, periods)

    # -- issuing -------------------------------------------------------------------------

    def reserve_invoice_numbers(self, prefix: str, year: int, count: int) -> list[str]:
        """`count` consecutive numbers `<prefix>-<year>-<000001>` of this seller's gapless
        sequence for `year`, with one update. The sequence row stays locked until the
        transaction ends, so concurrent billing for one seller queues here, and a
        rollback gives the numbers back."""
        if count == 0:
            return []
        self._session.execute(
            self._dialect.insert(InvoiceSequenceRow)
            .values(seller_id=self.seller_id, year=year, last=0)
            .on_conflict_do_nothing(index_elements=["seller_id", "year"])
        )
        last = self._session.execute(
            update(InvoiceSequenceRow)
            .where(InvoiceSequenceRow.seller_id == self.seller_id, InvoiceSequenceRow.year == year)
            .values(last=InvoiceSequenceRow.last + count)
            .returning(InvoiceSequenceRow.last)
        ).scalar_one()
        return [f"{prefix}-{year}-{number:06d}" for number in range(last - count + 1, last + 1)]

    def add_invoices(self, invoices: list[Invoice]) -> None:
        """Insert the invoices and their lines: one `executemany` each (`COPY` for the
        lines on PostgreSQL). A second regular invoice for a contract period breaks the
        unique (contract, period) constraint: `Conflict`, and the caller's transaction
        rolls back."""
        if not invoices:
            return
        dialect = self._dialect
        invoice_rows, line_rows = rows_of_invoices(self.seller_id, invoices, dialect.name)
        try:
            dialect.insert_rows(
                self._session, InvoiceRow.__tablename__, INVOICE_COLUMNS, invoice_rows
            )
        except IntegrityError as error:
            first = invoices[0]
            raise Conflict(
                f"Contract {first.contract_id} already has its invoice for period "
                f"{first.period_index}."
                if len(invoices) == 1
                else "An invoice of this batch was issued meanwhile; billing is retried."
            ) from error
        if line_rows:
            dialect.insert_rows(
                self._session, InvoiceLineRow.__tablename__, LINE_COLUMNS, line_rows
            )

    def mark_rated_items_billed(self, invoice_id: str, item_ids: Sequence[str]) -> None:
        if item_ids:
            self._session.execute(
                update(RatedItemRow)
                .where(RatedItemRow.seller_id == self.seller_id, RatedItemRow.id.in_(item_ids))
                .values(invoice_id=invoice_id)
            )

    def link_usage(self, links: Sequence[tuple[str, Sequence[int]]]) -> None:
        """Link each invoice's usage entries (invoice id, entry ids) to it with one `COPY`
        (PostgreSQL) or `executemany` (SQLite) into `billed_usage`. Raises `Conflict` if
        any entry is billed already (its primary key refuses a second link), so the
        caller's transaction rolls back rather than invoice an entry twice."""
        rows = [(usage_id, invoice_id) for invoice_id, ids in links for usage_id in ids]
        if not rows:
            return
        try:
            self._dialect.insert_rows(
                self._session, "billed_usage", _LINK_COLUMNS, rows, _LINK_TYPES
            )
        except IntegrityError as error:
            raise Conflict("Usage was billed meanwhile; billing is retried.") from error

    # -- reading invoices ----------------------------------------------------------------

    def invoice(self, invoice_id: str) -> Invoice:
        return self._invoices([self._row(InvoiceRow, invoice_id, "invoice")])[0]

    def invoices(self, invoice_filter: InvoiceFilter, page: PageRequest) -> Page[Invoice]:
        query: Select[tuple[InvoiceRow]] = self._scoped(InvoiceRow)
        if invoice_filter.contract_id is not None:
            query = query.where(InvoiceRow.contract_id == invoice_filter.contract_id)
        if invoice_filter.customer_id is not None:
            query = query.where(InvoiceRow.customer_id == invoice_filter.customer_id)
        if invoice_filter.document_from is not None:
            query = query.where(InvoiceRow.document_date >= invoice_filter.document_from)
        if invoice_filter.document_to is not None:
            query = query.where(InvoiceRow.document_date < invoice_filter.document_to)
        rows = self._page(query, InvoiceRow, page, lambda row: row)
        return Page(items=self._invoices(rows.items), total=rows.total)

    def invoice_usage(self, invoice_id: str) -> list[UsageEntry]:
        """The entries the invoice billed, found through its lines' usage ids (by primary
        key: `billed_usage` has no index on the invoice)."""
        self._row(InvoiceRow, invoice_id, "invoice")
        ids = [
            usage_id
            for usage_ids in self._session.execute(
                select(InvoiceLineRow.usage_ids).where(InvoiceLineRow.invoice_id == invoice_id)
            ).scalars()
            for usage_id in usage_ids
        ]
        entries: list[UsageEntry] = []
        for chunk in batched(ids, _CHUNK):
            query = (
                select(UsageEntryRow)
                .join(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
                .where(
                    UsageEntryRow.seller_id == self.seller_id,
                    UsageEntryRow.id.in_(chunk),
                    BilledUsageRow.invoice_id == invoice_id,
                )
            )
            entries.extend(
                usage_entry(row, invoice_id) for row in self._session.execute(query).scalars()
            )
        # By due date, then submission, then submission order (usage ids are random).
        return sorted(entries, key=lambda entry: (entry.due_date, entry.task_id or "", entry.id))

    def _invoices(self, rows: list[InvoiceRow]) -> list[Invoice]:
        lines: dict[str, list[InvoiceLine]] = {row.id: [] for row in rows}
        if rows:
            query = (
                select(InvoiceLineRow)
                .where(InvoiceLineRow.invoice_id.in_(list(lines)))
                .order_by(InvoiceLineRow.invoice_id, InvoiceLineRow.position)
            )
            for line_row in self._session.execute(query).scalars():
                lines[line_row.invoice_id].append(line_from_row(line_row))
        return [invoice_from_row(row, lines[row.id]) for row in rows]


# The links an invoice's entries get; the PostgreSQL types of its columns for a binary COPY.
_LINK_COLUMNS = ("usage_id", "invoice_id")
_LINK_TYPES = ("int8", "varchar")
