"""What every request handler needs: settings, the database and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from arrears.api.task_waits import TaskWaits
from arrears.config import Settings
from arrears.domain.clock import Clock
from arrears.store.unit_of_work import Database
from arrears.worker.runner import Worker

__all__ = ["AppContext", "Context"]


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    database: Database
    clock: Clock
    worker: Worker | None = None
    """The embedded worker, if this process runs one."""
    task_waits: TaskWaits = field(default_factory=TaskWaits)
    """Requests waiting for tasks, woken by the embedded worker."""

    def wake_worker(self) -> None:
        """Have the embedded worker look for tasks now rather than at its next poll."""
        if self.worker is not None:
            self.worker.wake()


async def _context(request: Request) -> AppContext:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a hop per request.
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(_context)]
