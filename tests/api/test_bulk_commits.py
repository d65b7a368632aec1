"""A bulk write's commit returns once its rows are durable (Database.write(bulk=True)):
on SQLite, copying the log back into the database file (the checkpoint) comes after."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from arrears.store.database import Database

PAGES_OF_WRITES = 3_000  # three times SQLite's autocheckpoint threshold of 1,000 pages


@pytest.fixture
def sqlite_database(database: Database) -> Database:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL checkpoints on its own schedule, never inside a commit")
    return database


def _file_sizes(database: Database, *, bulk: bool) -> tuple[int, int, int]:
    """The database file's size before a write of PAGES_OF_WRITES pages, just after its
    commit, and once the write is over. The log's pages reach the file at a checkpoint."""
    path = Path(database.url.database or "")
    before, after_commit = path.stat().st_size, []
    with database.write(bulk=bulk, committed=lambda: after_commit.append(_size(path))) as session:
        connection = session.connection()
        connection.exec_driver_sql("CREATE TABLE filler (data BLOB)")
        page = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
        for _ in range(PAGES_OF_WRITES):  # a row of nearly a page each
            connection.exec_driver_sql("INSERT INTO filler VALUES (zeroblob(?))", (page - 200,))
    return before, after_commit[0], path.stat().st_size


def _size(path: Path) -> int:
    return path.stat().st_size


def test_a_bulk_commit_returns_before_the_checkpoint_which_follows_at_once(
    sqlite_database: Database,
) -> None:
    before, after_commit, after = _file_sizes(sqlite_database, bulk=True)
    assert after_commit == before
    assert after > before + PAGES_OF_WRITES * 4_096


def test_an_ordinary_commit_checkpoints_inside_it_as_sqlite_does(
    sqlite_database: Database,
) -> None:
    before, after_commit, after = _file_sizes(sqlite_database, bulk=False)
    assert after_commit == after > before + PAGES_OF_WRITES * 4_096


def test_what_waits_for_a_commit_hears_of_it_once_committed_and_not_if_rolled_back(
    database: Database,
) -> None:
    heard: list[int] = []

    def rows_seen_by_another_connection() -> None:
        with database.read() as session:
            heard.append(session.execute(text("SELECT count(*) FROM filler")).scalar_one())

    with database.write() as session:
        session.execute(text("CREATE TABLE filler (data INTEGER)"))
    with database.write(bulk=True, committed=rows_seen_by_another_connection) as session:
        session.execute(text("INSERT INTO filler VALUES (1)"))
    try:
        with database.write(committed=heard.clear) as session:
            session.execute(text("INSERT INTO filler VALUES (2)"))
            raise RuntimeError("given up")
    except RuntimeError:
        pass
    assert heard == [1]


@pytest.mark.parametrize("fails", [False, True], ids=["committed", "rolled back"])
def test_after_a_bulk_write_its_connection_checkpoints_inside_commits_again(
    sqlite_database: Database, fails: bool
) -> None:
    try:
        with sqlite_database.write(bulk=True) as session:
            session.execute(text("SELECT 1"))
            if fails:
                raise RuntimeError("given up")
    except RuntimeError:
        assert fails
    with sqlite_database.write() as session:  # the same pooled connection, in one thread
        setting = session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint")
        assert setting.scalar_one() == 1_000
