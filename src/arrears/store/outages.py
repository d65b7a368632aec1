"""What a database error says about the database itself, rather than about a request.

Some errors mean the storage cannot take work right now: the server is restarting or
unreachable, the file or the server is read-only, the disk is full. They are no fault
of the request and end without anything changing in Arrears: the same request succeeds
once the condition is over. The API answers them `503` with `Retry-After`
(`api/problems.py`), the worker retries them, and `Database` reopens a connection that
SQLite opened read-only (docs/faults.md).
"""

from __future__ import annotations

import sqlite3
import sys
from enum import Enum

from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["Outage", "driver_outage", "outage_of"]


class Outage(Enum):
    """A condition of the storage that keeps it from taking work."""

    UNAVAILABLE = "unavailable"
    """Unreachable, restarting, locked or failing: retry shortly."""
    READ_ONLY = "read-only"
    """Reads work; every write fails until an operator makes the storage writable."""
    FULL = "full"
    """Every write that needs more space fails until an operator frees some."""


# SQLAlchemy's "Can't reconnect until invalid transaction is rolled back"
# (https://sqlalche.me/e/21/8s2b).
_LOST_IN_TRANSACTION = "8s2b"

# SQLite's primary result codes (https://www.sqlite.org/rescode.html).
_SQLITE = {
    5: Outage.UNAVAILABLE,  # SQLITE_BUSY: another writer held the lock past the timeout
    6: Outage.UNAVAILABLE,  # SQLITE_LOCKED
    8: Outage.READ_ONLY,  # SQLITE_READONLY
    10: Outage.UNAVAILABLE,  # SQLITE_IOERR: the operating system failed a read or write
    13: Outage.FULL,  # SQLITE_FULL: the disk (or max_page_count) is full
    14: Outage.UNAVAILABLE,  # SQLITE_CANTOPEN
}

# PostgreSQL's SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html);
# a class (two characters) or a single code.
_POSTGRESQL = {
    "08": Outage.UNAVAILABLE,  # connection exception
    "57P01": Outage.UNAVAILABLE,  # admin_shutdown: the server is stopping or restarting
    "57P02": Outage.UNAVAILABLE,  # crash_shutdown
    "57P03": Outage.UNAVAILABLE,  # cannot_connect_now: the server is starting up
    "53100": Outage.FULL,  # disk_full
    "53200": Outage.UNAVAILABLE,  # out_of_memory
    "53300": Outage.UNAVAILABLE,  # too_many_connections
    "58030": Outage.UNAVAILABLE,  # io_error
    "25006": Outage.READ_ONLY,  # read_only_sql_transaction: a standby, or read-only set
}


def outage_of(error: BaseException) -> Outage | None:
    """The storage condition `error` reports, or None when it is about something else
    (a constraint, a bug): those are not retried. An error raised while cleaning up
    after an outage (a rollback on a lost connection) reports that outage."""
    cause: BaseException | None = error
    while cause is not None:
        outage = _outage(cause)
        if outage is not None:
            return outage
        cause = cause.__context__
    return None


def _outage(error: BaseException) -> Outage | None:
    if isinstance(error, PoolTimeout):
        return Outage.UNAVAILABLE  # every pooled connection is busy past the pool's timeout
    if isinstance(error, PendingRollbackError) and error.code == _LOST_IN_TRANSACTION:
        # The connection was lost inside the transaction; what uses the transaction after
        # that (the next statement, the commit) hears this instead of the cause.
        return Outage.UNAVAILABLE
    if not isinstance(error, DBAPIError):
        return None
    outage = driver_outage(error.orig)
    if outage is None and error.connection_invalidated:
        return Outage.UNAVAILABLE  # SQLAlchemy found the connection dead
    return outage


def driver_outage(error: BaseException) -> Outage | None:
    """`outage_of` for an error of the driver itself (sqlite3, psycopg)."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        return None if code is None else _SQLITE.get(code & 0xFF)
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate:
        return _POSTGRESQL.get(sqlstate, _POSTGRESQL.get(sqlstate[:2]))
    # Not imported here: a process on SQLite need not load the PostgreSQL driver, and
    # where it is not loaded, no error is one of its errors.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        # psycopg reports a refused or broken connection without a SQLSTATE.
        return Outage.UNAVAILABLE
    return None
