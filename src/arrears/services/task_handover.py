"""A bulk submission handed from its `POST` to the embedded worker of the same process:
the body as received, and its records decoded while the `POST` stores it."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from arrears.domain.tasks import RecordError
from arrears.services import ingest

__all__ = ["HANDOVER", "Handover"]

Records = list[ingest.SubmittedRecord | list[RecordError]]


class Handover:
    """The latest submission offered in this process, until a worker takes it.

    The `POST` of a large submission spends most of its time storing the body and
    committing, which SQLite and PostgreSQL do without the GIL: its records are decoded
    meanwhile by a thread of this handover (`ingest.decode_unconfirmed`). A worker of the
    same process that claims that task takes the body and records from here instead of
    reading the body back and decoding it (for 100,000 records, 0.06-0.09 s less between
    the `POST`'s commit and the first insert). What is taken is exactly what the stored
    body reads as: the same bytes, decoded by the same function.

    Only the latest offer is kept (a second replaces the first, whose worker reads the
    stored body as before), so at most one body and its records wait here: a task
    claimed by another process's worker, or an offer whose `POST` failed, is let go at
    the next offer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: tuple[str, bytes, Future[Records]] | None = None
        self._decoder: ThreadPoolExecutor | None = None

    def offer(self, task_id: str, body: bytes) -> None:
        """Keep `body` for the task `task_id`, and start decoding its records."""
        with self._lock:
            if self._decoder is None:
                self._decoder = ThreadPoolExecutor(1, thread_name_prefix="arrears-decode")
            decoding = self._decoder.submit(ingest.decode_unconfirmed, body)
            self._latest = (task_id, body, decoding)

    def body(self, task_id: str) -> bytes | None:
        """The body offered for `task_id`, if it is the latest offer."""
        latest = self._latest
        return latest[1] if latest is not None and latest[0] == task_id else None

    def take_records(self, task_id: str) -> Records | None:
        """The records of the body offered for `task_id` (waiting for their decoding),
        and the offer forgotten; None if it is not the latest offer or its decoding
        failed (the caller decodes the body itself)."""
        with self._lock:
            latest = self._latest
            if latest is None or latest[0] != task_id:
                return None
            self._latest = None
        try:
            return latest[2].result()
        except Exception:  # decoding raises nothing it does not handle; if it did, decode again
            return None


HANDOVER = Handover()
"""The process's handover: `tasks.submit` offers to it, `tasks.run_next_task` takes."""
