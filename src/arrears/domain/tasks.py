"""Bulk consumption tasks (SPEC §6): asynchronous, all-or-nothing submissions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Outcome", "RecordError", "Task", "TaskStatus"]


class TaskStatus(enum.StrEnum):
    PROCESSING = "Processing"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why one submitted record (at `index`) was refused."""

    index: int | None
    subscription_id: str | None
    field: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of validating, and unless it failed applying, a submission."""

    total_records: int
    saved_records: int = 0
    duplicate_records: int = 0
    errors: tuple[RecordError, ...] = ()

    @property
    def status(self) -> TaskStatus:
        return TaskStatus.FAILED if self.errors else TaskStatus.SUCCESSFUL


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    seller_id: str
    status: TaskStatus
    total_records: int
    created_at: datetime
    saved_records: int = 0
    duplicate_records: int = 0
    errors: tuple[RecordError, ...] = field(default=())
    completed_at: datetime | None = None
