"""Identifiers of stored objects."""

from __future__ import annotations

import secrets
import threading
import time

__all__ = ["new_id"]

_lock = threading.Lock()
_last_micros = 0


def new_id() -> str:
    """A 24-hex-digit id: 14 digits of creation time in microseconds, then 10 random.

    Within one process ids strictly increase, so "newest first" is a stable order even
    when the (test) clock stands still; across processes they sort by creation time to
    the microsecond. Wall time is right here, not the business clock: an id is a
    storage fact, not a billing one. Clients may rely on nothing but uniqueness.
    """
    global _last_micros  # noqa: PLW0603 (the monotonic guard is process-wide by nature)
    with _lock:
        _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
        micros = _last_micros
    return f"{micros:014x}{secrets.token_hex(5)}"
