"""Use cases of bulk consumption tasks (SPEC §6): submit, dry-run, and apply by a worker."""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from arrears import metrics
from arrears.domain.clock import Clock
from arrears.domain.errors import Conflict
from arrears.domain.ids import new_id
from arrears.domain.paging import Page, PageRequest
from arrears.domain.tasks import Outcome, RecordError, Task, TaskStatus
from arrears.services import ingest, submissions, webhooks
from arrears.services.leases import Heartbeat, LeaseTerms, task_heartbeat
from arrears.services.submissions import Applied, KeptRacing, Submission
from arrears.services.task_handover import HANDOVER
from arrears.store.tasks import ClaimedTask, LeaseLost
from arrears.store.unit_of_work import Database, RegistryWork, UnitOfWork, outage_of

__all__ = ["MAX_ATTEMPTS", "dry_run", "run_next_task", "submit", "task", "task_page"]

log = logging.getLogger("arrears.tasks")

MAX_ATTEMPTS = 5
"""A task whose application was cut off this many times is failed, not retried forever."""


def submit(
    work: UnitOfWork,
    clock: Clock,
    body: bytes,
    *,
    idempotency_key: str | None,
    max_records: int,
    hand_over: bool = False,
) -> tuple[Task, bool]:
    """Store a submission as a task, to be validated and applied by a worker.

    Returns the task and whether it is new: a repeat with the same `Idempotency-Key`
    and the same body returns the first task; with another body it is a `Conflict`.
    `hand_over`: a worker of this process will apply it (`task_handover`)."""
    tasks = work.tasks
    total = ingest.count_records(body, max_records)
    task_id = new_id()
    # Decoded while the body is hashed, stored and committed; with an Idempotency-Key,
    # only once it is known to be no replay.
    offered = hand_over and idempotency_key is None
    if offered:
        HANDOVER.offer(task_id, body)
    digest = hashlib.sha256(body).hexdigest()
    if idempotency_key is not None:
        earlier = tasks.by_idempotency_key(idempotency_key)
        if earlier is not None:
            task, earlier_digest = earlier
            if earlier_digest != digest:
                raise Conflict(
                    f"Idempotency-Key {idempotency_key!r} was used for a different body."
                )
            return task, False
    if hand_over and not offered:
        HANDOVER.offer(task_id, body)
    try:
        tasks.add(
            task_id=task_id,
            body=body,
            body_sha256=digest,
            idempotency_key=idempotency_key,
            total_records=total,
            created_at=clock.now(),
        )
    except Conflict:
        # The same key was submitted concurrently and committed first: a replay of the
        # same body is that task, another body a conflict.
        earlier = tasks.by_idempotency_key(idempotency_key or "")
        if earlier is None or earlier[1] != digest:
            raise
        return earlier[0], False
    return tasks.get(task_id), True


def dry_run(work: UnitOfWork, clock: Clock, body: bytes, *, max_records: int) -> Outcome:
    """What applying `body` now would do; saves nothing."""
    ingest.count_records(body, max_records)
    records = ingest.decode_records(body)
    return ingest.validate_submission(work.usage, records, submitted_at=clock.now()).outcome


def task_page(work: UnitOfWork, status: TaskStatus | None, page: PageRequest) -> Page[Task]:
    """The seller's tasks, newest first, optionally in one state."""
    return work.tasks.page(status, page)


def task(work: UnitOfWork, task_id: str) -> Task:
    """The task; `NotFound` for a foreign id."""
    return work.tasks.get(task_id)


def run_next_task(
    database: Database,
    clock: Clock,
    lease: LeaseTerms,
    *,
    owner: str,
    finished: Callable[[], None] | None = None,
) -> bool:
    """Claim the next waiting task and apply it; False when there was none. `finished`
    is called as soon as the task's outcome is committed.

    The claim is committed first, so other workers skip the task while this one works,
    and a heartbeat renews the lease until the task is done (`services.leases`).
    Applying it and recording its outcome happen in one transaction that checks the
    lease when it begins and again when it records the outcome: a worker that died or
    lost its lease leaves nothing behind, and the next claim starts over. A task is
    therefore applied exactly once, or not at all.
    """
    with database.registry_work() as queue:
        claimed = queue.task_queue.claim(
            owner, lease.clock.now(), lease.length, known_body=HANDOVER.body
        )
    if claimed is None:
        return False
    if claimed.attempts > MAX_ATTEMPTS:
        _give_up(database, clock, claimed, owner, finished)
        return True
    try:
        with (
            task_heartbeat(database, claimed.id, owner, lease) as heartbeat,
            _cyclic_gc_paused(),
        ):
            _apply(database, clock, _Holder(claimed, owner, lease, heartbeat), finished)
    except Exception as error:
        # Whatever went wrong, nothing of the task was saved; let the next claim retry
        # it at once rather than after the lease. It fails for good after MAX_ATTEMPTS,
        # but a storage outage (e.g. a full disk) is no attempt of the task's.
        with database.registry_work() as queue:
            queue.task_queue.release(claimed.id, owner, counted=outage_of(error) is None)
        raise
    return True


@dataclass(frozen=True, slots=True)
class _Holder:
    """A claimed task, the worker that holds it, and how."""

    claimed: ClaimedTask
    owner: str
    lease: LeaseTerms
    heartbeat: Heartbeat

    def hold(self, work: RegistryWork) -> None:
        """Check, first in `work`'s transaction, that the lease is still the owner's,
        and renew it: from then on the transaction holds the task (the row lock on
        PostgreSQL, the write lock on SQLite) until it ends. `LeaseLost` if it is not,
        before any work is done."""
        if not work.task_queue.renew(
            self.claimed.id, self.owner, self.lease.clock.now(), self.lease.length
        ):
            raise LeaseLost(self.claimed.id)


def _apply(
    database: Database, clock: Clock, holder: _Holder, finished: Callable[[], None] | None
) -> None:
    claimed = holder.claimed
    # Confirmed by `ingest.apply_submission`, beside the inserts (`decode_unconfirmed`).
    records = HANDOVER.take_records(claimed.id)
    if records is None:
        records = ingest.decode_unconfirmed(claimed.body)
    submission = Submission(claimed.seller_id, claimed.id, records, claimed.created_at)

    @contextmanager
    def held() -> Iterator[UnitOfWork]:
        with (
            holder.heartbeat.holding(),
            database.unit_of_work(claimed.seller_id, bulk=True, committed=finished) as work,
        ):
            holder.hold(work)
            yield work

    def finish(applied: Applied) -> Outcome:
        applied.work.task_queue.finish(claimed.id, holder.owner, applied.outcome, clock.now())
        webhooks.task_finished(applied.work, clock.now(), claimed.id)
        return applied.outcome

    try:
        outcome = submissions.apply(submission, clock, held, finish)
    except LeaseLost:
        log.warning("task %s: lease lost to another worker; rolled back", claimed.id)
        return
    except KeptRacing:
        log.warning("task %s: keys kept racing; left for the next claim", claimed.id)
        return
    metrics.task_finished(outcome, waited=clock.now() - claimed.created_at)
    log.info(
        "task %s %s: %d saved, %d duplicates, %d errors",
        claimed.id,
        outcome.status,
        outcome.saved_records,
        outcome.duplicate_records,
        len(outcome.errors),
    )


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a task is applied.

    A large submission allocates hundreds of thousands of objects that hold no reference
    cycles and all die together; the collector would traverse them all several times
    over, finding nothing (half a second per 100,000 records). Reference counting frees
    them as usual. The collector is process-wide: it is enabled again afterwards unless
    something else had paused it before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _give_up(
    database: Database,
    clock: Clock,
    claimed: ClaimedTask,
    owner: str,
    finished: Callable[[], None] | None,
) -> None:
    error = RecordError(
        index=None,
        subscription_id=None,
        field="",
        code="not_applied",
        message=f"The task could not be applied after {MAX_ATTEMPTS} attempts; nothing "
        "of it was saved. Resubmit it, or contact the operator if this repeats.",
    )
    with database.unit_of_work(claimed.seller_id, committed=finished) as work:
        outcome = Outcome(total_records=0, errors=(error,))
        work.task_queue.finish(claimed.id, owner, outcome, clock.now())
        webhooks.task_finished(work, clock.now(), claimed.id)
    metrics.task_finished(outcome)
    log.error("task %s failed after %d attempts", claimed.id, MAX_ATTEMPTS)
