"""The usage an invoice bills, found, summed and linked by the database.

Each invoice made in a billing transaction bills a window of its contract's unbilled
entries (`UsageWindow`). One statement per database finds every window's entries,
links them to their invoices in `billed_usage` and returns them summed per invoice,
component, lateness and override: a few rows per contract, not every entry. The
statements run on the driver, as ingestion's do; `InvoiceRepository` is their one
caller."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from arrears.domain.errors import Conflict
from arrears.domain.rating import InvoiceUsage, UsageTotal
from arrears.domain.usage import UsageEntry
from arrears.store.database import driver_connection, driver_errors
from arrears.store.invoice_rows import json_text
from arrears.store.tables import UsageEntryRow

__all__ = [
    "UsageGroup",
    "UsageWindow",
    "invoice_usage",
    "link_and_sum",
    "override_ids",
    "sum_only",
]

_USAGE = UsageEntryRow.__table__
# Summed in parts on SQLite (`ExactDecimal.sqlite_sum`): a plain SUM of scaled
# quantities fails past 9.2e12 units, which a period's sum may reach.
_QUANTITY = _USAGE.c.quantity.type


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
# what rating needs of it.
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
    "SELECT invoice_id, component_id, late, own, {sums}, {ids} FROM picked "
    "GROUP BY invoice_id, component_id, late, own"
)
# PostgreSQL: one statement picks, links and sums, so all three see one snapshot;
# usage posted meanwhile is neither billed nor linked. "OFFSET 0" keeps the billed check
# a probe of billed_usage's primary key per entry: as an anti join, it hashes the whole
# of billed_usage for every batch, which costs more with every entry ever billed.
_PICKED_POSTGRESQL = (
    "WITH windows AS (SELECT * FROM unnest(%s::varchar[], %s::varchar[], "  # noqa: S608
    "%s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) "
    "AS w(invoice_id, contract_id, after, cutoff, start)), "
    "picked AS MATERIALIZED ("
    + _PICKED.format(join="JOIN", before_all="'-infinity'", seller="%s", fence=" OFFSET 0")
    + ")"
)
_SUMMED_POSTGRESQL = _SUMMED.format(sums="SUM(quantity)", ids="string_agg(id::text, ',')")
_LINK_AND_SUM_POSTGRESQL = (
    _PICKED_POSTGRESQL  # noqa: S608 (constants)
    + ", linked AS (INSERT INTO billed_usage (usage_id, invoice_id) "
    "SELECT id, invoice_id FROM picked) " + _SUMMED_POSTGRESQL
)
_SUM_POSTGRESQL = _PICKED_POSTGRESQL + " " + _SUMMED_POSTGRESQL
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
# One SUM first, as the three sums `sqlite_total` adds up (0, 0, the sum): SQLite raises
# "integer overflow" rather than wrap, and only then are the three parts summed (they
# cost billing about half its speed on SQLite when always used).
_SUM_SQLITE = _WINDOWS_SQLITE + _SUMMED.format(sums="0, 0, SUM(quantity)", ids="group_concat(id)")
_SUM_SQLITE_IN_PARTS = _WINDOWS_SQLITE + _SUMMED.format(
    sums=_QUANTITY.sqlite_sum("quantity"), ids="group_concat(id)"
)
_LINK_SQLITE = (
    "INSERT INTO billed_usage (usage_id, invoice_id) "  # noqa: S608 (constants)
    + _WINDOWS_SQLITE
    + "SELECT id, invoice_id FROM picked"
)


def link_and_sum(
    session: Session, seller_id: str, windows: Sequence[UsageWindow]
) -> list[UsageGroup]:
    """Link every entry in each window to the window's invoice and return them summed.
    A concurrent link of the same entry breaks billed_usage's primary key: `Conflict`,
    and the caller's transaction rolls back."""
    try:
        if session.get_bind().dialect.name == "postgresql":
            return _on_postgresql(session, _LINK_AND_SUM_POSTGRESQL, seller_id, windows)
        # Summed first: once linked, the entries are no longer unbilled.
        given = _sqlite_windows(windows)
        groups = _sum_on_sqlite(session, seller_id, given)
        session.connection().exec_driver_sql(_LINK_SQLITE, (given, seller_id))
        return groups
    except IntegrityError as error:
        raise Conflict("Usage was billed meanwhile; billing is retried.") from error


def sum_only(session: Session, seller_id: str, windows: Sequence[UsageWindow]) -> list[UsageGroup]:
    """What `link_and_sum` returns, without linking anything (a preview)."""
    if session.get_bind().dialect.name == "postgresql":
        return _on_postgresql(session, _SUM_POSTGRESQL, seller_id, windows)
    return _sum_on_sqlite(session, seller_id, _sqlite_windows(windows))


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
        usage_ids = sorted(map(int, ids.split(",")))
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
    return [int(id_) for group in groups if group[3] for id_ in group[5].split(",")]


def _on_postgresql(
    session: Session, statement: str, seller_id: str, windows: Sequence[UsageWindow]
) -> list[Any]:
    columns = ([getattr(w, name) for w in windows] for name in UsageWindow.__slots__)
    with driver_connection(session).cursor() as cursor, driver_errors(statement):
        # Planned afresh each time (not prepared): a plan cached while billed_usage
        # was small would scan it for every entry once it is large.
        cursor.execute(statement, (*columns, seller_id), prepare=False)
        return cursor.fetchall()


def _sum_on_sqlite(session: Session, seller_id: str, given: str) -> list[UsageGroup]:
    """The sum over the windows `given` as `_sqlite_windows` encodes them."""
    connection = session.connection()
    try:
        groups = connection.exec_driver_sql(_SUM_SQLITE, (given, seller_id)).all()
    except OperationalError as error:
        if "integer overflow" not in str(error.orig):
            raise
        groups = connection.exec_driver_sql(_SUM_SQLITE_IN_PARTS, (given, seller_id)).all()
    return [(*group[:4], _QUANTITY.sqlite_total(*group[4:7]), group[7]) for group in groups]


def _sqlite_windows(windows: Sequence[UsageWindow]) -> str:
    instant = partial(_USAGE.c.due_date.type.to_driver, dialect_name="sqlite")
    return json_text(
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
