"""SQLite's ways (`StoreDialect`, see `store/dialect.py`): chunks of usage inserted by a
second thread from JSON arrays (`json_each`) under a larger page cache, exact numbers
summed in parts or in Python, the write lock in place of `SKIP LOCKED`."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from itertools import chain
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, Numeric, cast, func, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from arrears.domain.usage import UsageCandidate
from arrears.store.billed_usage import PICKED, SUMMED, UsageGroup, UsageWindow
from arrears.store.dialect import BilledPeriods, Rows, Types
from arrears.store.invoice_rows import json_text
from arrears.store.tables import ContractRow, TaskBodyRow, UsageEntryRow
from arrears.store.tenancy import batched
from arrears.store.usage_days import rollup_statements
from arrears.store.usage_rows import (
    BULK_ROWS,
    INSERTED,
    PLAIN,
    SHARED,
    USAGE,
    KeyStored,
    Submission,
    usage_statements,
)

__all__ = ["SQLITE", "SqliteDialect"]

# Bound parameters per lookup statement: far below SQLite's limit.
_LOOKUP_CHUNK = 2_000
# Quantities are integers scaled by 10**6: summed as they are they would overflow 64
# bits past 9.2e12 units; summed in three parts (`ExactDecimal.sqlite_sums`), never.
_QUANTITY = UsageEntryRow.__table__.c.quantity.type
_json = msgspec.json.Encoder()

# SQLite's JSON functions cut text at a NUL character, which a key may hold, so the
# pairs go as a VALUES list per chunk, bound through the driver: SQLAlchemy takes
# seconds to compile 100,000 bound values. (`IN (VALUES ...)` would scan the table
# once per chunk instead of probing the (contract_id, key) index.)
_IDS_BY_KEY = (
    "SELECT u.id FROM (VALUES {values}) AS wanted JOIN usage_entries AS u "
    "ON u.contract_id = wanted.column1 AND u.key = wanted.column2 WHERE u.seller_id = ?"
)
# A chunk of entries inserted by one statement that reads them from a JSON array of
# their own columns (`Submission.own_rows`), the shared ones bound once. By whether the
# rows hold the override columns (a row without them reads as NULLs). `WHERE true` tells
# SQLite's parser that `ON CONFLICT` is not a join's `ON`.
_INSERT_FROM_JSON = {
    overrides: f"INSERT INTO {USAGE.name} ({', '.join(columns)}) "  # noqa: S608
    f"SELECT {', '.join('?' for _ in SHARED)}, "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns) - len(SHARED)))
    + " FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"
    for overrides, columns in ((True, INSERTED), (False, INSERTED[:PLAIN]))
}
# SQLite's page cache during a bulk insert (a negative `cache_size` counts KiB).
_BULK_CACHE_KIB = -64 * 1024
# Entries per statement of a bulk insert (`_Writer`): enough that what each statement
# costs besides its rows is small, few enough that the first starts soon. 10,000 was
# fastest of 2,000, 5,000, 10,000 and 20,000 for 100,000 entries.
_CHUNK = 10_000
# The first chunks are smaller, doubling up to `_CHUNK`: the inserting thread starts once
# this many entries are validated instead of 10,000 (about 20 ms sooner for a large
# submission), and then always has the next chunk at hand, as the caller validates an
# entry in about half the time the insert takes.
_FIRST_CHUNK = 2_000
# Chunks handed over and not yet inserted, at most: the inserting thread always has the
# next at hand, and the memory they hold stays bounded.
_QUEUED = 2

# Billing: the transaction holds the database's write lock, so the sum and then the
# link, two statements over the same windows, see the same entries. (The CROSS JOIN
# keeps the windows the outer loop: each probes the usage index.)
_WINDOWS = (
    "WITH windows AS MATERIALIZED (SELECT json_extract(value, '$[0]') AS invoice_id, "
    "json_extract(value, '$[1]') AS contract_id, json_extract(value, '$[2]') AS after, "
    "json_extract(value, '$[3]') AS cutoff, json_extract(value, '$[4]') AS start "
    "FROM json_each(?)), picked AS MATERIALIZED ("
    + PICKED.format(join="CROSS JOIN", before_all="''", seller="?", fence="")
    + ") "
)
# One SUM first, as the three sums `sqlite_total` adds up (0, 0, the sum): SQLite raises
# "integer overflow" rather than wrap, and only then are the three parts summed (they
# cost billing about half its speed when always used).
_SUM = _WINDOWS + SUMMED.format(sums="0, 0, SUM(quantity)", ids="group_concat(id)")
_SUM_IN_PARTS = _WINDOWS + SUMMED.format(
    sums=_QUANTITY.sqlite_sum("quantity"), ids="group_concat(id)"
)
# The link takes the entries the sum found, [[invoice id, "7,8,9"], ...], instead of
# picking them again: the pick (each window's index probe and each entry's billed
# check) was most of the link's cost, which grew with 64-bit ids (issue 15).
_LINK = (
    "INSERT INTO billed_usage (usage_id, invoice_id) "
    "SELECT e.value, json_extract(g.value, '$[0]') FROM json_each(?) AS g "
    "CROSS JOIN json_each('[' || json_extract(g.value, '$[1]') || ']') AS e"
)
# CROSS JOIN fixes the join order: left to choose, SQLite walks all the seller's
# invoices and scans the pairs for each (seconds, once there are 10,000). The unary
# `+` keeps ix_invoices_seller_id out of the probe: on the table migration 0011
# rebuilt, SQLite without statistics chose it over the (contract, period) index, and
# each pair walked every invoice of the seller (21 of 30 s for 10,000 contracts). A
# voided invoice charged nothing.
_PERIOD_INVOICES = (
    "SELECT i.id FROM json_each(?) AS p CROSS JOIN invoices AS i "
    "ON i.contract_id = json_extract(p.value, '$[0]') "
    "AND i.period_index = json_extract(p.value, '$[1]') WHERE +i.seller_id = ? "
    "AND i.payment_status <> 'Voided'"
)
_SAVE_PERIODS = (
    "UPDATE contracts SET billed_periods = ?, last_billing_date = ?, "
    "next_billing_date = ? WHERE id = ? AND seller_id = ?"
)
_instant = partial(ContractRow.__table__.c.next_billing_date.type.to_driver, dialect_name="sqlite")


class SqliteDialect:
    name = "sqlite"
    usage = usage_statements("?", "")
    # Instants are naive UTC text, 'YYYY-MM-DD HH:MM:SS...'; quantities scaled integers.
    rollup = rollup_statements("?", day="substr(due_date, 1, 10)", units="quantity", shard="0")
    # The worker starts while the bulk commit's checkpoint (0.02-0.09 s for 17 MB) follows.
    wakes_worker_at_commit = True

    def skip_locked(self, query: Any, *, of: Any = None) -> Any:
        return query  # the write lock, taken at BEGIN, already excludes other writers

    def insert(self, table: Any) -> Insert:
        return sqlite_insert(table)

    def quantity_sums(self, column: Any) -> list[ColumnElement[Any]]:
        return list(_QUANTITY.sqlite_sums(column))

    def quantity_total(self, sums: Sequence[Any]) -> Decimal:
        return Decimal(_QUANTITY.sqlite_total(*sums))

    def amount_sums(
        self, session: Session, keys: Sequence[Any], amount: Any, where: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        # Amounts are exact decimal text here (`WideDecimal`), which SQL cannot sum: they
        # are read and summed in Python, one row per invoice.
        sums: dict[tuple[Any, ...], Decimal] = {}
        for *key, value in session.execute(select(*keys, amount).where(*where)):
            sums[tuple(key)] = sums.get(tuple(key), Decimal(0)) + value
        return [(*key, total) for key, total in sorted(sums.items())]

    def sortable_amount(self, column: Any) -> Any:
        # Exact decimal text (`WideDecimal`) would sort as text; the number SQLite reads
        # from it orders a page (it is never shown or summed).
        return cast(column, Numeric)

    def instant_text(self, instant: Any, length: int) -> Any:
        # Instants are naive UTC text in exactly this form (store/types.py).
        return func.substr(instant, 1, length)

    def usage_ids_by_key(
        self, connection: Connection, seller_id: str, pairs: list[tuple[str, str]]
    ) -> list[int]:
        ids: list[int] = []
        for chunk in batched(pairs, _LOOKUP_CHUNK):
            statement = _IDS_BY_KEY.format(values=", ".join(["(?, ?)"] * len(chunk)))
            parameters = (*chain.from_iterable(chunk), seller_id)
            ids.extend(id_ for (id_,) in connection.exec_driver_sql(statement, parameters))
        return ids

    def among_ids(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        listed = func.json_each(_json.encode(ids).decode())
        result: ColumnElement[bool] = column.in_(select(listed.table_valued("value").c.value))
        return result

    def insert_usage(self, submission: Submission, candidates: Sequence[UsageCandidate]) -> int:
        with _larger_page_cache(submission.session.connection(), len(candidates)):
            return submission.insert_skipping_stored(candidates)

    @contextmanager
    def usage_writer(self, submission: Submission) -> Iterator[_Writer]:
        with (
            _larger_page_cache(submission.session.connection(), BULK_ROWS),
            _Writer(submission) as writer,
        ):
            yield writer

    def link_and_sum(
        self, session: Session, seller_id: str, windows: Sequence[UsageWindow]
    ) -> list[UsageGroup]:
        # Summed first: once linked, the entries are no longer unbilled.
        given = _windows(windows)
        groups = _sum(session, seller_id, given)
        linked = json_text([(group[0], group[5]) for group in groups])
        session.connection().exec_driver_sql(_LINK, (linked,))
        return groups

    def sum_usage(
        self, session: Session, seller_id: str, windows: Sequence[UsageWindow]
    ) -> list[UsageGroup]:
        return _sum(session, seller_id, _windows(windows))

    def period_invoice_ids(
        self, connection: Connection, seller_id: str, periods: dict[str, int]
    ) -> list[str]:
        parameters = (json_text(list(periods.items())), seller_id)
        return list(connection.exec_driver_sql(_PERIOD_INVOICES, parameters).scalars())

    def insert_rows(
        self, session: Session, table: str, columns: Sequence[str], rows: Rows, types: Types = None
    ) -> None:
        statement = (
            f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 (constants only)
            f"VALUES ({', '.join('?' for _ in columns)})"
        )
        session.connection().exec_driver_sql(statement, rows)

    def save_billed_periods(
        self, connection: Connection, seller_id: str, contracts: BilledPeriods
    ) -> None:
        rows = [
            (billed, _instant(last), _instant(following), id_, seller_id)
            for id_, billed, last, following in contracts
        ]
        connection.exec_driver_sql(_SAVE_PERIODS, rows)

    def task_body(self, session: Session, task_id: str) -> bytes:
        query = select(TaskBodyRow.body).where(TaskBodyRow.task_id == task_id)
        body: bytes | None = session.execute(query).scalar_one_or_none()
        return body or b""


SQLITE = SqliteDialect()


class _Writer:
    """Chunks of entries are inserted by a second thread, each by one statement that
    reads them from a JSON array (`_INSERT_FROM_JSON`), while the caller validates the
    next chunk. The sqlite3 module lets go of the GIL while a statement runs; an
    `executemany` would take it back to bind every row, and the two threads would wait
    for each other at every row. A stored key is skipped, and the shortfall seen.

    A submission smaller than the first chunk is inserted in the caller's thread, at the
    end."""

    def __init__(self, submission: Submission):
        self._submission = submission
        self._connection = submission.session.connection()
        self._held: list[tuple[Any, ...]] = []
        self._held_overrides = False
        # Each chunk handed over: how many rows its insert inserts, and how many it held.
        self._inserting: deque[tuple[Future[int], int]] = deque()
        self._thread: ThreadPoolExecutor | None = None
        self._next_chunk = min(_FIRST_CHUNK, _CHUNK)
        self.written = 0

    def __enter__(self) -> _Writer:
        return self

    def write(self, candidates: Sequence[UsageCandidate]) -> None:
        overrides = any(c.override is not None for c in candidates)
        self._held.extend(self._submission.own_rows(candidates, overrides=overrides))
        self._held_overrides |= overrides
        if len(self._held) >= self._next_chunk:
            self._send()

    def _send(self) -> None:
        rows, overrides = self._held, self._held_overrides
        self._held, self._held_overrides = [], False
        self._next_chunk = min(2 * self._next_chunk, _CHUNK)
        while len(self._inserting) >= _QUEUED:
            self._collect()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="arrears-insert")
        self._inserting.append((self._thread.submit(self._insert, rows, overrides), len(rows)))

    def _insert(self, rows: list[tuple[Any, ...]], overrides: bool) -> int:
        array = _json.encode(rows)
        shared = self._submission.shared
        if b"\\u0000" in array:
            # SQLite's JSON functions cut text at a NUL character; bind such rows instead.
            statement = self._submission.statements.skipping_stored[overrides]
            bound = [shared + row for row in rows]
            return int(self._connection.exec_driver_sql(statement, bound).rowcount)
        statement, parameters = _INSERT_FROM_JSON[overrides], (*shared, array.decode())
        return int(self._connection.exec_driver_sql(statement, parameters).rowcount)

    def _collect(self) -> None:
        future, rows = self._inserting.popleft()
        inserted = future.result()
        self.written += inserted
        if inserted != rows:
            raise KeyStored

    def __exit__(self, *failure: Any) -> None:
        try:
            if failure[0] is None:
                self._finish()
        finally:
            if self._thread is not None:
                # No statement may still run when the caller goes on (to roll back).
                self._thread.shutdown(wait=True, cancel_futures=True)

    def _finish(self) -> None:
        if self._thread is None:  # one chunk at most: no thread to hand it to
            held = len(self._held)
            self.written = self._insert(self._held, self._held_overrides) if held else 0
            if self.written != held:
                raise KeyStored
            return
        if self._held:
            self._send()
        while self._inserting:
            self._collect()


@contextmanager
def _larger_page_cache(connection: Connection, rows: int) -> Iterator[None]:
    """For `BULK_ROWS` rows or more, a 64 MiB page cache for the block, then the
    connection's own size again.

    SQLite's default of 2 MiB cannot hold the index pages that inserting tens of
    thousands of entries touches in random key order, so it evicts and reads them again:
    the insert takes about 1.6 times as long. (The setting belongs to the connection;
    restoring it keeps pooled connections small.)"""
    if rows < BULK_ROWS:
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    connection.exec_driver_sql(f"PRAGMA cache_size = {_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")


def _sum(session: Session, seller_id: str, given: str) -> list[UsageGroup]:
    """The sum over the windows `given` as `_windows` encodes them."""
    connection = session.connection()
    try:
        groups = connection.exec_driver_sql(_SUM, (given, seller_id)).all()
    except OperationalError as error:
        if "integer overflow" not in str(error.orig):
            raise
        groups = connection.exec_driver_sql(_SUM_IN_PARTS, (given, seller_id)).all()
    return [(*group[:4], _QUANTITY.sqlite_total(*group[4:7]), group[7]) for group in groups]


def _windows(windows: Sequence[UsageWindow]) -> str:
    due = partial(USAGE.c.due_date.type.to_driver, dialect_name="sqlite")
    return json_text(
        [
            (
                w.invoice_id,
                w.contract_id,
                None if w.after is None else due(w.after),
                due(w.cutoff),
                due(w.period_start),
            )
            for w in windows
        ]
    )
