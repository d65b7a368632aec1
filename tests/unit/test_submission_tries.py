"""How the tries of applying a submission follow each other (services.submissions.settled),
and how wire names name a bad field (domain.wire)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from arrears.domain import wire
from arrears.domain.errors import FieldError
from arrears.services.submissions import ApplyCarefully, KeptRacing, settled


def _tries(*failures: BaseException | None) -> tuple[list[bool], Callable[[bool], str]]:
    """An attempt that raises each failure in turn (None: it returns), and the `careful`
    flag of every call it got."""
    calls: list[bool] = []
    pending = list(failures)

    def attempt(careful: bool) -> str:
        calls.append(careful)
        failure = pending.pop(0)
        if failure is not None:
            raise failure
        return "applied"

    return calls, attempt


def _deadlock() -> OperationalError:
    return OperationalError("COMMIT", {}, psycopg.errors.DeadlockDetected("deadlock detected"))


def test_the_first_try_trusts_and_one_that_settles_is_the_last() -> None:
    calls, attempt = _tries(None)
    assert settled(attempt, label="test") == "applied"
    assert calls == [False]


def test_after_apply_carefully_every_try_is_careful() -> None:
    calls, attempt = _tries(ApplyCarefully("s"), ApplyCarefully("s"), None)
    assert settled(attempt, label="test") == "applied"
    assert calls == [False, True, True]


def test_a_deadlock_runs_the_same_try_again() -> None:
    calls, attempt = _tries(_deadlock(), None)
    assert settled(attempt, label="test") == "applied"
    assert calls == [False, False]


def test_four_tries_that_do_not_settle_are_kept_racing() -> None:
    calls, attempt = _tries(ApplyCarefully("s"), _deadlock(), ApplyCarefully("s"), _deadlock())
    with pytest.raises(KeptRacing):
        settled(attempt, label="test")
    assert len(calls) == 4


def test_a_database_error_that_is_not_transient_is_the_callers() -> None:
    refused = IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key"))
    calls, attempt = _tries(refused)
    with pytest.raises(IntegrityError):
        settled(attempt, label="test")
    assert calls == [False]


def test_an_orders_usage_error_is_named_by_its_place_in_the_cart() -> None:
    error = FieldError("due_date", "before_start", "Too early.", 2)
    assert wire.usage_error(error, wire.ORDER_USAGES) == FieldError(
        "Cart.MeteredUsages[2].DueDate", "before_start", "Too early.", 2
    )


def test_a_usage_error_of_the_usage_api_is_named_by_its_field_alone() -> None:
    error = FieldError("component", "not_found", "No such component.", 0)
    assert wire.usage_error(error) == FieldError("ComponentId", "not_found", "No such component.")


def test_a_records_field_is_named_by_its_place_among_the_records() -> None:
    assert wire.item_path(wire.RECORDS, 3, "quantity") == "consumptions[3].quantity"
    assert wire.item_path(wire.RECORDS, None, "subscriptionId") == "subscriptionId"
