"""When and how long to wait before trying a request again."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

__all__ = ["RETRYABLE_STATUSES", "RetryPolicy", "retry_after"]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits a random time in
    `[0, min(max_delay, base_delay * 2**n)]`, or what `Retry-After` asks (capped at
    `max_retry_after`). `attempts` counts every try, the first included."""

    attempts: int = 8
    base_delay: float = 0.25
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        if response is not None:
            asked = retry_after(response)
            if asked is not None:
                return min(asked, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        # Jitter spreads retries of many clients; it needs no cryptographic randomness.
        return self.rng.uniform(0, ceiling)


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a `Retry-After` header asks for (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
