"""The worker: applies bulk consumption tasks and bills what is due, in
`arrears serve` or `arrears worker`."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from arrears.domain.clock import Clock, SystemClock
from arrears.services.billing import run_billing
from arrears.services.tasks import run_next_task
from arrears.store.database import Database

__all__ = ["Worker"]

log = logging.getLogger("arrears.worker")


class Worker:
    """Runs tasks until stopped. `wake()` makes it look at once (e.g. right after a
    submission in the same process); otherwise it polls every `poll_seconds`, which
    is how it sees tasks submitted to other processes."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        lease: timedelta = timedelta(minutes=5),
        poll_seconds: float = 1.0,
        lease_clock: Clock | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        # Leases measure how long a worker may be silent: real time even under a test
        # clock, which may stand still for hours.
        self.lease_clock = lease_clock or SystemClock()
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        self._wake.set()

    def run_until_idle(self) -> int:
        """Apply waiting tasks until none is left, then bill every contract that is due;
        how many tasks were handled."""
        handled = self.run_tasks()
        run_billing(self.database, self.clock)
        return handled

    def run_tasks(self) -> int:
        """Apply waiting tasks until none is left; how many were handled."""
        handled = 0
        while run_next_task(
            self.database, self.clock, self.lease_clock, owner=self.owner, lease=self.lease
        ):
            handled += 1
        return handled

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_until_idle()
            except Exception:  # a database outage must not end the worker: retry
                log.exception("worker iteration failed; retrying")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="arrears-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
