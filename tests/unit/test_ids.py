"""SPEC §2, ids reveal nothing: how ids are made (domain/ids.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from arrears.domain import ids
from arrears.domain.ids import USAGE_ID_MAX, UsageIds, new_id

MICROSECOND = 1_000  # nanoseconds


def _prefix(id_: str) -> int:
    return int(id_[:14], 16)


def test_an_id_made_within_the_microsecond_of_the_last_waits_for_the_clock_not_a_counter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The clock reads one microsecond three times, then jumps five microseconds ahead.
    # A counter bumped past the clock would make the second id's time T + 1, a time the
    # clock never read, and each further id one more: a count of every id made meanwhile.
    start = 1_800_000_000_000_000 * MICROSECOND
    readings: Iterator[int] = iter([start, start, start, start + 5 * MICROSECOND])
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(readings))
    monkeypatch.setattr(ids, "_last_micros", 0)
    first, second = new_id(), new_id()
    assert _prefix(first) == start // MICROSECOND
    assert _prefix(second) == start // MICROSECOND + 5


def test_ids_are_twenty_four_hex_digits_and_differ_in_their_forty_random_bits() -> None:
    made = [new_id() for _ in range(1_000)]
    assert all(len(id_) == 24 and int(id_, 16) >= 0 for id_ in made)
    assert len({id_[14:] for id_ in made}) == 1_000


def test_ids_made_one_after_another_increase() -> None:
    made = [new_id() for _ in range(1_000)]
    assert made == sorted(made)


def test_the_usage_ids_of_one_submission_ascend_in_submission_order() -> None:
    run = UsageIds()
    taken = run.take(5_000) + run.take(1) + run.take(3_000)
    assert taken == sorted(taken)
    assert len(set(taken)) == 8_001


def test_usage_ids_are_positive_64_bit_integers_above_two_to_the_thirty_two() -> None:
    # Above every id of the counter that numbered entries before (migration 0010).
    taken = [id_ for _ in range(200) for id_ in UsageIds().take(100)]
    assert all(2**32 <= id_ <= USAGE_ID_MAX for id_ in taken)


def test_each_submission_starts_its_usage_ids_at_a_random_place_far_from_the_last() -> None:
    # A counter would start the next submission right after the last one's ids, and the
    # gap would count what others stored between them.
    starts = [UsageIds().take(1)[0] for _ in range(100)]
    assert len(set(starts)) == 100
    gaps = sorted(abs(b - a) for a, b in itertools.pairwise(starts))
    assert gaps[len(gaps) // 2] > 2**48


def test_steps_within_a_submission_are_random_not_one() -> None:
    taken = UsageIds().take(1_000)
    steps = {b - a for a, b in itertools.pairwise(taken)}
    assert min(steps) >= 257
    assert max(steps) <= 65_535
    assert len(steps) > 900
