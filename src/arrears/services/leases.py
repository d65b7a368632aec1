"""How a worker holds a task while it applies it: a short lease, renewed by a heartbeat.

A claimed task is leased to its worker for `LeaseTerms.length` (ten seconds by default)
and the lease is renewed every `LeaseTerms.renew_every` (two seconds) for as long as
the worker works on it, so a worker that dies stops renewing and its task can be
claimed again within one lease of its death, not after a long fixed lease.

The heartbeat renews from its own thread, on its own connection, in its own short
transaction, so it never waits for the applying transaction nor makes it wait. While
that transaction is open the heartbeat pauses (`Heartbeat.holding`): the transaction
itself holds the task then, by a lock the database gives up the moment the worker's
connection dies. On PostgreSQL it is the task's row lock, taken by the transaction's
first statement (which checks and renews the lease), and claims skip locked rows; on
SQLite it is the database's write lock, which a heartbeat could not take anyway
before the transaction ends. docs/faults.md tells the whole story.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType

from arrears.domain.clock import Clock, SystemClock
from arrears.store.unit_of_work import Database

__all__ = [
    "DEFAULT_HEARTBEAT",
    "DEFAULT_LEASE",
    "Heartbeat",
    "LeaseTerms",
    "task_heartbeat",
]

log = logging.getLogger("arrears.leases")

DEFAULT_LEASE = timedelta(seconds=10)
"""How long a claim lasts unless renewed: the longest a dead worker holds its task."""
DEFAULT_HEARTBEAT = timedelta(seconds=2)
"""How often a live worker renews: four renewals may fail before its lease lapses."""


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """The length of a lease, how often it is renewed, and the clock leases are read
    from: real time by default, even under a test clock for business time (which may
    stand still while a worker dies); tests pass a clock they move."""

    length: timedelta = DEFAULT_LEASE
    renew_every: timedelta = DEFAULT_HEARTBEAT
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.renew_every < self.length:
            raise ValueError("a lease must be renewed more often than it lasts")


class Heartbeat:
    """Calls `renew` every `every` seconds from a thread of its own until stopped, except
    while the caller is `holding` what it renews. `renew` answers whether the lease is
    still the caller's; once it is not, the heartbeat stops. A failing renewal (the
    database down or locked) is logged and tried again at the next beat."""

    def __init__(self, renew: Callable[[], bool], every: timedelta, name: str) -> None:
        self._renew = renew
        self._every = every.total_seconds()
        self._name = name
        self._stopped = threading.Event()
        # Held while a renewal runs; `holding` takes it so that no renewal is in flight
        # when the caller's transaction begins.
        self._beating = threading.Lock()
        self._held = False
        self.lost = False
        """Whether a renewal found the lease no longer the caller's."""
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {name}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating. A renewal in flight is not waited for beyond one interval: it
        renews nothing once the task is finished or released."""
        self._stopped.set()
        self._thread.join(timeout=self._every)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """No renewal while the block runs: the caller's transaction holds the lease."""
        with self._beating:
            self._held = True
        try:
            yield
        finally:
            self._held = False

    def beat(self) -> None:
        """One renewal, unless the caller holds the lease in a transaction of its own."""
        with self._beating:
            if self._held or self.lost:
                return
            try:
                self.lost = not self._renew()
            except Exception:  # an outage must not end the heartbeat: try at the next beat
                log.warning("%s: renewing the lease failed; retrying", self._name, exc_info=True)
                return
        if self.lost:
            log.warning("%s: the lease was lost to another worker", self._name)

    def _run(self) -> None:
        while not self._stopped.wait(self._every) and not self.lost:
            self.beat()


def task_heartbeat(database: Database, task_id: str, owner: str, terms: LeaseTerms) -> Heartbeat:
    """A heartbeat (not yet started) that renews `owner`'s lease of the task `task_id`,
    each time for `terms.length` from the lease clock's now."""

    def renew() -> bool:
        with database.registry_work() as work:
            return work.task_queue.renew(task_id, owner, terms.clock.now(), terms.length)

    return Heartbeat(renew, terms.renew_every, f"task {task_id}")
