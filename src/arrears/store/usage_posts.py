"""Single usage posts at the DB-API cursor: the hot path's statements without SQLAlchemy's
per-statement machinery.

A single post runs three small statements in the group commit's writer thread (its
savepoint, the contract's terms, the insert). Through `Connection.exec_driver_sql`
SQLAlchemy builds an execution context and a result object for each, with its column
metadata: half the writer's CPU per post, more than the database took to run them
(docs/load.md). Here the statements run on one DB-API cursor per connection, kept in
the connection's `info` (which lives exactly as long as the driver's connection), with
the statement text unchanged each time, so psycopg prepares it on the server after a
few uses and sqlite3 finds it in its statement cache.

Nothing else changes: the statements are the same text with the same parameters, in
the same transaction of the same connection. A driver error is handed to SQLAlchemy's
own error handling for that connection, as `exec_driver_sql` would have: it becomes
the same `DBAPIError` subclass (so outages, lock races and constraint errors are told
apart as before), the engine's `handle_error` listeners see it (`store/database.py`
notices a read-only SQLite file there) and a lost connection is invalidated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy import Connection

__all__ = ["execute", "fetch_all", "fetch_scalar"]

# The connection's `info` entry holding its cursor.
_CURSOR = "arrears_post_cursor"


def execute(connection: Connection, statement: str, parameters: Sequence[Any] = ()) -> Any:
    """Run `statement` with positional `parameters` (the driver's own placeholder style)
    on the connection's kept cursor; returns the cursor, its rows not yet fetched."""
    info = connection.info
    cursor = info.get(_CURSOR)
    if cursor is None:
        cursor = info[_CURSOR] = connection.connection.cursor()
    try:
        cursor.execute(statement, parameters)
    except Exception as error:
        _failed(connection, error, statement, parameters, cursor)
    return cursor


def fetch_all(connection: Connection, statement: str, parameters: Sequence[Any]) -> list[Any]:
    """Every row `statement` returns, as the driver's tuples. (All of them: sqlite3 ends
    an `INSERT … RETURNING` only once its rows are read.)"""
    cursor = execute(connection, statement, parameters)
    try:
        return list(cursor.fetchall())
    except Exception as error:
        _failed(connection, error, statement, parameters, cursor)


def fetch_scalar(connection: Connection, statement: str, parameters: Sequence[Any]) -> Any:
    """The first column of the one row `statement` returns, or None without a row."""
    rows = fetch_all(connection, statement, parameters)
    return rows[0][0] if rows else None


def _failed(
    connection: Connection,
    error: Exception,
    statement: str,
    parameters: Sequence[Any],
    cursor: Any,
) -> NoReturn:
    """Raise what `exec_driver_sql` raises for `error`."""
    if not isinstance(error, connection.dialect.loaded_dbapi.Error):
        raise error  # not the driver's: `exec_driver_sql` lets it through as it is
    # SQLAlchemy closes the cursor of a failed statement: the next one opens another.
    connection.info.pop(_CURSOR, None)
    # SQLAlchemy's private entry point, the one its own executions end in: the same
    # wrapping, `handle_error` events and invalidation as `exec_driver_sql`.
    connection._handle_dbapi_exception(error, statement, parameters, cursor, None)
