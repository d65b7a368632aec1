"""Bulk consumption tasks in storage.

`TaskRepository` is the seller's view (submit, poll). `TaskQueue` is the workers' view
across sellers: claiming a task takes a lease, and finishing it checks the lease in
the same transaction that applied the task, so a task whose worker died is applied by
the next worker, and never twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from arrears.domain.errors import NotFound
from arrears.domain.paging import Page, PageRequest
from arrears.domain.tasks import Outcome, RecordError, Task, TaskStatus
from arrears.store.dialect import dialect_of
from arrears.store.tables import TaskBodyRow, TaskRow
from arrears.store.tenancy import TenantRepository

__all__ = ["ClaimedTask", "LeaseLost", "TaskQueue", "TaskRepository"]


class TaskRepository(TenantRepository):
    def add(
        self,
        *,
        task_id: str,
        body: bytes,
        body_sha256: str,
        idempotency_key: str | None,
        total_records: int,
        created_at: datetime,
    ) -> None:
        conflict = f"Idempotency-Key {idempotency_key!r} was used for another submission."
        with self._unique(conflict):
            self._session.add(
                TaskRow(
                    id=task_id,
                    seller_id=self.seller_id,
                    status=TaskStatus.PROCESSING.value,
                    body_sha256=body_sha256,
                    idempotency_key=idempotency_key,
                    total_records=total_records,
                    saved_records=0,
                    duplicate_records=0,
                    attempts=0,
                    created_at=created_at,
                )
            )
            self._session.flush()
            self._session.add(TaskBodyRow(task_id=task_id, body=body))

    def get(self, task_id: str) -> Task:
        row = self._session.execute(
            self._scoped(TaskRow).where(TaskRow.id == task_id)
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"There is no task {task_id}.")
        return _task(row)

    def page(self, status: TaskStatus | None, page: PageRequest) -> Page[Task]:
        """The seller's tasks, newest first (with `status` only, if given), without their
        errors: a failed task's errors may name every one of 100,000 records, and a
        listing shows none of them, so they are not read."""
        query = select(
            *(column for column in TaskRow.__table__.c if column.name not in _UNLISTED)
        ).where(TaskRow.seller_id == self.seller_id)
        if status is not None:
            query = query.where(TaskRow.status == status.value)
        total = self._session.execute(
            select(func.count()).select_from(query.subquery())
        ).scalar_one()
        rows = self._session.execute(
            query.order_by(TaskRow.created_at.desc(), TaskRow.id.desc())
            .offset(page.skip)
            .limit(page.take)
        )
        return Page(items=[_task(row) for row in rows], total=total)

    def by_idempotency_key(self, key: str) -> tuple[Task, str] | None:
        """The task submitted with `key`, and the SHA-256 of its body."""
        row = self._session.execute(
            self._scoped(TaskRow).where(TaskRow.idempotency_key == key)
        ).scalar_one_or_none()
        return None if row is None else (_task(row), row.body_sha256)


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    id: str
    seller_id: str
    body: bytes
    created_at: datetime
    attempts: int


class LeaseLost(Exception):
    """Another worker took the task over; this worker's work on it must be rolled back."""


class TaskQueue:
    def __init__(self, session: Session) -> None:
        self._session = session

    def claim(
        self,
        owner: str,
        now: datetime,
        lease: timedelta,
        known_body: Callable[[str], bytes | None] = lambda _: None,
    ) -> ClaimedTask | None:
        """Lease the oldest task that is waiting, whose lease has expired, or whose lease
        is `owner`'s own: a worker claims only when it applies nothing, so a task still
        leased to it is one its failed attempt could not release (the database was
        down), and it takes it back at once rather than after the lease.

        `known_body(task_id)`: the task's body if the caller holds it already (the same
        bytes as stored), which is then not read back."""
        candidate = (
            select(TaskRow.id)
            .where(
                TaskRow.status == TaskStatus.PROCESSING.value,
                or_(
                    TaskRow.lease_expires_at.is_(None),
                    TaskRow.lease_expires_at < now,
                    TaskRow.lease_owner == owner,
                ),
            )
            .order_by(TaskRow.created_at, TaskRow.id)
            .limit(1)
        )
        # Concurrent workers skip rows another worker is claiming instead of waiting.
        candidate = dialect_of(self._session).skip_locked(candidate)
        task_id = self._session.execute(candidate).scalar_one_or_none()
        if task_id is None:
            return None
        row = self._session.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id)
            .values(
                lease_owner=owner,
                lease_expires_at=now + lease,
                attempts=TaskRow.attempts + 1,
            )
            .returning(TaskRow.id, TaskRow.seller_id, TaskRow.created_at, TaskRow.attempts)
        ).one()
        return ClaimedTask(
            id=row.id,
            seller_id=row.seller_id,
            body=body if (body := known_body(task_id)) is not None else self._body(task_id),
            created_at=row.created_at,
            attempts=row.attempts,
        )

    def _body(self, task_id: str) -> bytes:
        return dialect_of(self._session).task_body(self._session, task_id)

    def renew(self, task_id: str, owner: str, now: datetime, lease: timedelta) -> bool:
        """Extend `owner`'s lease of the task to `now + lease`; whether the lease was still
        `owner`'s (a task another worker claimed, or that is finished, is left alone).

        Run first in the transaction that applies the task, it also makes that
        transaction hold the task until it ends: on PostgreSQL the row stays locked, and
        claims skip locked rows; on SQLite the transaction holds the write lock anyway."""
        result = self._session.execute(
            update(TaskRow)
            .where(
                TaskRow.id == task_id,
                TaskRow.lease_owner == owner,
                TaskRow.status == TaskStatus.PROCESSING.value,
            )
            .values(lease_expires_at=now + lease)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, task_id: str, owner: str, *, counted: bool = True) -> None:
        """Give up this worker's lease, so that the next claim may take the task at once.
        Unless `counted`, the attempt is given back: it failed for the storage (down,
        full, read-only), not for the task, and brings it no nearer to failing."""
        attempts = TaskRow.attempts if counted else TaskRow.attempts - 1
        self._session.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id, TaskRow.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, attempts=attempts)
        )

    def finish(self, task_id: str, owner: str, outcome: Outcome, now: datetime) -> None:
        """Record the outcome; `LeaseLost` if the lease is no longer this worker's."""
        result = self._session.execute(
            update(TaskRow)
            .where(
                TaskRow.id == task_id,
                TaskRow.lease_owner == owner,
                TaskRow.status == TaskStatus.PROCESSING.value,
            )
            .values(
                status=outcome.status.value,
                saved_records=outcome.saved_records,
                duplicate_records=outcome.duplicate_records,
                errors=[asdict(error) for error in outcome.errors],
                completed_at=now,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise LeaseLost(task_id)
        # Applied or refused, the body is no longer needed.
        self._session.execute(delete(TaskBodyRow).where(TaskBodyRow.task_id == task_id))


# Columns a listing leaves out (see `TaskRepository.page`).
_UNLISTED = frozenset({"errors", "body_sha256", "lease_owner", "lease_expires_at"})


def _task(row: Any) -> Task:
    """A task from a `TaskRow`, or from a row of its columns (without `errors`)."""
    return Task(
        id=row.id,
        seller_id=row.seller_id,
        status=TaskStatus(row.status),
        total_records=row.total_records,
        created_at=row.created_at,
        saved_records=row.saved_records,
        duplicate_records=row.duplicate_records,
        errors=tuple(RecordError(**error) for error in getattr(row, "errors", None) or ()),
        completed_at=row.completed_at,
    )
