"""Requests waiting for bulk tasks to finish (`GET .../bulkconsumptions/{taskId}?wait=`).

A waiting request holds no thread: it awaits an event that the worker of this process
sets after each task it finishes (from the worker's thread, hence through the waiting
request's event loop). Tasks finished by workers in other processes are seen by reading
the task again every `RECHECK_SECONDS`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["MAX_WAIT_SECONDS", "RECHECK_SECONDS", "TaskWaits"]

MAX_WAIT_SECONDS = 10
"""The longest a request may wait. Stopping the server waits for open requests, so this
is also how long a waiting client can delay a shutdown."""

RECHECK_SECONDS = 0.25
"""How often a waiting request reads its task again, for workers in other processes."""


class TaskWaits:
    """The event loops and events of the requests waiting in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def task_finished(self) -> None:
        """Wake every waiting request to read its task again. Thread-safe."""
        with self._lock:
            waiting = list(self._waiting)
        for loop, event in waiting:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop closed meanwhile: nobody waits on it
                continue

    @contextmanager
    def watching(self) -> Iterator[asyncio.Event]:
        """An event set whenever a task finishes in this process, while inside."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiting.add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                self._waiting.discard(waiter)
