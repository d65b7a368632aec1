"""Which database errors are outages of the storage (answered 503 and retried), and
which are not (docs/faults.md)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from psycopg import errors as pg
from sqlalchemy.exc import IntegrityError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from arrears.store.outages import Outage, outage_of


def _sqlite(message: str, code: int) -> OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]  # set by SQLite itself
    return OperationalError("INSERT ...", {}, error)


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (_sqlite("database or disk is full", 13), Outage.FULL),
        (_sqlite("attempt to write a readonly database", 8), Outage.READ_ONLY),
        (_sqlite("database is locked", 5), Outage.UNAVAILABLE),
        (_sqlite("disk I/O error", 778), Outage.UNAVAILABLE),  # SQLITE_IOERR_WRITE
        (_sqlite("no such table: usage", 1), None),  # a bug, not an outage
        (OperationalError("SELECT 1", {}, pg.AdminShutdown("terminating")), Outage.UNAVAILABLE),
        (OperationalError("SELECT 1", {}, pg.CannotConnectNow("starting up")), Outage.UNAVAILABLE),
        (OperationalError("SELECT 1", {}, psycopg.OperationalError("refused")), Outage.UNAVAILABLE),
        (OperationalError("COPY", {}, pg.DiskFull("no space left")), Outage.FULL),
        (OperationalError("UPDATE", {}, pg.ReadOnlySqlTransaction("read-only")), Outage.READ_ONLY),
        (IntegrityError("INSERT", {}, pg.UniqueViolation("duplicate key")), None),
        (PoolTimeout("QueuePool limit reached"), Outage.UNAVAILABLE),
        (PendingRollbackError("Can't reconnect until ...", code="8s2b"), Outage.UNAVAILABLE),
        (PendingRollbackError("rolled back during flush", code="7s2a"), None),
        (ValueError("not a database error"), None),
    ],
)
def test_database_errors_are_classified_by_what_they_say_about_the_storage(
    error: BaseException, outage: Outage | None
) -> None:
    assert outage_of(error) is outage


def _rollback_failing_after(error: Exception) -> None:
    """Raise `error`, then fail the way a rollback after it fails on SQLite."""
    try:
        raise error
    except OperationalError:
        raise _sqlite("no such savepoint: sa_savepoint_1", 1) from None


def test_an_error_raised_while_cleaning_up_after_an_outage_reports_the_outage() -> None:
    with pytest.raises(OperationalError, match="no such savepoint") as raised:
        _rollback_failing_after(_sqlite("database or disk is full", 13))
    assert outage_of(raised.value) is Outage.FULL
