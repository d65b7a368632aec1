"""Identifiers of stored objects.

Ids reveal nothing (SPEC §2): no id, and no order of ids, tells one seller how many
objects another seller has. Nothing that makes an id is shared between sellers but the
wall clock; the rest is drawn from the operating system's random source. The design,
and why: docs/api-conventions.md, "Ids".
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from array import array
from itertools import accumulate, islice

__all__ = ["USAGE_ID_MAX", "UsageIds", "new_id"]

_lock = threading.Lock()
_last_micros = 0


def new_id() -> str:
    """A 24-hex-digit id: 14 digits of creation time in microseconds, then 10 random.

    Within one process ids strictly increase, so "newest first" is a stable order even
    when the (test) clock stands still: a second id asked for within the microsecond of
    the previous one waits for the next microsecond. The time is the clock's, never a
    count: a counter bumped past the clock would grow with every object made in a burst,
    every seller's alike, and tell each how many the others made. (Should the wall clock
    be set back, ids follow it.) Wall time is right here, not the business clock: an id
    is a storage fact, not a billing one. Clients may rely on nothing but uniqueness.
    """
    global _last_micros  # noqa: PLW0603 (the clock's last reading is process-wide by nature)
    with _lock:
        micros = time.time_ns() // 1000
        while micros == _last_micros:  # under a microsecond: wait for the next one
            micros = time.time_ns() // 1000
        _last_micros = micros
    return f"{micros:014x}{secrets.token_hex(5)}"


# Usage entry ids are positive signed 64-bit integers (both databases' BIGINT).
USAGE_ID_MAX = 2**63 - 1
# A submission's run starts at or above 2**32, above any id of the autoincrement
# counter that numbered entries before migration 0010, so renumbering them never meets
# one of the old ids; and at least 2**48 below the top, room for 2**32 entries at the
# largest step.
_RUN_LOW = 2**32
_RUN_SPAN = USAGE_ID_MAX - 2**48 - _RUN_LOW
# A step is a random 16-bit number with bits 0 and 8 set (odd, 257 to 65,535, never 0):
# setting them is one `bytes.translate` over all the steps of a run at once.
_STEP_BITS = bytes(byte | 1 for byte in range(256))


class UsageIds:
    """The ids of one submission's usage entries, strictly increasing in the order the
    entries are taken: a random start, then random steps of 257 to 65,535.

    Within a submission the ids follow submission order, so a submission's entries can
    be listed in it, and its inserts touch one region of the primary key's index (a
    nearly sequential insert, not one at a random place per entry). Every submission
    starts afresh at a random point of a 2**63 range, so neither an id nor the distance
    between two carries any count of anybody's; an id is not to be guessed from another
    (14 random bits a step within a submission, 62 bits between submissions). Two
    submissions' ids may meet, rarely: the primary key refuses the second and its
    insert is tried again with new ids (`store.usage`)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = _RUN_LOW + secrets.randbelow(_RUN_SPAN)

    def take(self, n: int) -> list[int]:
        """The next `n` ids, ascending."""
        if n <= 0:
            return []
        steps = array("H", os.urandom(2 * n).translate(_STEP_BITS))
        ids = list(islice(accumulate(steps, initial=self._last), 1, None))
        self._last = ids[-1]
        return ids
