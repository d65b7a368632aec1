"""The worker: applies bulk consumption tasks, bills what is due and delivers webhooks,
in `arrears serve` or `arrears worker`."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

from arrears import metrics
from arrears.config import Settings, webhook_secrets_for
from arrears.domain.clock import Clock
from arrears.services.billing import BillingRun, run_billing
from arrears.services.leases import LeaseTerms
from arrears.services.tasks import run_next_task
from arrears.services.webhook_delivery import (
    DeliveryTerms,
    HttpSender,
    Sender,
    deliver_due,
    measure_pending,
)
from arrears.services.webhook_secrets import SecretBox
from arrears.services.webhooks import DELIVERIES_WAITING
from arrears.store.database import Database

__all__ = ["WebhookSending", "Worker", "webhook_sending_for"]


@dataclass(frozen=True)
class WebhookSending:
    """How a worker delivers webhooks: the key to their secrets, what sends them, and
    how many claims it works on at once (`threads`, each claiming `terms.batch`
    deliveries and sending them side by side). A slow receiver holds up only the claim
    it is in."""

    box: SecretBox
    sender: Sender = field(default_factory=HttpSender)
    terms: DeliveryTerms = field(default_factory=DeliveryTerms)
    threads: int = 4

    @cached_property
    def pool(self) -> ThreadPoolExecutor:
        """The threads that send: one per attempt that can be under way at once (made
        when the first attempt is sent)."""
        return ThreadPoolExecutor(self.threads * self.terms.batch, "arrears-webhook-send")

    def close(self) -> None:
        """Let the sending threads end (once the worker's loops have stopped)."""
        if "pool" in self.__dict__:
            self.pool.shutdown(wait=False)


log = logging.getLogger("arrears.worker")


class Worker:
    """Applies tasks and bills what is due, until stopped.

    Tasks and billing run in two threads, so that a long billing run never delays a
    submission. `wake()` makes the task thread look at once (right after a submission
    in the same process); otherwise both poll every `poll_seconds`, which is how they
    see work from other processes and the clock passing billing dates."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        lease: LeaseTerms | None = None,
        poll_seconds: float = 1.0,
        on_task_finished: Callable[[], None] | None = None,
        webhooks: WebhookSending | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        # Leases measure how long a worker may be silent: real time by default, even
        # under a test clock, which may stand still for hours.
        self.lease = lease or LeaseTerms()
        self.poll_seconds = poll_seconds
        # Called from this worker's thread as soon as a task's outcome is committed.
        self._on_task_finished = on_task_finished
        # None: this worker delivers no webhooks (`arrears bill`, some tests).
        self.webhooks = webhooks
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def wake(self) -> None:
        self._wake.set()

    def run_until_idle(self) -> int:
        """Apply waiting tasks until none is left, then bill every contract that is due;
        how many tasks were handled."""
        handled = self.run_tasks()
        self.run_billing()
        return handled

    def run_tasks(self) -> int:
        """Apply waiting tasks until none is left; how many were handled."""
        handled = 0
        while True:
            started = time.perf_counter()  # a duration for the metrics, not an instant
            if not run_next_task(
                self.database,
                self.clock,
                self.lease,
                owner=self.owner,
                finished=self._on_task_finished,
            ):
                return handled
            metrics.TASK_APPLY_SECONDS.observe(time.perf_counter() - started)
            handled += 1

    def run_billing(self) -> BillingRun:
        """Bill every contract that is due at the clock's now (`services.billing.run_billing`),
        and count the run in the metrics."""
        started = time.perf_counter()
        run = run_billing(self.database, self.clock)
        if run.contracts or run.failed:
            # Idle polls (every second) would bury the runs that did something.
            metrics.BILLING_RUN_SECONDS.observe(time.perf_counter() - started)
            metrics.BILLING_CONTRACTS.labels("billed").inc(run.contracts)
            metrics.BILLING_CONTRACTS.labels("failed").inc(run.failed)
        return run

    def run_webhooks(self) -> int:
        """Deliver every webhook that is due at the clock's now, until none is left; how
        many attempts were made."""
        if self.webhooks is None:
            return 0
        sending = self.webhooks
        made = 0
        while True:
            claimed = deliver_due(
                self.database,
                self.clock,
                sending.box,
                sending.sender,
                owner=self.owner,
                pool=sending.pool,
                terms=sending.terms,
            )
            if not claimed:
                measure_pending(self.database, self.clock)
                return made
            made += claimed

    def run_forever(self) -> None:
        """Run both loops in this thread's stead until `stop()`."""
        self.start()
        self._stop.wait()
        self.stop()

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._tasks_loop, name="arrears-tasks", daemon=True),
            threading.Thread(target=self._billing_loop, name="arrears-billing", daemon=True),
        ]
        if self.webhooks is not None:
            self._threads += [
                threading.Thread(
                    target=self._webhooks_loop, name=f"arrears-webhooks-{n}", daemon=True
                )
                for n in range(self.webhooks.threads)
            ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        DELIVERIES_WAITING.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30)
        if self.webhooks is not None:
            self.webhooks.close()

    def _tasks_loop(self) -> None:
        while not self._stop.is_set():
            self._survive("tasks", self.run_tasks)
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _billing_loop(self) -> None:
        while not self._stop.is_set():
            self._survive("billing", self.run_billing)
            self._stop.wait(self.poll_seconds)

    def _webhooks_loop(self) -> None:
        while not self._stop.is_set():
            self._survive("webhooks", self.run_webhooks)
            # A commit in this process that wrote deliveries wakes every loop at once;
            # those of other processes are seen at the next poll.
            DELIVERIES_WAITING.wait(self.poll_seconds)
            DELIVERIES_WAITING.clear()

    def _survive(self, loop: str, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception:  # a database outage must not end the worker: retry
            metrics.WORKER_ERRORS.labels(loop).inc()
            log.exception("worker iteration failed; retrying")


def webhook_sending_for(settings: Settings) -> WebhookSending:
    """How `serve` and `arrears worker` deliver webhooks: the key of the secrets from the
    environment (docs/webhooks.md), private targets only if allowed."""
    return WebhookSending(
        box=webhook_secrets_for(settings),
        sender=HttpSender(allow_private=settings.webhooks_allow_private),
    )
