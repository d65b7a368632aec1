"""Engines and transactions.

`Database.write()` and `Database.read()` are the only ways code reaches a session; the
caller's `with` block is the unit of work: it commits when the block ends normally and
rolls back on any exception. Services never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Database"]

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """One database, reachable through write and read transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            # Two engines: writers take the write lock at BEGIN (so concurrent writers
            # queue on the busy timeout instead of failing to upgrade a read lock),
            # readers never take it.
            self.engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
            self._read_engine = _sqlite_engine(url, begin="BEGIN")
        else:
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                # Instants come back in UTC already, so converting each one read is a
                # no-op (billing reads a million of them). No JIT: compiling costs tens
                # of milliseconds, more than it saves on this service's short queries.
                connect_args={"options": "-c timezone=UTC -c jit=off"},
            )
            self._read_engine = self.engine
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(self._read_engine, expire_on_commit=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A read-write transaction, committed when the block ends without error."""
        with self._writer.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction (rolled back at the end: nothing to commit)."""
        with self._reader() as session, session.begin():
            yield session
            session.rollback()

    @contextmanager
    def rehearsal(self) -> Iterator[Session]:
        """A write transaction that is always rolled back: it shows what a write would
        do (previews) without saving anything."""
        with self._writer() as session, session.begin():
            yield session
            session.rollback()

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self._read_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any driver or network failure means "not ready"
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
        self._read_engine.dispose()


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so BEGIN is ours; FULL
        # sync because an accepted record must survive power loss, not only a crash.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine
