"""What counts as a contract's billing failure, and what is no fault of the contract
(services.billing_failures.reason_of)."""

from __future__ import annotations

import sqlite3
from decimal import InvalidOperation

import psycopg
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from arrears.domain.billing_failures import FailureCode
from arrears.domain.errors import Conflict, Invalid
from arrears.services.billing_failures import reason_of


def _code_of(error: BaseException) -> FailureCode | None:
    reason = reason_of(error)
    return None if reason is None else reason.code


def test_an_amount_that_cannot_be_computed_is_amount_out_of_range() -> None:
    assert _code_of(InvalidOperation([InvalidOperation])) is FailureCode.AMOUNT_OUT_OF_RANGE
    assert _code_of(OverflowError("Python int too large to convert to SQLite INTEGER")) is (
        FailureCode.AMOUNT_OUT_OF_RANGE
    )


def test_an_amount_that_cannot_be_stored_is_amount_out_of_range() -> None:
    refused = StatementError("bind", "INSERT", {}, ValueError("1E+20 is too large to store"))
    assert _code_of(refused) is FailureCode.AMOUNT_OUT_OF_RANGE
    overflow = OperationalError(
        "SELECT sum(quantity)", {}, sqlite3.OperationalError("integer overflow")
    )
    assert _code_of(overflow) is FailureCode.AMOUNT_OUT_OF_RANGE


def test_a_billing_date_beyond_the_calendar_is_date_out_of_range() -> None:
    assert _code_of(ValueError("year 10999 is out of range")) is FailureCode.DATE_OUT_OF_RANGE
    assert _code_of(OverflowError("date value out of range")) is FailureCode.DATE_OUT_OF_RANGE


def test_anything_else_is_unexpected_and_its_message_names_no_internals() -> None:
    reason = reason_of(KeyError("secret_column"))
    assert reason is not None
    assert reason.code is FailureCode.UNEXPECTED
    assert "secret_column" not in reason.message
    assert reason.error == "builtins.KeyError"


def test_a_rule_the_service_raised_on_purpose_is_shown_as_it_was_raised() -> None:
    reason = reason_of(Invalid.one("Quantity", "too_large", "Quantity is too large."))
    assert reason is not None
    assert reason.code is FailureCode.REJECTED


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused")),
        OperationalError("COMMIT", {}, psycopg.errors.DeadlockDetected("deadlock detected")),
        Conflict("Usage was billed meanwhile; billing is retried."),
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")),
    ],
    ids=["outage", "deadlock", "usage-billed-meanwhile", "period-issued-meanwhile"],
)
def test_an_outage_or_a_race_with_another_run_is_not_the_contracts_failure(
    error: Exception,
) -> None:
    if isinstance(error, IntegrityError):
        error.orig.sqlite_errorname = "SQLITE_CONSTRAINT_UNIQUE"  # type: ignore[union-attr]
    assert reason_of(error) is None
