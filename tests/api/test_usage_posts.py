"""A single post's statements run at the DB-API cursor (store/usage_posts.py), yet a
driver error is raised exactly as `exec_driver_sql` raises it, and the connection goes
on working after it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from arrears.store import usage_posts
from arrears.store.database import Database

BAD = "SELECT no_such_column FROM contracts"


def _error_of_exec_driver_sql(database: Database) -> DBAPIError:
    with pytest.raises(DBAPIError) as raised, database.write() as session:
        session.connection().exec_driver_sql(BAD)
    return raised.value


def test_a_driver_error_at_the_cursor_is_the_one_exec_driver_sql_raises(
    database: Database,
) -> None:
    expected = _error_of_exec_driver_sql(database)
    with pytest.raises(DBAPIError) as raised, database.write() as session:
        usage_posts.execute(session.connection(), BAD)
    assert type(raised.value) is type(expected)
    assert type(raised.value.orig) is type(expected.orig)
    assert str(raised.value.orig) == str(expected.orig)
    assert raised.value.statement == expected.statement


def test_the_connection_keeps_working_at_the_cursor_after_a_failed_statement(
    database: Database,
) -> None:
    with database.write() as session:
        connection = session.connection()
        usage_posts.execute(connection, "SAVEPOINT before_the_error")
        with pytest.raises(DBAPIError):
            usage_posts.execute(connection, BAD)
        usage_posts.execute(connection, "ROLLBACK TO SAVEPOINT before_the_error")
        # SQLAlchemy closed the failed statement's cursor: the next one opens another.
        assert usage_posts.fetch_scalar(connection, "SELECT 1", ()) == 1
        assert usage_posts.fetch_all(connection, "SELECT 2 UNION ALL SELECT 3", ()) == [
            (2,),
            (3,),
        ]
