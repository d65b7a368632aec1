"""Invoices in storage, and what billing reads and marks: unbilled usage, rated items,
the lines of a period's earlier invoices, gapless invoice numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
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
from arrears.domain.usage import UsageEntry
from arrears.store.tables import (
    ContractRow,
    InvoiceLineRow,
    InvoiceRow,
    InvoiceSequenceRow,
    OrderRow,
    RatedItemRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository
from arrears.store.usage import batched, usage_entry

__all__ = ["BillingQueue", "BillingRepository", "InvoiceFilter", "PendingRatedItem"]

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
        query = select(UsageEntryRow).where(
            UsageEntryRow.seller_id == self.seller_id,
            UsageEntryRow.contract_id == contract_id,
            UsageEntryRow.invoice_id.is_(None),
            UsageEntryRow.due_date <= cutoff,
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
        """Link the entries to the invoice, in one statement per chunk. Raises `Conflict`
        if any of them was billed or deleted meanwhile, so the caller's transaction
        rolls back rather than invoice an entry twice or one that is gone."""
        linked = 0
        for chunk in batched(usage_ids, _LINK_CHUNK):
            result = self._session.execute(
                update(UsageEntryRow)
                .where(
                    UsageEntryRow.seller_id == self.seller_id,
                    UsageEntryRow.id.in_(chunk),
                    UsageEntryRow.invoice_id.is_(None),
                )
                .values(invoice_id=invoice_id)
            )
            linked += result.rowcount  # type: ignore[attr-defined]
        if linked != len(usage_ids):
            raise Conflict("Usage changed while it was being billed; billing is retried.")

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
        self._row(InvoiceRow, invoice_id, "invoice")
        query = (
            select(UsageEntryRow)
            .where(
                UsageEntryRow.seller_id == self.seller_id, UsageEntryRow.invoice_id == invoice_id
            )
            .order_by(UsageEntryRow.id)
        )
        return [usage_entry(row) for row in self._session.execute(query).scalars()]

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
