"""Engines and transactions.

`Database.write()` and `Database.read()` are the only ways code reaches a session; the
caller's `with` block is the unit of work: it commits when the block ends normally and
rolls back on any exception. Services never commit.

The database's dialect (`store/dialect.py`: `store/sqlite.py` or `store/postgresql.py`)
is chosen here, once, from the URL, and travels in every session's `info`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from arrears.store.dialect import StoreDialect, dialect_info, driver_connection
from arrears.store.group_commit import GroupCommit
from arrears.store.outages import Outage, driver_outage
from arrears.store.postgresql import POSTGRESQL, driver_errors
from arrears.store.sqlite import SQLITE

if TYPE_CHECKING:  # the unit of work imports this module
    from arrears.store.unit_of_work import Access, RegistryWork, UnitOfWork

__all__ = ["Database", "driver_connection", "driver_errors"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_AUTOCHECKPOINT_PAGES = 1_000  # SQLite's default
SQLITE_PAGE_BYTES = 16_384
_CHECKPOINT_ON_CHECKIN = "checkpoint_on_checkin"
POSTGRESQL_GROUP_WRITERS = 3

T = TypeVar("T")


class Database:
    """One database, reachable through write and read transactions."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        # The one place that tells the databases apart; repositories ask the dialect.
        self.dialect: StoreDialect = SQLITE if self.is_sqlite else POSTGRESQL
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
        info = dialect_info(self.dialect)
        self._writer = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._reader = sessionmaker(self._read_engine, expire_on_commit=False, info=info)
        # One writer on SQLite, which has one write lock; on PostgreSQL a few, so that
        # their round trips to the server overlap.
        self._group_commit = GroupCommit(
            self.write, writers=1 if self.is_sqlite else POSTGRESQL_GROUP_WRITERS
        )

    @contextmanager
    def write(
        self, *, bulk: bool = False, committed: Callable[[], None] | None = None
    ) -> Iterator[Session]:
        """A read-write transaction, committed when the block ends without error.

        `bulk`: the transaction writes many rows, and its commit should return as soon as
        they are durable. SQLite otherwise copies the log back into the database file
        (checkpoints) inside the commit that takes the log past 1,000 pages: for 100,000
        new entries, 0.04-0.1 s more before the commit returns. A bulk commit leaves that
        to the moment its connection returns to the pool.

        `committed` is called once the commit has returned, before that checkpoint."""
        with self._writer.begin() as session:
            if committed is not None:
                # Before the session hands its connection back (and the checkpoint).
                event.listen(session, "after_commit", lambda _: committed(), once=True)
            yield session
            if bulk and self.is_sqlite:  # read at the commit, which follows
                connection = session.connection()
                connection.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
                connection.info[_CHECKPOINT_ON_CHECKIN] = True

    def write_grouped(self, unit: Callable[[Session], T]) -> Future[T]:
        """Run `unit` in a write transaction shared with the other units submitted
        meanwhile, inside its own savepoint: group commit, one commit for all of them
        (`store/group_commit.py`). The future answers only once the commit has made the
        unit durable; if `unit` raises, only its own writes are rolled back and the
        future raises the same. For small writes of many concurrent requests."""
        return self._group_commit.submit(unit)

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

    @contextmanager
    def unit_of_work(
        self,
        seller_id: str,
        access: Access = "write",
        *,
        bulk: bool = False,
        committed: Callable[[], None] | None = None,
    ) -> Iterator[UnitOfWork]:
        """One seller's unit of work (`store/unit_of_work.py`) in a `write()`, `read()` or
        `rehearsal()` transaction (`bulk` and `committed` as in `write()`)."""
        from arrears.store.unit_of_work import UnitOfWork  # noqa: PLC0415 (it imports this module)

        with self._transaction(access, bulk, committed) as session:
            yield UnitOfWork(session, seller_id)

    @contextmanager
    def registry_work(self, access: Access = "write") -> Iterator[RegistryWork]:
        """A unit of work across sellers (the tenant registry, the queues)."""
        from arrears.store.unit_of_work import RegistryWork  # noqa: PLC0415 (it imports this module)

        with self._transaction(access, False, None) as session:
            yield RegistryWork(session)

    def unit_of_work_grouped(self, seller_id: str, use: Callable[[UnitOfWork], T]) -> Future[T]:
        """`use` run on one seller's unit of work in a grouped write (`write_grouped`)."""
        from arrears.store.unit_of_work import UnitOfWork  # noqa: PLC0415 (it imports this module)

        return self.write_grouped(lambda session: use(UnitOfWork(session, seller_id)))

    def _transaction(
        self, access: Access, bulk: bool, committed: Callable[[], None] | None
    ) -> AbstractContextManager[Session]:
        if access == "write":
            return self.write(bulk=bulk, committed=committed)
        return self.read() if access == "read" else self.rehearsal()

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            with self._read_engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any driver or network failure means "not ready"
            return False
        return True

    def dispose(self) -> None:
        self._group_commit.close()
        self.engine.dispose()
        self._read_engine.dispose()


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False})

    read_only_at = [0.0]  # when a write last failed because the file was read-only

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        record.info["opened_at"] = time.monotonic()
        # Take transaction control from the sqlite3 module so BEGIN is ours; FULL
        # sync because an accepted record must survive power loss, not only a crash.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # 16 KiB pages for a new file (an existing one keeps its own): a bulk insert of
        # 100,000 entries writes a quarter as many log frames, and commits sooner, than
        # with SQLite's 4 KiB; a small write still writes only a few pages.
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # After a bulk commit (Database.write), in the thread that made it and before any
        # other may use the connection: the checkpoint that commit skipped. PASSIVE: it
        # waits for no reader or writer.
        if record.info.pop(_CHECKPOINT_ON_CHECKIN, False):
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # the storage is failing (full, read-only): the next checkpoint retries
            finally:
                cursor.execute(f"PRAGMA wal_autocheckpoint = {SQLITE_AUTOCHECKPOINT_PAGES}")
                cursor.close()

    # A connection SQLite opened while the file was read-only stays read-only after the
    # operator has made the file writable: every connection opened before the latest
    # read-only failure is replaced when it is next checked out, so the service writes
    # again without a restart (docs/faults.md). Not at the failure itself: that would
    # end the transaction under way, whose caller must hear "read-only".
    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        if driver_outage(context.original_exception) is Outage.READ_ONLY:
            read_only_at[0] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("opened_at", 0.0) <= read_only_at[0]:
            raise DisconnectionError("opened while the database was read-only")

    return engine
