"""Invoices in storage, and what billing reads and marks: unbilled usage, rated items,
the lines of a period's earlier invoices, gapless invoice numbers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from arrears.domain.errors import Conflict
from arrears.domain.ids import new_id
from arrears.domain.invoices import (
    Invoice,
    InvoiceDraft,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from arrears.domain.money import currency
from arrears.domain.paging import Page, PageRequest
from arrears.domain.pricing import TierCharge
from arrears.domain.rating import InvoiceUsage, UsageTotal
from arrears.domain.usage import UsageEntry
from arrears.store.database import driver_connection, driver_errors
from arrears.store.tables import (
    BilledUsageRow,
    ContractRow,
    CustomerRow,
    InvoiceLineRow,
    InvoiceRow,
    InvoiceSequenceRow,
    OrderRow,
    PlanVariantRow,
    RatedItemRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository
from arrears.store.usage import batched, usage_entry

__all__ = [
    "BatchBillingRepository",
    "BillingQueue",
    "BillingRepository",
    "InvoiceFilter",
    "LockedContract",
    "PendingRatedItem",
]

_LINK_CHUNK = 2_000


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


class BillingRepository(TenantRepository):
    # -- what an invoice bills -----------------------------------------------------------

    def unbilled_usage(self, contract_id: str, cutoff: datetime) -> list[UsageEntry]:
        """The contract's unbilled usage due at or before `cutoff`."""
        query = (
            select(UsageEntryRow)
            .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .where(
                UsageEntryRow.seller_id == self.seller_id,
                UsageEntryRow.contract_id == contract_id,
                BilledUsageRow.usage_id.is_(None),
                UsageEntryRow.due_date <= cutoff,
            )
        )
        return [usage_entry(row) for row in self._session.execute(query).scalars()]

    def unbilled_rated_items(self, contract_id: str) -> list[PendingRatedItem]:
        query = (
            self._scoped(RatedItemRow)
            .where(RatedItemRow.contract_id == contract_id, RatedItemRow.invoice_id.is_(None))
            .order_by(RatedItemRow.created_at, RatedItemRow.id)
        )
        return [
            PendingRatedItem(row.id, row.description, row.quantity, row.price_per_unit)
            for row in self._session.execute(query).scalars()
        ]

    def period_lines(self, contract_id: str, period_index: int) -> list[InvoiceLine]:
        """The lines of the contract's invoices of one period (for shared free quota and
        tier position)."""
        query = (
            select(InvoiceLineRow, InvoiceRow.currency)
            .join(InvoiceRow, InvoiceRow.id == InvoiceLineRow.invoice_id)
            .where(
                InvoiceRow.seller_id == self.seller_id,
                InvoiceRow.contract_id == contract_id,
                InvoiceRow.period_index == period_index,
            )
            .order_by(InvoiceRow.document_date, InvoiceRow.id, InvoiceLineRow.position)
        )
        return [
            _in_minor_units(_line(row), currency(code).quantum)
            for row, code in self._session.execute(query)
        ]

    # -- issuing -------------------------------------------------------------------------

    def next_invoice_number(self, prefix: str, year: int) -> str:
        """`<prefix>-<year>-<000001>`, the next of this seller's gapless sequence for the
        year. The sequence row stays locked until the transaction ends, so concurrent
        billing for one seller queues here, and a rollback gives the number back."""
        dialect = self._session.get_bind().dialect.name
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        self._session.execute(
            make(InvoiceSequenceRow)
            .values(seller_id=self.seller_id, year=year, last=0)
            .on_conflict_do_nothing(index_elements=["seller_id", "year"])
        )
        number = self._session.execute(
            update(InvoiceSequenceRow)
            .where(InvoiceSequenceRow.seller_id == self.seller_id, InvoiceSequenceRow.year == year)
            .values(last=InvoiceSequenceRow.last + 1)
            .returning(InvoiceSequenceRow.last)
        ).scalar_one()
        return f"{prefix}-{year}-{number:06d}"

    def add_invoice(self, invoice: Invoice) -> None:
        draft = invoice.draft
        regular = draft.kind in (InvoiceKind.REGULAR, InvoiceKind.FINAL)
        with self._unique(
            f"Contract {invoice.contract_id} already has its invoice for period "
            f"{invoice.period_index}."
        ):
            self._session.add(
                InvoiceRow(
                    id=invoice.id,
                    seller_id=self.seller_id,
                    created_at=invoice.document_date,
                    contract_id=invoice.contract_id,
                    customer_id=invoice.customer_id,
                    kind=draft.kind.value,
                    invoice_number=invoice.invoice_number,
                    currency=draft.currency.code,
                    document_date=invoice.document_date,
                    period_start=draft.period_start,
                    period_end=draft.period_end,
                    period_index=invoice.period_index,
                    regular_period=invoice.period_index if regular else None,
                    subtotal=draft.subtotal,
                    tax_rate=draft.tax_rate,
                    tax_amount=draft.tax_amount,
                    total=draft.total,
                    status=invoice.status.value,
                )
            )
        if draft.lines:
            self._session.execute(
                insert(InvoiceLineRow),
                [
                    _line_row(invoice.id, position, line)
                    for position, line in enumerate(draft.lines)
                ],
            )

    def mark_usage_billed(self, invoice_id: str, usage_ids: Sequence[int]) -> None:
        """Link the entries to the invoice. Raises `Conflict` if any of them is billed
        already, so the caller's transaction rolls back rather than invoice an entry
        twice."""
        BatchBillingRepository(self._session, self.seller_id).link_usage([(invoice_id, usage_ids)])

    def mark_rated_items_billed(self, invoice_id: str, item_ids: Sequence[str]) -> None:
        if item_ids:
            self._session.execute(
                update(RatedItemRow)
                .where(RatedItemRow.seller_id == self.seller_id, RatedItemRow.id.in_(item_ids))
                .values(invoice_id=invoice_id)
            )

    # -- orders --------------------------------------------------------------------------

    def add_order(self, order_id: str, contract_id: str, created_at: datetime) -> None:
        self._session.add(
            OrderRow(
                id=order_id,
                seller_id=self.seller_id,
                contract_id=contract_id,
                created_at=created_at,
            )
        )
        self._session.flush()

    def set_order_invoice(self, order_id: str, invoice_id: str) -> None:
        self._row(OrderRow, order_id, "order").invoice_id = invoice_id
        self._session.flush()

    def add_rated_items(
        self,
        order_id: str,
        contract_id: str,
        items: Sequence[tuple[str, Decimal, Decimal]],
        created_at: datetime,
    ) -> None:
        """Store one-off charges (description, quantity, price per unit), to be billed on
        the contract's next invoice."""
        self._session.add_all(
            RatedItemRow(
                id=new_id(),
                seller_id=self.seller_id,
                created_at=created_at,
                contract_id=contract_id,
                order_id=order_id,
                description=description,
                quantity=quantity,
                price_per_unit=price_per_unit,
            )
            for description, quantity, price_per_unit in items
        )
        self._session.flush()

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
        for chunk in batched(ids, _LINK_CHUNK):
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
                lines[line_row.invoice_id].append(_line(line_row))
        return [_invoice(row, lines[row.id]) for row in rows]


class BillingQueue:
    """The scheduler's view across sellers: which contracts have billing due."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(seller id, contract id) of contracts whose period has ended, or that ended
        and await their final invoice, oldest due first."""
        query = (
            select(ContractRow.seller_id, ContractRow.id)
            .where(
                ContractRow.final_invoice_id.is_(None),
                (ContractRow.next_billing_date <= now)
                | (ContractRow.end_date.is_not(None) & (ContractRow.end_date <= now)),
            )
            .order_by(ContractRow.next_billing_date, ContractRow.id)
            .limit(limit)
        )
        return [(seller, contract) for seller, contract in self._session.execute(query)]

    def count_due(self, now: datetime) -> int:
        query = select(func.count()).where(
            ContractRow.final_invoice_id.is_(None),
            (ContractRow.next_billing_date <= now)
            | (ContractRow.end_date.is_not(None) & (ContractRow.end_date <= now)),
        )
        return int(self._session.execute(query).scalar_one())


def _line_row(invoice_id: str, position: int, line: InvoiceLine) -> dict[str, object]:
    return {
        "invoice_id": invoice_id,
        "position": position,
        "kind": line.kind.value,
        "component_id": line.component_id,
        "description": line.description,
        "quantity": line.quantity,
        "free_quantity": line.free_quantity,
        "billable_quantity": line.billable_quantity,
        "late": line.late,
        "override": line.override,
        "unit_price": line.unit_price,
        "tiers": [
            {"Quantity": t.quantity, "UnitPrice": t.unit_price, "Amount": t.amount}
            for t in line.tiers
        ],
        "usage_ids": list(line.usage_ids),
        "amount": line.amount,
    }


def _line(row: InvoiceLineRow) -> InvoiceLine:
    return InvoiceLine(
        kind=LineKind(row.kind),
        description=row.description,
        quantity=row.quantity,
        free_quantity=row.free_quantity,
        billable_quantity=row.billable_quantity,
        amount=row.amount,
        component_id=row.component_id,
        late=row.late,
        override=row.override,
        unit_price=row.unit_price,
        tiers=tuple(
            TierCharge(
                quantity=Decimal(t["Quantity"]),  # type: ignore[arg-type]
                unit_price=Decimal(t["UnitPrice"]),  # type: ignore[arg-type]
                amount=Decimal(t["Amount"]),  # type: ignore[arg-type]
            )
            for t in row.tiers
        ),
        usage_ids=tuple(row.usage_ids),
    )


def _invoice(row: InvoiceRow, lines: list[InvoiceLine]) -> Invoice:
    money = currency(row.currency)
    # Amounts are stored with 6 places; an invoice speaks in its currency's minor unit.
    # Quantizing is exact: every stored amount was rounded to that unit when issued.
    lines = [_in_minor_units(line, money.quantum) for line in lines]
    return Invoice(
        id=row.id,
        invoice_number=row.invoice_number,
        contract_id=row.contract_id,
        customer_id=row.customer_id,
        document_date=row.document_date,
        period_index=row.period_index,
        status=InvoiceStatus(row.status),
        draft=InvoiceDraft(
            kind=InvoiceKind(row.kind),
            currency=money,
            period_start=row.period_start,
            period_end=row.period_end,
            lines=tuple(lines),
            subtotal=row.subtotal.quantize(money.quantum),
            tax_rate=row.tax_rate,
            tax_amount=row.tax_amount.quantize(money.quantum),
            total=row.total.quantize(money.quantum),
        ),
    )


def _in_minor_units(line: InvoiceLine, quantum: Decimal) -> InvoiceLine:
    return replace(line, amount=line.amount.quantize(quantum))


# -- batch billing ------------------------------------------------------------------------
#
# What `services.billing` needs to bill a batch of one seller's contracts in one
# transaction with a handful of statements: lock and load the batch, read all its
# unbilled usage in one query, reserve all its invoice numbers with one update, insert
# the invoices and lines with one `executemany` (or `COPY`) each, link the usage with
# one `COPY` (PostgreSQL) or `executemany` (SQLite) into `billed_usage`, and move the
# billing dates with one `executemany`. Values bypass SQLAlchemy's
# per-row binding through the column types' own `to_driver`, as ingestion does.

_INVOICES = InvoiceRow.__table__
_LINES = InvoiceLineRow.__table__
_USAGE = UsageEntryRow.__table__
_INVOICE_COLUMNS = (
    "id", "seller_id", "created_at", "contract_id", "customer_id", "kind", "invoice_number",
    "currency", "document_date", "period_start", "period_end", "period_index",
    "regular_period", "subtotal", "tax_rate", "tax_amount", "total", "status",
)  # fmt: skip
_LINE_COLUMNS = (
    "invoice_id", "position", "kind", "component_id", "description", "quantity",
    "free_quantity", "billable_quantity", "late", "override", "unit_price", "tiers",
    "usage_ids", "amount",
)  # fmt: skip
# Billing a batch: the usage each invoice of it bills lies in a window of its contract's
# unbilled entries: due after `after` (the whole past for a contract's first period of
# the batch, whose older entries are late) and at or before `cutoff`. `picked` is every
# entry in a window, with what rating needs of it.
_PICKED = (
    "SELECT u.id, w.invoice_id, u.component_id, u.quantity, u.due_date < w.start AS late, "
    "u.override_price IS NOT NULL AS own FROM windows AS w {join} usage_entries AS u "
    "ON u.contract_id = w.contract_id AND u.due_date <= w.cutoff "
    "AND u.due_date > COALESCE(w.after, {before_all}) "
    "WHERE u.seller_id = {seller} "
    "AND NOT EXISTS (SELECT 1 FROM billed_usage AS b WHERE b.usage_id = u.id{fence})"
)
# (SQLite's CROSS JOIN keeps the windows the outer loop: each probes the usage index.)
# Summed per invoice, component, lateness and override; ids as text ("7,8,9").
_SUMMED = (
    "SELECT invoice_id, component_id, late, own, SUM(quantity), {ids} FROM picked "
    "GROUP BY invoice_id, component_id, late, own"
)
# PostgreSQL: one statement picks, links and sums, so all three see one snapshot;
# usage posted meanwhile is neither billed nor linked. "OFFSET 0" keeps the billed check
# a probe of billed_usage's primary key per entry: as an anti join, it hashes the whole
# of billed_usage for every batch, which costs more with every entry ever billed.
_LINK_AND_SUM_POSTGRESQL = (
    "WITH windows AS (SELECT * FROM unnest(%s::varchar[], %s::varchar[], "  # noqa: S608
    "%s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) "
    "AS w(invoice_id, contract_id, after, cutoff, start)), "
    "picked AS MATERIALIZED ("
    + _PICKED.format(join="JOIN", before_all="'-infinity'", seller="%s", fence=" OFFSET 0")
    + "), linked AS (INSERT INTO billed_usage (usage_id, invoice_id) "
    "SELECT id, invoice_id FROM picked) " + _SUMMED.format(ids="string_agg(id::text, ',')")
)
# SQLite: the transaction holds the database's write lock, so the sum and then the link,
# two statements over the same windows, see the same entries.
_WINDOWS_SQLITE = (
    "WITH windows AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS invoice_id, "
    "json_extract(value, '$[1]') AS contract_id, json_extract(value, '$[2]') AS after, "
    "json_extract(value, '$[3]') AS cutoff, json_extract(value, '$[4]') AS start "
    "FROM json_each(?)), picked AS MATERIALIZED ("
    + _PICKED.format(join="CROSS JOIN", before_all="''", seller="?", fence="")
    + ") "
)
_SUM_SQLITE = _WINDOWS_SQLITE + _SUMMED.format(ids="group_concat(id)")
_LINK_SQLITE_WINDOWS = (
    "INSERT INTO billed_usage (usage_id, invoice_id) "  # noqa: S608 (constants)
    + _WINDOWS_SQLITE
    + "SELECT id, invoice_id FROM picked"
)
_LINK_SQLITE = "INSERT INTO billed_usage (usage_id, invoice_id) VALUES (?, ?)"
_LINK_COPY = "COPY billed_usage (usage_id, invoice_id) FROM STDIN BINARY"
_SAVE_PERIODS_SQLITE = (
    "UPDATE contracts SET billed_periods = ?, last_billing_date = ?, "
    "next_billing_date = ? WHERE id = ? AND seller_id = ?"
)
# One statement per batch: psycopg's executemany runs one statement per row.
_SAVE_PERIODS_POSTGRESQL = (
    "UPDATE contracts AS c SET billed_periods = v.billed, last_billing_date = v.last, "
    "next_billing_date = v.next FROM unnest(%s::varchar[], %s::int[], %s::timestamptz[], "
    "%s::timestamptz[]) AS v(id, billed, last, next) WHERE c.id = v.id AND c.seller_id = %s"
)
# The invoices of given (contract, period index) pairs, probing
# ix_invoices_contract_id_period_index once per pair.
_PERIOD_INVOICES = {
    "postgresql": "SELECT i.id FROM unnest(%s::varchar[], %s::int[]) AS p(contract_id, period) "
    "JOIN invoices AS i ON i.contract_id = p.contract_id AND i.period_index = p.period "
    "WHERE i.seller_id = %s",
    # CROSS JOIN fixes SQLite's join order: left to choose, it walks all the seller's
    # invoices and scans the pairs for each (seconds, once there are 10,000).
    "sqlite": "SELECT i.id FROM json_each(?) AS p CROSS JOIN invoices AS i "
    "ON i.contract_id = json_extract(p.value, '$[0]') "
    "AND i.period_index = json_extract(p.value, '$[1]') WHERE i.seller_id = ?",
}


@dataclass(frozen=True, slots=True)
class LockedContract:
    """A contract of a batch, locked for billing, with the row facts rating needs."""

    id: str
    customer_id: str
    plan_variant_id: str
    start_date: datetime
    end_date: datetime | None
    billed_periods: int
    final_invoice_id: str | None
    period_unit: str
    period_quantity: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """The usage one invoice of a batch bills: its contract's unbilled entries due after
    `after` (None: since ever) and at or before `cutoff`; those due before
    `period_start` are late."""

    invoice_id: str
    contract_id: str
    after: datetime | None
    cutoff: datetime
    period_start: datetime


class BatchBillingRepository(TenantRepository):
    """Set-based reads and writes for billing many of one seller's contracts at once."""

    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    def lock_contracts(self, contract_ids: Sequence[str]) -> dict[str, LockedContract]:
        """The contracts of `contract_ids` this transaction could lock, by id.

        On PostgreSQL rows another transaction holds are skipped (`SKIP LOCKED`), so
        concurrent workers take different contracts instead of queueing; the caller
        bills a skipped contract on its own path. SQLite's write lock, taken when the
        transaction began, already excludes every other writer."""
        query = (
            select(
                ContractRow.id,
                ContractRow.customer_id,
                ContractRow.plan_variant_id,
                ContractRow.start_date,
                ContractRow.end_date,
                ContractRow.billed_periods,
                ContractRow.final_invoice_id,
                PlanVariantRow.period_unit,
                PlanVariantRow.period_quantity,
                ContractRow.created_at,
            )
            .join(PlanVariantRow, PlanVariantRow.id == ContractRow.plan_variant_id)
            .where(ContractRow.seller_id == self.seller_id, ContractRow.id.in_(contract_ids))
        )
        if self._dialect == "postgresql":
            query = query.with_for_update(of=ContractRow, skip_locked=True)
        return {row.id: LockedContract(*row) for row in self._session.execute(query)}

    def customer_tax_rates(self, customer_ids: Iterable[str]) -> dict[str, Decimal | None]:
        wanted = list(set(customer_ids))
        rates: dict[str, Decimal | None] = {}
        for chunk in batched(wanted, _LINK_CHUNK):
            query = select(CustomerRow.id, CustomerRow.tax_rate).where(
                CustomerRow.seller_id == self.seller_id, CustomerRow.id.in_(chunk)
            )
            for id_, rate in self._session.execute(query):
                rates[id_] = rate
        return rates

    def link_unbilled_usage(self, windows: Sequence[UsageWindow]) -> dict[str, InvoiceUsage]:
        """Link every unbilled entry in each window to the window's invoice (which the
        caller inserts in this transaction), and return what each invoice bills, summed
        by the database: a few rows per contract, not every entry.

        The contracts are locked, and deletes of unbilled entries take their lock too,
        so nothing linked here can be gone; a concurrent link of the same entry breaks
        billed_usage's primary key (`Conflict`, the transaction rolls back)."""
        found = {window.invoice_id: InvoiceUsage() for window in windows}
        if not windows:
            return found
        try:
            if self._dialect == "postgresql":
                groups = self._link_and_sum_postgresql(windows)
            else:
                groups = self._link_and_sum_sqlite(windows)
        except IntegrityError as error:
            raise Conflict("Usage was billed meanwhile; billing is retried.") from error
        totals: dict[str, list[UsageTotal]] = {}
        overrides: dict[str, list[int]] = {}
        for invoice_id, component_id, late, own, quantity, ids in groups:
            usage_ids = sorted(map(int, ids.split(",")))
            if own:
                overrides.setdefault(invoice_id, []).extend(usage_ids)
            else:
                total = UsageTotal(component_id, bool(late), quantity, tuple(usage_ids))
                totals.setdefault(invoice_id, []).append(total)
        entries = self._entries_by_id([id_ for ids in overrides.values() for id_ in ids])
        for invoice_id in totals.keys() | overrides.keys():
            found[invoice_id] = InvoiceUsage(
                tuple(totals.get(invoice_id, ())),
                tuple(entries[id_] for id_ in overrides.get(invoice_id, ())),
            )
        return found

    def _link_and_sum_postgresql(self, windows: Sequence[UsageWindow]) -> list[Any]:
        columns = ([getattr(w, name) for w in windows] for name in UsageWindow.__slots__)
        with (
            driver_connection(self._session).cursor() as cursor,
            driver_errors(_LINK_AND_SUM_POSTGRESQL),
        ):
            # Planned afresh each time (not prepared): a plan cached while billed_usage
            # was small would scan it for every entry once it is large.
            cursor.execute(_LINK_AND_SUM_POSTGRESQL, (*columns, self.seller_id), prepare=False)
            return cursor.fetchall()

    def _link_and_sum_sqlite(self, windows: Sequence[UsageWindow]) -> list[Any]:
        instant = partial(_USAGE.c.due_date.type.to_driver, dialect_name="sqlite")
        given = _json_text(
            [
                (
                    w.invoice_id,
                    w.contract_id,
                    None if w.after is None else instant(w.after),
                    instant(w.cutoff),
                    instant(w.period_start),
                )
                for w in windows
            ]
        )
        connection = self._session.connection()
        # Summed first: once linked, the entries are no longer unbilled.
        groups = [
            (*group[:4], _sqlite_decimal(group[4]), group[5])
            for group in connection.exec_driver_sql(_SUM_SQLITE, (given, self.seller_id))
        ]
        connection.exec_driver_sql(_LINK_SQLITE_WINDOWS, (given, self.seller_id))
        return groups

    def _entries_by_id(self, ids: list[int]) -> dict[int, UsageEntry]:
        found: dict[int, UsageEntry] = {}
        for chunk in batched(ids, _LINK_CHUNK):
            query = self._scoped(UsageEntryRow).where(UsageEntryRow.id.in_(chunk))
            for row in self._session.execute(query).scalars():
                found[row.id] = usage_entry(row)
        return found

    def unbilled_rated_items_of(
        self, contract_ids: Sequence[str]
    ) -> dict[str, list[PendingRatedItem]]:
        found: dict[str, list[PendingRatedItem]] = {id_: [] for id_ in contract_ids}
        for chunk in batched(contract_ids, _LINK_CHUNK):
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

    def period_lines_of(self, periods: dict[str, int]) -> dict[str, list[InvoiceLine]]:
        """The lines of the earlier (interim) invoices of each contract's period, given
        as contract id -> period index. Most periods have none: one driver-level query
        finds the invoices, and only those are read with their lines."""
        found: dict[str, list[InvoiceLine]] = {id_: [] for id_ in periods}
        invoice_ids = self._period_invoice_ids(periods)
        for chunk in batched(invoice_ids, _LINK_CHUNK):
            query = (
                select(InvoiceLineRow, InvoiceRow.currency, InvoiceRow.contract_id)
                .join(InvoiceRow, InvoiceRow.id == InvoiceLineRow.invoice_id)
                .where(InvoiceRow.seller_id == self.seller_id, InvoiceRow.id.in_(chunk))
                .order_by(InvoiceRow.document_date, InvoiceRow.id, InvoiceLineRow.position)
            )
            for row, code, contract_id in self._session.execute(query):
                found[contract_id].append(_in_minor_units(_line(row), currency(code).quantum))
        return found

    def _period_invoice_ids(self, periods: dict[str, int]) -> list[str]:
        if not periods:
            return []
        connection = self._session.connection()
        if self._dialect == "postgresql":
            parameters: tuple[object, ...] = (list(periods), list(periods.values()))
        else:
            parameters = (_json_text(list(periods.items())),)
        return list(
            connection.exec_driver_sql(
                _PERIOD_INVOICES[self._dialect], (*parameters, self.seller_id)
            ).scalars()
        )

    def reserve_invoice_numbers(self, prefix: str, year: int, count: int) -> list[str]:
        """`count` consecutive numbers of this seller's gapless sequence for `year`, with
        one update; the sequence row stays locked until the transaction ends (see
        `BillingRepository.next_invoice_number`)."""
        if count == 0:
            return []
        dialect = self._dialect
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        self._session.execute(
            make(InvoiceSequenceRow)
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

    def add_invoices(self, invoices: Sequence[Invoice]) -> None:
        """Insert the invoices and their lines: one `executemany` each (`COPY` for the
        lines on PostgreSQL). A second regular invoice for a contract period breaks the
        unique (contract, period) constraint, and the caller's transaction rolls back."""
        if not invoices:
            return
        dialect = self._dialect
        money = partial(_INVOICES.c.subtotal.type.to_driver, dialect_name=dialect)
        rate = partial(_INVOICES.c.tax_rate.type.to_driver, dialect_name=dialect)
        instant = partial(_INVOICES.c.document_date.type.to_driver, dialect_name=dialect)
        invoice_rows = []
        line_rows = []
        for invoice in invoices:
            draft = invoice.draft
            regular = draft.kind in (InvoiceKind.REGULAR, InvoiceKind.FINAL)
            issued = instant(invoice.document_date)
            invoice_rows.append(
                (
                    invoice.id,
                    self.seller_id,
                    issued,
                    invoice.contract_id,
                    invoice.customer_id,
                    draft.kind.value,
                    invoice.invoice_number,
                    draft.currency.code,
                    issued,
                    instant(draft.period_start),
                    instant(draft.period_end),
                    invoice.period_index,
                    invoice.period_index if regular else None,
                    money(draft.subtotal),
                    rate(draft.tax_rate),
                    money(draft.tax_amount),
                    money(draft.total),
                    invoice.status.value,
                )
            )
            for position, line in enumerate(draft.lines):
                line_rows.append(
                    (
                        invoice.id,
                        position,
                        line.kind.value,
                        line.component_id,
                        line.description,
                        money(line.quantity),
                        money(line.free_quantity),
                        money(line.billable_quantity),
                        line.late,
                        line.override,
                        money(line.unit_price),
                        _json_text(
                            [
                                {
                                    "Quantity": t.quantity,
                                    "UnitPrice": t.unit_price,
                                    "Amount": t.amount,
                                }
                                for t in line.tiers
                            ]
                        ),
                        _json_text(line.usage_ids),
                        money(line.amount),
                    )
                )
        self._insert(_INVOICES.name, _INVOICE_COLUMNS, invoice_rows)
        self._insert(_LINES.name, _LINE_COLUMNS, line_rows)

    def _insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert rows of driver values: `COPY` on PostgreSQL (a third of the time of an
        `executemany`, which runs one statement per row), `executemany` on SQLite."""
        if not rows:
            return
        connection = self._session.connection()
        if self._dialect == "sqlite":
            connection.exec_driver_sql(_sqlite_insert_statement(table, columns), rows)
            return
        copying = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with (
            driver_connection(self._session).cursor() as cursor,
            driver_errors(copying),
            cursor.copy(copying) as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def link_usage(self, links: Sequence[tuple[str, Sequence[int]]]) -> None:
        """Link each invoice's usage entries (invoice id, entry ids) to it with one `COPY`
        (PostgreSQL) or `executemany` (SQLite) into `billed_usage`. Raises `Conflict` if
        any entry is billed already (its primary key refuses a second link), so the
        caller's transaction rolls back rather than invoice an entry twice.

        The entries were read under the contracts' row locks, which deletes of unbilled
        entries take too, so none of them can be gone."""
        rows = [(usage_id, invoice_id) for invoice_id, ids in links for usage_id in ids]
        if not rows:
            return
        try:
            if self._dialect == "postgresql":
                with (
                    driver_connection(self._session).cursor() as cursor,
                    driver_errors(_LINK_COPY),
                    cursor.copy(_LINK_COPY) as copy,
                ):
                    copy.set_types(("int8", "varchar"))
                    for row in rows:
                        copy.write_row(row)
            else:
                self._session.connection().exec_driver_sql(_LINK_SQLITE, rows)
        except IntegrityError as error:
            raise Conflict("Usage was billed meanwhile; billing is retried.") from error

    def save_billed_periods(self, contracts: Sequence[tuple[str, int, datetime, datetime]]) -> None:
        """Store (contract id, billed periods, last and next billing date) for each."""
        if not contracts:
            return
        connection = self._session.connection()
        if self._dialect == "postgresql":
            ids, billed, last, following = (list(column) for column in zip(*contracts, strict=True))
            connection.exec_driver_sql(
                _SAVE_PERIODS_POSTGRESQL, (ids, billed, last, following, self.seller_id)
            )
            return
        instant = partial(_INVOICES.c.document_date.type.to_driver, dialect_name="sqlite")
        connection.exec_driver_sql(
            _SAVE_PERIODS_SQLITE,
            [
                (billed, instant(last), instant(following), id_, self.seller_id)
                for id_, billed, last, following in contracts
            ],
        )


def _sqlite_insert_statement(table: str, columns: Sequence[str]) -> str:
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (constants only)
        f"VALUES ({', '.join('?' for _ in columns)})"
    )


_json_encoder = msgspec.json.Encoder(decimal_format="number")


def _json_text(value: object) -> str:
    """The text `ExactJSON` stores for `value`."""
    return _json_encoder.encode(value).decode()


_USAGE_SCALE = -_USAGE.c.quantity.type.scale  # quantities and override prices alike


def _sqlite_decimal(value: int) -> Decimal:
    # What `ExactDecimal.process_result_value` returns on SQLite, without its dispatch.
    return Decimal(value).scaleb(_USAGE_SCALE)
