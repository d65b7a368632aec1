"""Invoices between their domain form and their rows: read from `InvoiceRow` and
`InvoiceLineRow`, written as driver values (the column types' own `to_driver`, as
ingestion does) for one `executemany` or `COPY` per table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Context, Decimal, Inexact, InvalidOperation
from functools import partial
from typing import Any

import msgspec

from arrears.domain.invoices import (
    Invoice,
    InvoiceDraft,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from arrears.domain.limits import DECIMAL_PRECISION
from arrears.domain.money import currency
from arrears.domain.pricing import TierCharge
from arrears.domain.profiles import Party
from arrears.store.seller_profiles import party_from_json, party_to_json
from arrears.store.tables import InvoiceLineRow, InvoiceRow

__all__ = [
    "INVOICE_COLUMNS",
    "LINE_COLUMNS",
    "in_minor_units",
    "invoice_from_row",
    "json_text",
    "line_from_row",
    "rows_of_invoices",
]

_INVOICES = InvoiceRow.__table__
INVOICE_COLUMNS = (
    "id", "seller_id", "created_at", "contract_id", "customer_id", "kind", "invoice_number",
    "currency", "document_date", "period_start", "period_end", "period_index",
    "regular_period", "subtotal", "tax_rate", "tax_amount", "total", "status",
    "due_date", "seller", "customer",
)  # fmt: skip
LINE_COLUMNS = (
    "invoice_id", "position", "kind", "component_id", "description", "quantity",
    "free_quantity", "billable_quantity", "late", "override", "unit_price", "tiers",
    "usage_ids", "amount", "phase_from", "discount_id",
)  # fmt: skip

_json_encoder = msgspec.json.Encoder(decimal_format="number")


def json_text(value: object) -> str:
    """The text `ExactJSON` stores for `value`."""
    return _json_encoder.encode(value).decode()


def rows_of_invoices(
    seller_id: str, invoices: list[Invoice], dialect: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The invoices' rows and their lines' rows, in `INVOICE_COLUMNS` and `LINE_COLUMNS`
    order, as the driver of `dialect` takes them."""
    # Converted once per distinct value: a batch's invoices mostly share their fee,
    # prices, zeros, dates and tax rate, and each conversion costs a quantize and a
    # format (equal values convert to equal driver values).
    money = _once(partial(_INVOICES.c.subtotal.type.to_driver, dialect_name=dialect))
    rate = _once(partial(_INVOICES.c.tax_rate.type.to_driver, dialect_name=dialect))
    instant = _once(partial(_INVOICES.c.document_date.type.to_driver, dialect_name=dialect))
    invoice_rows = []
    line_rows = []
    # A batch's invoices share one seller (and a customer's its copy): encode each once.
    parties: dict[int, str | None] = {}
    party = partial(_party, parties)
    for invoice in invoices:
        draft = invoice.draft
        regular = draft.kind in (InvoiceKind.REGULAR, InvoiceKind.FINAL)
        issued = instant(invoice.document_date)
        invoice_rows.append(
            (
                invoice.id,
                seller_id,
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
                instant(invoice.due_date),
                party(invoice.seller),
                party(invoice.customer),
            )
        )
        line_rows.extend(
            _line_row(invoice.id, position, line, money, instant)
            for position, line in enumerate(draft.lines)
        )
    return invoice_rows, line_rows


def _once(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`convert`, remembering what it gave for each value."""
    seen: dict[Any, Any] = {}

    def converted(value: Any) -> Any:
        found = seen.get(value, _MISSING)
        if found is _MISSING:
            found = seen[value] = convert(value)
        return found

    return converted


_MISSING: Any = object()


def _party(encoded: dict[int, str | None], party: Party | None) -> str | None:
    if party is None:
        return None
    if id(party) not in encoded:
        encoded[id(party)] = json_text(party_to_json(party))
    return encoded[id(party)]


def _line_row(
    invoice_id: str,
    position: int,
    line: InvoiceLine,
    money: Callable[[Any], Any],
    instant: Callable[[Any], Any],
) -> tuple[Any, ...]:
    return (
        invoice_id,
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
        json_text(
            [
                _tier_json(t)
                if t.flat_fee
                else {"Quantity": t.quantity, "UnitPrice": t.unit_price, "Amount": t.amount}
                for t in line.tiers
            ]
        ),
        json_text(line.usage_ids),
        money(line.amount),
        None if line.phase_from is None else instant(line.phase_from),
        line.discount_id,
    )


def _tier_json(tier: TierCharge) -> dict[str, object]:
    # FlatFee only where charged (the caller writes the others inline, the common case),
    # so that tiers stored before it read as they always have.
    return {
        "Quantity": tier.quantity,
        "UnitPrice": tier.unit_price,
        "Amount": tier.amount,
        "FlatFee": tier.flat_fee,
    }


def line_from_row(row: InvoiceLineRow) -> InvoiceLine:
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
                flat_fee=Decimal(t.get("FlatFee", 0)),  # type: ignore[arg-type]
            )
            for t in row.tiers
        ),
        usage_ids=tuple(row.usage_ids),
        phase_from=row.phase_from,
        discount_id=row.discount_id,
    )


def invoice_from_row(row: InvoiceRow, lines: list[InvoiceLine]) -> Invoice:
    money = currency(row.currency)
    # Amounts are stored with 6 places; an invoice speaks in its currency's minor unit.
    # Quantizing is exact: every stored amount was rounded to that unit when issued.
    lines = [in_minor_units(line, money.quantum) for line in lines]
    return Invoice(
        id=row.id,
        invoice_number=row.invoice_number,
        contract_id=row.contract_id,
        customer_id=row.customer_id,
        document_date=row.document_date,
        period_index=row.period_index,
        status=InvoiceStatus(row.status),
        due_date=row.due_date,
        seller=party_from_json(row.seller),
        customer=party_from_json(row.customer),
        draft=InvoiceDraft(
            kind=InvoiceKind(row.kind),
            currency=money,
            period_start=row.period_start,
            period_end=row.period_end,
            lines=tuple(lines),
            subtotal=_in_minor_unit(row.subtotal, money.quantum),
            tax_rate=row.tax_rate,
            tax_amount=_in_minor_unit(row.tax_amount, money.quantum),
            total=_in_minor_unit(row.total, money.quantum),
        ),
    )


def in_minor_units(line: InvoiceLine, quantum: Decimal) -> InvoiceLine:
    return replace(line, amount=_in_minor_unit(line.amount, quantum))


def _in_minor_unit(amount: Decimal, quantum: Decimal) -> Decimal:
    # Wider than the default context, whose 28 digits fail on a large amount; and exact:
    # a stored amount has its currency's places and zeros after them.
    return amount.quantize(quantum, None, _AMOUNTS)


_AMOUNTS = Context(prec=DECIMAL_PRECISION, traps=[Inexact, InvalidOperation])
