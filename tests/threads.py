"""Running test work in threads: started together, or held at a lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import text

from arrears.store.database import Database

T = TypeVar("T")


def all_at_once(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(0..count-1)` in `count` threads released together; their results."""
    barrier = threading.Barrier(count)

    def start(n: int) -> T:
        barrier.wait(timeout=30)
        return work(n)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


def until_blocked(database: Database, work: Future[object] | None = None) -> None:
    """Return once another connection waits for a lock held by the caller's transaction
    (PostgreSQL), or after a generous pause (SQLite: a writer waits in its busy handler).
    With `work`, the thread expected to wait: fail at once if it finished instead."""
    if database.is_sqlite:
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if work is not None:
            assert not work.done(), work.exception() or "it did not wait for the lock"
        with database.read() as session:
            waiting = session.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            if waiting.scalar_one() > 0:
                return
        time.sleep(0.01)
    pytest.fail("no connection started waiting for the held transaction")
