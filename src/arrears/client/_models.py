"""Answers of the seller consumption API and the outcome of a bulk submission."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from arrears.client._errors import Problem
from arrears.client._records import ConsumptionRecord

__all__ = ["BulkResult", "FailedRecord", "Task", "TaskError", "chunk_failures"]

NOT_SAVED = "not_saved"
"""Code of a valid record that was not saved because another record of its chunk failed."""


class TaskError(msgspec.Struct, rename="camel"):
    """Why one record of a task was refused."""

    field: str
    code: str
    message: str
    index: int | None = None
    subscription_id: str | None = None


class Task(msgspec.Struct, rename="camel"):
    """A bulk consumption task (or the answer of a dry run, whose `task_id` is None)."""

    message: Literal["Processing", "Successful", "Failed"]
    total_records: int
    saved_records: int
    duplicate_records: int
    errors: list[TaskError] = msgspec.field(default_factory=list)
    task_id: str | None = None
    created_at: str | None = None
    completed_at: str | None = None

    @property
    def finished(self) -> bool:
        return self.message != "Processing"


@dataclass(frozen=True, slots=True)
class FailedRecord:
    """A record that was not saved. `index` is its position in the submitted records;
    `errors` are its own errors, or one `not_saved` error when only another record of
    its chunk failed."""

    index: int
    record: ConsumptionRecord
    errors: tuple[TaskError, ...]

    @property
    def message(self) -> str:
        return "; ".join(e.message for e in self.errors)


@dataclass
class BulkResult:
    """The outcome of `submit_bulk`: totals over every chunk, and every record not saved
    (ordered by index). With `dry_run`, `saved` is what would have been saved."""

    total: int = 0
    saved: int = 0
    duplicates: int = 0
    failed: list[FailedRecord] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def add(
        self, start: int, chunk: Sequence[ConsumptionRecord], task: Task, *, replayed: bool = False
    ) -> None:
        """Count a finished chunk. `replayed`: the chunk's Idempotency-Key named a task
        that had finished before this submission (the same content was submitted
        before); its saved records were stored then, so here they count as duplicates."""
        self.total += len(chunk)
        if replayed:
            self.duplicates += task.saved_records + task.duplicate_records
        else:
            self.saved += task.saved_records
            self.duplicates += task.duplicate_records
        self.tasks.append(task)
        if task.message == "Failed":
            self.failed.extend(chunk_failures(start, chunk, task.errors))

    def add_refused(self, start: int, chunk: Sequence[ConsumptionRecord], problem: Problem) -> None:
        """A chunk the server refused outright (e.g. 413, 422): none of it was saved."""
        self.total += len(chunk)
        errors = [
            TaskError(field=e.field, code=e.code, message=e.message, index=e.index)
            for e in problem.errors
        ] or [TaskError(field="", code=f"http_{problem.status}", message=problem.detail)]
        self.failed.extend(chunk_failures(start, chunk, errors))


def chunk_failures(
    start: int, chunk: Sequence[ConsumptionRecord], errors: Sequence[TaskError]
) -> list[FailedRecord]:
    """Every record of a failed chunk (starting at `start`), with its errors. The chunk
    was all or nothing: its records without errors of their own were not saved either."""
    own: dict[int, list[TaskError]] = {}
    general: list[TaskError] = []
    for error in errors:
        if error.index is not None and 0 <= error.index < len(chunk):
            own.setdefault(error.index, []).append(error)
        else:
            general.append(error)
    held = TaskError(
        field="",
        code=NOT_SAVED,
        message="not saved: another record of its chunk failed (each chunk is all or nothing)",
    )
    return [
        FailedRecord(start + offset, record, tuple(own.get(offset) or general or [held]))
        for offset, record in enumerate(chunk)
    ]
