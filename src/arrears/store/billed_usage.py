"""The usage an invoice bills, found, summed and linked by the database.

Each invoice made in a billing transaction bills a window of its contract's unbilled
entries (`UsageWindow`). One statement per database finds every window's entries,
links them to their invoices in `billed_usage` and returns them summed per invoice,
component, lateness and override: a few rows per contract, not every entry. The
statements run on the driver, as ingestion's do, and live in each database's module
(`store/sqlite.py`, `store/postgresql.py`), built from the two shapes here;
`InvoiceRepository` is their one caller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from arrears.domain.errors import Conflict
from arrears.domain.rating import InvoiceUsage, UsageTotal
from arrears.domain.usage import UsageEntry
from arrears.store.dialect import dialect_of

__all__ = [
    "PICKED",
    "SUMMED",
    "UsageGroup",
    "UsageWindow",
    "invoice_usage",
    "link_and_sum",
    "override_ids",
    "sum_only",
]


@dataclass(frozen=True, slots=True)
class UsageWindow:
    """The usage one invoice bills: its contract's unbilled entries due after `after`
    (None: since ever) and at or before `cutoff`; those due before `period_start` are
    late."""

    invoice_id: str
    contract_id: str
    after: datetime | None
    cutoff: datetime
    period_start: datetime


UsageGroup = tuple[str, str, Any, Any, Decimal, str]
"""(invoice id, component id, late, override-priced, summed quantity, "7,8,9")."""


# The usage each invoice bills lies in a window of its contract's unbilled entries: due
# after `after` (the whole past for a contract's first period of a batch, whose older
# entries are late) and at or before `cutoff`. `picked` is every entry in a window, with
# what rating needs of it. Each database's module fills in its own joins, bounds and
# placeholders (`store/sqlite.py`, `store/postgresql.py`).
PICKED = (
    "SELECT u.id, w.invoice_id, u.component_id, u.quantity, u.due_date < w.start AS late, "
    "u.override_price IS NOT NULL AS own FROM windows AS w {join} usage_entries AS u "
    "ON u.contract_id = w.contract_id AND u.due_date <= w.cutoff "
    "AND u.due_date > COALESCE(w.after, {before_all}) "
    "WHERE u.seller_id = {seller} "
    "AND NOT EXISTS (SELECT 1 FROM billed_usage AS b WHERE b.usage_id = u.id{fence})"
)
# Summed per invoice, component, lateness and override; ids as text ("7,8,9").
SUMMED = (
    "SELECT invoice_id, component_id, late, own, {sums}, {ids} FROM picked "
    "GROUP BY invoice_id, component_id, late, own"
)


def link_and_sum(
    session: Session, seller_id: str, windows: Sequence[UsageWindow]
) -> list[UsageGroup]:
    """Link every entry in each window to the window's invoice and return them summed.
    A concurrent link of the same entry breaks billed_usage's primary key: `Conflict`,
    and the caller's transaction rolls back."""
    try:
        return dialect_of(session).link_and_sum(session, seller_id, windows)
    except IntegrityError as error:
        raise Conflict("Usage was billed meanwhile; billing is retried.") from error


def sum_only(session: Session, seller_id: str, windows: Sequence[UsageWindow]) -> list[UsageGroup]:
    """What `link_and_sum` returns, without linking anything (a preview)."""
    return dialect_of(session).sum_usage(session, seller_id, windows)


def invoice_usage(
    windows: Sequence[UsageWindow],
    groups: list[UsageGroup],
    entries: dict[int, UsageEntry],
) -> dict[str, InvoiceUsage]:
    """What each window's invoice bills, from its summed `groups` and the override-priced
    `entries` they name (see `override_ids`)."""
    found = {window.invoice_id: InvoiceUsage() for window in windows}
    totals: dict[str, list[UsageTotal]] = {}
    overrides: dict[str, list[int]] = {}
    for invoice_id, component_id, late, own, quantity, ids in groups:
        usage_ids = _ids(ids)
        if own:
            overrides.setdefault(invoice_id, []).extend(usage_ids)
        else:
            total = UsageTotal(component_id, bool(late), quantity, tuple(usage_ids))
            totals.setdefault(invoice_id, []).append(total)
    for invoice_id in totals.keys() | overrides.keys():
        found[invoice_id] = InvoiceUsage(
            tuple(totals.get(invoice_id, ())),
            tuple(entries[id_] for id_ in overrides.get(invoice_id, ())),
        )
    return found


def override_ids(groups: list[UsageGroup]) -> list[int]:
    """The entries with an override price among `groups`: rated one by one, read whole."""
    return [id_ for group in groups if group[3] for id_ in _ids(group[5])]


def _ids(listed: str) -> list[int]:
    """The ids of a group's "7,8,9", ascending. Read as the body of a JSON array: the
    decoder makes the integers in C, three times as fast as `int` on each part of a
    split, which counted with a million 19-digit ids a run (issue 15)."""
    ids: list[int] = _decode_json(f"[{listed}]")
    ids.sort()
    return ids


_decode_json = msgspec.json.Decoder(list[int]).decode
