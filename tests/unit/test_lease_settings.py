"""Issue 16: the lease of a task and its heartbeat are configurable
(ARREARS_LEASE_SECONDS, ARREARS_HEARTBEAT_SECONDS; docs/configuration.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from arrears.config import Settings, lease_terms_for
from arrears.domain.clock import SystemClock


def test_a_lease_lasts_ten_seconds_renewed_every_two_by_default() -> None:
    terms = lease_terms_for(Settings(database_url="unused://"))
    assert (terms.length, terms.renew_every) == (timedelta(seconds=10), timedelta(seconds=2))
    assert isinstance(terms.clock, SystemClock)  # real time, whatever the business clock


def test_the_lease_and_its_heartbeat_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARREARS_LEASE_SECONDS", "30")
    monkeypatch.setenv("ARREARS_HEARTBEAT_SECONDS", "2.5")
    terms = lease_terms_for(Settings(database_url="unused://"))
    assert (terms.length, terms.renew_every) == (timedelta(seconds=30), timedelta(seconds=2.5))


def test_a_heartbeat_slower_than_half_the_lease_is_refused() -> None:
    with pytest.raises(ValidationError, match="at most half of ARREARS_LEASE_SECONDS"):
        Settings(database_url="unused://", lease_seconds=10, heartbeat_seconds=6)
