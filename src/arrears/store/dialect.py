"""What differs between SQLite and PostgreSQL, behind one interface, chosen once.

The repositories speak SQL that both databases understand; where the two part ways (a
bulk insert by `COPY` or by a second thread reading a JSON array, `SKIP LOCKED`, sums
of exact amounts that SQLite keeps as text or scaled integers, `unnest` or `json_each`,
page-cache tuning) they ask a `StoreDialect`: `store/sqlite.py` and
`store/postgresql.py`, one module per database.

`Database` picks the one of its URL when it is made and puts it in its sessionmakers'
`info`, so every session it opens carries it (`dialect_of`). Repositories keep their
constructors (a session and a seller) and read it from the session: no repository
branches on a dialect's name, and none needs to be told which database it runs on.
A lookup costs one dictionary read; bulk paths make it once per batch, never per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, Connection, Select
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from sqlalchemy.sql.dml import Insert

    from arrears.domain.usage import UsageCandidate
    from arrears.store.billed_usage import UsageGroup, UsageWindow
    from arrears.store.usage_days import RollupStatements
    from arrears.store.usage_rows import Submission, UsageStatements, UsageWriter

__all__ = ["BilledPeriods", "Rows", "StoreDialect", "Types", "dialect_of", "driver_connection"]

_INFO_KEY = "dialect"
S = TypeVar("S", bound=Select[Any])
# Rows of driver values, in the order of the columns an insert names.
Rows = list[tuple[Any, ...]]
# The PostgreSQL types of those columns, for a binary COPY (None: a text COPY).
Types = Sequence[str] | None
# (contract id, billed periods, last billing date, next billing date) of each contract.
BilledPeriods = Sequence[tuple[str, int, datetime, datetime]]


class StoreDialect(Protocol):
    """One database's ways, for the repositories."""

    # SQLAlchemy's name of the database, which the column types' `to_driver` take.
    name: str
    # Ingestion's driver-level statements, in this driver's placeholder style.
    usage: UsageStatements
    # The daily usage rollup's statements (`store/usage_days.py`).
    rollup: RollupStatements
    # Whether a submission's worker is woken from its transaction's commit rather than once
    # its session is closed (docs/ingestion-performance.md, session 9).
    wakes_worker_at_commit: bool

    # -- locks and upserts ---------------------------------------------------------------

    def skip_locked(self, query: S, *, of: Any = None) -> S:
        """`query` locking its rows for update and skipping those another transaction
        holds (PostgreSQL); as it is where the write lock excludes every other writer."""
        ...

    def insert(self, table: Any) -> Insert:
        """An INSERT of this dialect, which has `on_conflict_do_*`."""
        ...

    # -- sums and sorts of exact numbers -------------------------------------------------

    def quantity_sums(self, column: Any) -> list[ColumnElement[Any]]:
        """The SQL sum of a quantity column, as the columns `quantity_total` adds up."""
        ...

    def quantity_total(self, sums: Sequence[Any]) -> Decimal: ...

    def amount_sums(
        self, session: Session, keys: Sequence[Any], amount: Any, where: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """(*keys, summed amount) of the rows `where` selects, ordered by the keys."""
        ...

    def sortable_amount(self, column: Any) -> Any:
        """A wide amount column as something that orders as its number."""
        ...

    def instant_text(self, instant: Any, length: int) -> Any:
        """The first `length` (7 or 10) characters of an instant's UTC
        `YYYY-MM-DD HH...` text."""
        ...

    # -- ingestion -----------------------------------------------------------------------

    def usage_ids_by_key(
        self, connection: Connection, seller_id: str, pairs: list[tuple[str, str]]
    ) -> list[int]:
        """The ids of the seller's entries with these (contract id, key) pairs."""
        ...

    def among_ids(self, column: Any, ids: list[int]) -> ColumnElement[bool]:
        """`column` is one of `ids`, the ids bound as one value."""
        ...

    def insert_usage(self, submission: Submission, candidates: Sequence[UsageCandidate]) -> int:
        """Insert the candidates, skipping stored keys (and taken ids); how many were."""
        ...

    def usage_writer(self, submission: Submission) -> AbstractContextManager[UsageWriter]: ...

    # -- billing -------------------------------------------------------------------------

    def link_and_sum(
        self, session: Session, seller_id: str, windows: Sequence[UsageWindow]
    ) -> list[UsageGroup]:
        """Link each window's unbilled entries to its invoice; return them summed."""
        ...

    def sum_usage(
        self, session: Session, seller_id: str, windows: Sequence[UsageWindow]
    ) -> list[UsageGroup]:
        """What `link_and_sum` returns, linking nothing."""
        ...

    def period_invoice_ids(
        self, connection: Connection, seller_id: str, periods: dict[str, int]
    ) -> list[str]:
        """The ids of the seller's invoices of these (contract id, period index) pairs."""
        ...

    def insert_rows(
        self, session: Session, table: str, columns: Sequence[str], rows: Rows, types: Types = None
    ) -> None:
        """Insert rows of driver values: `COPY` (binary when `types` are given), or one
        `executemany`."""
        ...

    def save_billed_periods(
        self, connection: Connection, seller_id: str, contracts: BilledPeriods
    ) -> None:
        """Store (contract id, billed periods, last and next billing date) for each."""
        ...

    # -- tasks ---------------------------------------------------------------------------

    def task_body(self, session: Session, task_id: str) -> bytes: ...


def dialect_info(dialect: StoreDialect) -> dict[str, Any]:
    """The `info` of a sessionmaker whose sessions carry `dialect`."""
    return {_INFO_KEY: dialect}


def dialect_of(session: Session) -> StoreDialect:
    """The dialect `Database` gave the session when it opened it."""
    dialect: StoreDialect = session.info[_INFO_KEY]
    return dialect


def driver_connection(session: Session) -> Any:
    """The DB-API connection (sqlite3 or psycopg) that `session`'s transaction runs on,
    for bulk statements (COPY, executemany) that SQLAlchemy's per-row machinery would
    slow down. What runs on it is part of that transaction."""
    return session.connection().connection.driver_connection
