"""Issue 16: the heartbeat that renews a worker's lease (services/leases.py), without a
database: what it renews, when it pauses, what it survives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from arrears.services.leases import Heartbeat, LeaseTerms

AN_HOUR = timedelta(hours=1)  # the thread is never started: beats are called by hand


def _renewals(*answers: bool | Exception) -> tuple[Callable[[], bool], list[int]]:
    """A renewal answering `answers` in turn, and the list that counts its calls."""
    calls: list[int] = []

    def renew() -> bool:
        answer = answers[len(calls)]
        calls.append(1)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return renew, calls


def test_a_heartbeat_renews_nothing_while_the_applying_transaction_holds_the_task() -> None:
    renew, calls = _renewals(True)
    heartbeat = Heartbeat(renew, AN_HOUR, "task t")
    with heartbeat.holding():
        heartbeat.beat()
    assert len(calls) == 0
    heartbeat.beat()
    assert len(calls) == 1


def test_a_failed_renewal_is_tried_again_at_the_next_beat() -> None:
    renew, calls = _renewals(ConnectionError("database down"), True)
    heartbeat = Heartbeat(renew, AN_HOUR, "task t")
    heartbeat.beat()
    heartbeat.beat()
    assert (len(calls), heartbeat.lost) == (2, False)


def test_a_heartbeat_whose_lease_was_lost_renews_no_more() -> None:
    renew, calls = _renewals(False)
    heartbeat = Heartbeat(renew, AN_HOUR, "task t")
    heartbeat.beat()
    heartbeat.beat()
    assert (len(calls), heartbeat.lost) == (1, True)


def test_a_lease_renewed_no_more_often_than_it_lasts_is_refused() -> None:
    with pytest.raises(ValueError, match="renewed more often than it lasts"):
        LeaseTerms(length=timedelta(seconds=10), renew_every=timedelta(seconds=10))
