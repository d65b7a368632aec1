"""A bulk write's commit returns once its rows are durable (store.database.write(bulk=True)):
on SQLite the copy of the log back into the database file comes after it."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from arrears.store.database import Database

PAGES_OF_WRITES = 3_000  # three times SQLite's autocheckpoint threshold of 1,000 pages


def _wal_frames(database: Database) -> tuple[int, int]:
    """(frames in the log, frames copied back), without copying anything more."""
    with sqlite3.connect(database.url.database or "") as connection:
        _busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, copied


def _fill(database: Database, *, bulk: bool) -> int:
    """Write PAGES_OF_WRITES pages; the log's frames just before the commit."""
    with database.write(bulk=bulk) as session:
        connection = session.connection()
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (data BLOB)")
        for _ in range(PAGES_OF_WRITES):
            connection.exec_driver_sql("INSERT INTO filler VALUES (zeroblob(4000))")
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


@pytest.fixture
def sqlite_database(database: Database) -> Database:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL checkpoints on its own schedule, never inside a commit")
    return database


def test_a_bulk_commit_skips_the_checkpoint_and_its_connection_makes_it_after(
    sqlite_database: Database,
) -> None:
    assert _fill(sqlite_database, bulk=True) == 0  # no checkpoint inside this commit
    frames, copied = _wal_frames(sqlite_database)
    assert frames > PAGES_OF_WRITES
    assert copied == frames  # made when the connection went back to the pool
    with sqlite_database.write() as session:
        setting = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint")
        assert setting.scalar_one() == 1_000  # and the connection is as it was


def test_an_ordinary_commit_keeps_sqlite_checkpointing_inside_it(
    sqlite_database: Database,
) -> None:
    assert _fill(sqlite_database, bulk=False) == 1_000
    frames, copied = _wal_frames(sqlite_database)
    assert copied == frames


def test_a_bulk_write_rolled_back_leaves_the_connection_as_it_was(
    sqlite_database: Database,
) -> None:
    def give_up() -> None:
        with sqlite_database.write(bulk=True) as session:
            session.execute(text("SELECT 1"))
            raise RuntimeError("given up")

    with pytest.raises(RuntimeError):
        give_up()
    with sqlite_database.write() as session:
        setting = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint")
        assert setting.scalar_one() == 1_000
