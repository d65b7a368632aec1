"""Group commit: concurrent small writes share one transaction, so one commit (one
fsync) makes all of them durable.

A durable commit costs a disk flush; on SQLite it also holds the one write lock, so
requests that each commit on their own queue for the lock and for the flush, one by
one. Here a writer thread takes every write unit that is waiting, runs each in its own
SAVEPOINT inside one transaction, commits once, and only then answers each unit's
future. While it commits, new units queue up and form the next batch: under load
batches grow by themselves, and a lone request waits for nobody.

SQLite has one writer thread (it has one write lock anyway). PostgreSQL can have a few,
each with its own transaction, so that one batch's round trips to the server overlap
with another's.

What a caller may rely on:

- A unit sees the effects of the units before it in its batch, as if they had run one
  after another; it never sees a half-finished unit.
- A unit that raises has its savepoint rolled back: none of its writes are committed,
  its future gets its exception, and the other units of the batch are unaffected.
- A future resolves only after the commit that made its unit durable. If that commit
  (or the transaction's BEGIN) fails, every unit of the batch gets the exception and
  nothing of the batch is committed.
- A unit that runs into a deadlock or serialization failure (PostgreSQL, when another
  transaction locks the same keys in the opposite order) is rolled back to its
  savepoint and runs again in a later batch, after this batch's locks are gone.

What a unit must do: write with SQL statements (Core or driver-level, through
`session.connection()`), or flush the ORM objects it adds; see `_savepoint`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from arrears.store import usage_posts

__all__ = ["GroupCommit"]

T = TypeVar("T")

log = logging.getLogger("arrears.store.group_commit")

# Enough to share one commit among many requests; few enough that a batch holds the
# write lock only for milliseconds, and that on PostgreSQL its savepoints' transaction
# ids fit the 64 a backend caches (beyond them, every other session's visibility checks
# get slower while the transaction is open).
MAX_BATCH = 64
# SQLSTATEs of a transaction that lost a lock race; running again later succeeds.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock, serialization failure
MAX_ATTEMPTS = 3
_SAVEPOINT = "arrears_unit"
_SAVEPOINT_STATEMENT = f"SAVEPOINT {_SAVEPOINT}"
_ROLLBACK_STATEMENT = f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}"


@dataclass(slots=True)
class _Unit(Generic[T]):
    work: Callable[[Session], T]
    future: Future[T] = field(default_factory=Future)
    attempts: int = 0


class GroupCommit:
    """Writer threads that run submitted units in shared transactions.

    `begin` opens a write transaction that commits when its block ends without error
    (`Database.write`). The threads start with the first unit."""

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Session]],
        *,
        writers: int = 1,
        name: str = "arrears-group-commit",
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._begin = begin
        self._writers = writers
        self._name = name
        self._max_batch = max_batch
        self._waiting: deque[_Unit[Any]] = deque()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        """Queue `work` for the next batch; its future answers after that batch's commit.

        `work` runs in a writer thread and should return plain data, not objects of the
        session (which is closed after the commit). Cancelling the future before the
        batch starts leaves the unit out."""
        unit: _Unit[T] = _Unit(work)
        with self._ready:
            self._waiting.append(unit)
            if not self._threads:
                self._stopping = False
                self._threads = [
                    threading.Thread(target=self._run, name=f"{self._name}-{n}", daemon=True)
                    for n in range(self._writers)
                ]
                for thread in self._threads:
                    thread.start()
            self._ready.notify()
        return unit.future

    def close(self, timeout: float = 30.0) -> None:
        """End the writer threads once they have run what was submitted. (A unit
        submitted later starts new ones.)"""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
            threads = self._threads
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._waiting and not self._stopping:
                    self._ready.wait()
                if not self._waiting:
                    if threading.current_thread() in self._threads:
                        self._threads.remove(threading.current_thread())
                    return
                count = min(len(self._waiting), self._max_batch)
                batch = [self._waiting.popleft() for _ in range(count)]
            # A unit whose request went away before its first batch started is left out.
            batch = [u for u in batch if u.attempts or u.future.set_running_or_notify_cancel()]
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        outcomes: list[tuple[_Unit[Any], Any, BaseException | None]] = []
        again: list[_Unit[Any]] = []
        try:
            with self._begin() as session:
                connection = session.connection()
                for unit in batch:
                    try:
                        with _savepoint(session, connection):
                            result = unit.work(session)
                    except Exception as error:  # the unit's own failure: only it is undone
                        if _retryable(error) and unit.attempts + 1 < MAX_ATTEMPTS:
                            unit.attempts += 1
                            again.append(unit)
                        else:
                            outcomes.append((unit, None, error))
                    else:
                        outcomes.append((unit, result, None))
        except BaseException as error:
            # BEGIN or COMMIT failed: nothing of the batch is durable, so no unit may be
            # answered as if it were, not even one that failed on its own.
            for unit in batch:
                unit.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for unit, result, failure in outcomes:
            if failure is None:
                unit.future.set_result(result)
            else:
                unit.future.set_exception(failure)
        if again:
            log.info("%d write units lost a lock race; running them again", len(again))
            with self._ready:
                self._waiting.extendleft(reversed(again))
                self._ready.notify()


@contextmanager
def _savepoint(session: Session, connection: Connection) -> Iterator[None]:
    """The block in a SAVEPOINT, rolled back to if the block raises.

    Plain SQL rather than `session.begin_nested()`, whose bookkeeping costs several
    times what the database takes for a small write. The price: the session's ORM state
    is not savepointed. So what a unit added is flushed inside its savepoint, and after
    a failed unit the session forgets every object (the units before it are flushed, so
    nothing of theirs is lost). An ORM flush that fails makes SQLAlchemy roll back the
    whole transaction: every later statement and the commit then fail, and every unit
    of the batch gets an error, never a false success.

    The savepoint is not released: the next unit's savepoint of the same name nests in
    it, and the commit ends them all. That saves a statement (on PostgreSQL a round
    trip) per unit; releasing would not free PostgreSQL's subtransaction ids anyway."""
    usage_posts.execute(connection, _SAVEPOINT_STATEMENT)
    try:
        yield
        session.flush()
    except BaseException:
        if session.is_active:
            usage_posts.execute(connection, _ROLLBACK_STATEMENT)
        session.expunge_all()
        raise


def _retryable(error: Exception) -> bool:
    if not isinstance(error, DBAPIError):
        return False
    return getattr(error.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES
