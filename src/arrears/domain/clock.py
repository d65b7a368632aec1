"""The one source of "now".

Every component receives a `Clock`; nothing calls `datetime.now()` on its own, so tests
and sandboxes can stand time still and move it forward (SPEC §9).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

from arrears.domain.errors import Conflict, Invalid
from arrears.domain.limits import EARLIEST, LATEST

__all__ = [
    "EARLIEST",
    "LATEST",
    "Clock",
    "SystemClock",
    "TestClock",
    "in_range",
    "parse_instant",
    "require_utc",
    "utc_text",
]


def in_range(instant: datetime) -> bool:
    return EARLIEST <= instant < LATEST


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """A clock that stands still until moved, and only moves forward."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime | None = None) -> None:
        self._now = _within_range(start) if start is not None else datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def move_to(self, instant: datetime) -> datetime:
        """Move to `instant`; moving backwards is a `Conflict` (billing is forward only),
        and beyond [EARLIEST, LATEST) `Invalid`: billing computes dates up to a period
        past the clock, which must exist (`domain.limits`)."""
        instant = require_utc(instant)
        with self._lock:
            if instant < self._now:
                raise Conflict(f"The clock is at {utc_text(self._now)}; it only moves forward.")
            self._now = _within_range(instant)
        return instant


def _within_range(instant: datetime) -> datetime:
    instant = require_utc(instant)
    if not in_range(instant):
        raise Invalid.one(
            "now",
            "out_of_range",
            f"now must lie between the years {EARLIEST.year} and {LATEST.year - 1}, like "
            "every instant: billing computes dates up to a period past the clock.",
        )
    return instant


def utc_text(instant: datetime) -> str:
    """`instant` as the API writes instants: ISO 8601 in UTC with `Z` (SPEC §5), also in
    the text of problems."""
    return require_utc(instant).isoformat().replace("+00:00", "Z")


def require_utc(instant: datetime) -> datetime:
    """`instant` in UTC; a naive datetime is taken to be UTC already (SPEC §5).

    Raises `ValueError` when the UTC form falls outside the years 1 to 9999."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{instant.isoformat()} lies outside the years 1 to 9999 in UTC") from None


def parse_instant(text: str, field: str = "now") -> datetime:
    """Parse ISO 8601; without an offset the instant is UTC."""
    try:
        return require_utc(datetime.fromisoformat(text))
    except ValueError:
        raise Invalid.one(
            field, "invalid_datetime", f"{text!r} is not an ISO 8601 instant."
        ) from None
