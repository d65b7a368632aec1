"""PostgreSQL's ways (`StoreDialect`, see `store/dialect.py`): bulk inserts by binary
`COPY`, lists bound as arrays or one JSON value and joined through `unnest`, contracts
and tasks claimed with `SKIP LOCKED`, exact numbers summed by the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
from psycopg.errors import UniqueViolation
from sqlalchemy import BigInteger, ColumnElement, Connection, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from arrears.domain.usage import UsageCandidate
from arrears.store.billed_usage import PICKED, SUMMED, UsageGroup, UsageWindow
from arrears.store.dialect import BilledPeriods, Rows, Types, driver_connection
from arrears.store.tables import TaskBodyRow
from arrears.store.usage_days import QUANTITY_PLACES, SHARDS, rollup_statements
from arrears.store.usage_rows import (
    BULK_ROWS,
    INSERTED,
    USAGE,
    KeyStored,
    Submission,
    usage_statements,
)

__all__ = ["POSTGRESQL", "PostgresqlDialect", "driver_errors"]

_json = msgspec.json.Encoder()

# One statement however many pairs: they travel as one JSON array (psycopg writes that
# faster than two text arrays); each pair probes the unique (contract_id, key) index.
_IDS_BY_KEY = text(
    "SELECT u.id FROM json_array_elements(CAST(:pairs AS json)) AS wanted(pair) "
    "JOIN usage_entries AS u "
    "ON u.contract_id = wanted.pair ->> 0 AND u.key = wanted.pair ->> 1 "
    "WHERE u.seller_id = :seller_id"
)
_COPY_USAGE = f"COPY {USAGE.name} ({', '.join(INSERTED)}) FROM STDIN BINARY"
# COPY's binary format needs the PostgreSQL type of every column (in `INSERTED` order).
_USAGE_TYPES = (
    "varchar", "timestamptz", "varchar",
    "int8", "varchar", "varchar", "numeric", "timestamptz", "varchar", "varchar",
    "numeric", "varchar", "varchar",
)  # fmt: skip

# Billing: one statement picks, links and sums, so all three see one snapshot; usage
# posted meanwhile is neither billed nor linked. "OFFSET 0" keeps the billed check a
# probe of billed_usage's primary key per entry: as an anti join, it hashes the whole of
# billed_usage for every batch, which costs more with every entry ever billed.
_PICKED = (
    "WITH windows AS (SELECT * FROM unnest(%s::varchar[], %s::varchar[], "  # noqa: S608
    "%s::timestamptz[], %s::timestamptz[], %s::timestamptz[]) "
    "AS w(invoice_id, contract_id, after, cutoff, start)), "
    "picked AS MATERIALIZED ("
    + PICKED.format(join="JOIN", before_all="'-infinity'", seller="%s", fence=" OFFSET 0")
    + ")"
)
_SUMMED = SUMMED.format(sums="SUM(quantity)", ids="string_agg(id::text, ',')")
_LINK_AND_SUM = (
    _PICKED  # noqa: S608 (constants)
    + ", linked AS (INSERT INTO billed_usage (usage_id, invoice_id) "
    "SELECT id, invoice_id FROM picked) " + _SUMMED
)
_SUM = _PICKED + " " + _SUMMED
# The invoices of given (contract, period index) pairs, probing
# ix_invoices_contract_id_period_index once per pair; a voided invoice charged nothing.
_PERIOD_INVOICES = (
    "SELECT i.id FROM unnest(%s::varchar[], %s::int[]) AS p(contract_id, period) "
    "JOIN invoices AS i ON i.contract_id = p.contract_id AND i.period_index = p.period "
    "WHERE i.seller_id = %s AND i.payment_status <> 'Voided'"
)
# One statement per batch: psycopg's executemany runs one statement per row.
_SAVE_PERIODS = (
    "UPDATE contracts AS c SET billed_periods = v.billed, last_billing_date = v.last, "
    "next_billing_date = v.next FROM unnest(%s::varchar[], %s::int[], %s::timestamptz[], "
    "%s::timestamptz[]) AS v(id, billed, last, next) WHERE c.id = v.id AND c.seller_id = %s"
)
_BODY_OF_TASK = f"SELECT body FROM {TaskBodyRow.__tablename__} WHERE task_id = %s"  # noqa: S608


class PostgresqlDialect:
    name = "postgresql"
    usage = usage_statements("%s", " FOR KEY SHARE OF c")
    rollup = rollup_statements(
        "%s",
        day="to_char(due_date AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        units=f"CAST(quantity * {10**QUANTITY_PLACES} AS BIGINT)",
        shard=f"mod(pg_backend_pid(), {SHARDS})",
        insert_one=usage.insert_one,
    )
    # Woken from the commit, the worker finished 0.8-1.2 s later (not understood yet).
    wakes_worker_at_commit = False

    def skip_locked(self, query: Any, *, of: Any = None) -> Any:
        # Concurrent workers take different rows instead of queueing on each other's.
        return query.with_for_update(of=of, skip_locked=True)

    def insert(self, table: Any) -> Insert:
        return pg_insert(table)

    def quantity_sums(self, column: Any) -> list[ColumnElement[Any]]:
        return [func.sum(column)]

    def quantity_total(self, sums: Sequence[Any]) -> Decimal:
        return Decimal(sums[0])

    def amount_sums(
        self, session: Session, keys: Sequence[Any], amount: Any, where: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        query = select(*keys, func.sum(amount)).where(*where).group_by(*keys).order_by(*keys)
        return [(*key, Decimal(total)) for *key, total in session.execute(query)]

    def sortable_amount(self, column: Any) -> Any:
        return column  # NUMERIC orders as numbers

    def instant_text(self, instant: Any, length: int) -> Any:
        pattern = "YYYY-MM" if length == 7 else "YYYY-MM-DD"
        return func.to_char(func.timezone("UTC", instant), pattern)

    def usage_ids_by_key(
        self, connection: Connection, seller_id: str, pairs: list[tuple[str, str]]
    ) -> list[int]:
        parameters = {"pairs": _json.encode(pairs).decode(), "seller_id": seller_id}
        return list(connection.execute(_IDS_BY_KEY, parameters).scalars())

    def among_ids(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        result: ColumnElement[bool] = column == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
        return result

    def insert_usage(self, submission: Submission, candidates: Sequence[UsageCandidate]) -> int:
        if len(candidates) < BULK_ROWS:  # a plain INSERT answers sooner than a COPY
            return submission.insert_skipping_stored(candidates)
        return _copy_usage(submission, submission.rows(candidates, overrides=True))

    @contextmanager
    def usage_writer(self, submission: Submission) -> Iterator[_CopyWriter]:
        with _CopyWriter(submission) as writer:
            yield writer

    def link_and_sum(
        self, session: Session, seller_id: str, windows: Sequence[UsageWindow]
    ) -> list[UsageGroup]:
        return _on_windows(session, _LINK_AND_SUM, seller_id, windows)

    def sum_usage(
        self, session: Session, seller_id: str, windows: Sequence[UsageWindow]
    ) -> list[UsageGroup]:
        return _on_windows(session, _SUM, seller_id, windows)

    def period_invoice_ids(
        self, connection: Connection, seller_id: str, periods: dict[str, int]
    ) -> list[str]:
        parameters = (list(periods), list(periods.values()), seller_id)
        return list(connection.exec_driver_sql(_PERIOD_INVOICES, parameters).scalars())

    def insert_rows(
        self, session: Session, table: str, columns: Sequence[str], rows: Rows, types: Types = None
    ) -> None:
        # A third of the time of an `executemany`, which runs one statement per row.
        binary = " BINARY" if types is not None else ""
        copying = f"COPY {table} ({', '.join(columns)}) FROM STDIN{binary}"
        with (
            driver_connection(session).cursor() as cursor,
            driver_errors(copying),
            cursor.copy(copying) as copy,
        ):
            if types is not None:
                copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def save_billed_periods(
        self, connection: Connection, seller_id: str, contracts: BilledPeriods
    ) -> None:
        ids, billed, last, following = (list(column) for column in zip(*contracts, strict=True))
        connection.exec_driver_sql(_SAVE_PERIODS, (ids, billed, last, following, seller_id))

    def task_body(self, session: Session, task_id: str) -> bytes:
        # Binary results bring the bytea as it is stored; SQLAlchemy's text results bring
        # it hex-encoded, at twice its size, to be decoded again (0.1 s for 17 MB).
        with driver_connection(session).cursor(binary=True) as cursor:
            cursor.execute(_BODY_OF_TASK, (task_id,))
            found = cursor.fetchone()
        return bytes(found[0]) if found else b""


POSTGRESQL = PostgresqlDialect()


class _CopyWriter:
    """All chunks stream through one binary COPY, which PostgreSQL applies in its own
    process while the caller validates what follows. A handful of entries go as one
    INSERT instead, which answers sooner than a COPY."""

    def __init__(self, submission: Submission):
        self._submission = submission
        self._held: list[UsageCandidate] = []  # until there are enough for a COPY
        self._copying = ExitStack()
        self._copy: psycopg.Copy | None = None
        self.written = 0

    def __enter__(self) -> _CopyWriter:
        return self

    def write(self, candidates: Sequence[UsageCandidate]) -> None:
        if self._copy is None:
            self._held.extend(candidates)
            if len(self._held) < BULK_ROWS:
                return
            candidates, self._held = self._held, []
            cursor = self._copying.enter_context(_cursor(self._submission.session))
            self._copying.enter_context(driver_errors(_COPY_USAGE))
            self._copy = self._copying.enter_context(cursor.copy(_COPY_USAGE))
            self._copy.set_types(_USAGE_TYPES)
        for row in self._submission.rows(candidates, overrides=True):
            self._copy.write_row(row)
        self.written += len(candidates)

    def __exit__(self, *failure: Any) -> None:
        # Ending the COPY after an exception makes PostgreSQL abort it; the exception
        # goes on, and the caller rolls back.
        try:
            self._copying.__exit__(*failure)
        except IntegrityError as error:
            if _key_taken(error):
                raise KeyStored from None
            raise
        if failure[0] is None and self._held:
            held, self._held = self._held, []
            self.written += self._submission.insert_all_new(held)


def _copy_usage(submission: Submission, rows: list[tuple[Any, ...]]) -> int:
    """COPY the rows; how many were inserted.

    COPY is several times faster than INSERT, but cannot skip stored keys. Callers have
    looked the keys up already, so it normally succeeds; if a concurrent transaction
    stored one of them meanwhile, the unique index refuses the COPY: roll back to the
    savepoint and insert again, skipping the stored keys."""
    session = submission.session
    try:
        with session.begin_nested(), _cursor(session) as cursor:
            with driver_errors(_COPY_USAGE), cursor.copy(_COPY_USAGE) as copy:
                copy.set_types(_USAGE_TYPES)
                for row in rows:
                    copy.write_row(row)
            return int(cursor.rowcount)
    except IntegrityError as error:
        if not _key_taken(error):
            raise
        return submission.execute_skipping_stored(rows, True)


def _cursor(session: Session) -> psycopg.Cursor[Any]:
    cursor: psycopg.Cursor[Any] = driver_connection(session).cursor()
    return cursor


def _key_taken(error: IntegrityError) -> bool:
    """A unique index refused a row: the (contract, key) index, its key being stored
    already, or (rarely) the primary key, another submission's run of random ids holding
    its id. Either way the submission is tried again, looking keys up first, with new ids."""
    return isinstance(error.orig, UniqueViolation)


def _on_windows(
    session: Session, statement: str, seller_id: str, windows: Sequence[UsageWindow]
) -> list[Any]:
    columns = ([getattr(w, name) for w in windows] for name in UsageWindow.__slots__)
    with driver_connection(session).cursor() as cursor, driver_errors(statement):
        # Planned afresh each time (not prepared): a plan cached while billed_usage
        # was small would scan it for every entry once it is large.
        cursor.execute(statement, (*columns, seller_id), prepare=False)
        groups: list[Any] = cursor.fetchall()
        return groups


@contextmanager
def driver_errors(statement: str) -> Iterator[None]:
    """psycopg's errors from `statement`, run on `driver_connection`, raised as SQLAlchemy
    raises those of the statements it runs: callers tell a deadlock or an outage from a
    bug by the same `DBAPIError`, whichever way the statement went."""
    try:
        yield
    except psycopg.Error as error:
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error
