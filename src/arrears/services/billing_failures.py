"""A billing failure is never silent (docs/billing.md, "When a contract cannot be billed").

Wherever one contract's billing is attempted — by a billing run, or on a request
(interim billing, an order that bills, a preview) — the attempt runs inside `attempt`
or `on_request`. An attempt that fails for a reason of the contract's own is recorded
against the contract in a transaction of its own (the billing transaction has rolled
back), logged with the contract and its seller, and counted in the metrics; an attempt
that bills the contract clears what was recorded. Failures that are no fault of the
contract — the database unreachable, read-only or full, a deadlock, another run that
billed the contract first — are not recorded: they are retried as before.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, StatementError

from arrears import metrics
from arrears.domain.billing_failures import BillingFailure, FailureCode, FailureReason
from arrears.domain.clock import Clock
from arrears.domain.errors import ArrearsError, Conflict, NotFound
from arrears.domain.paging import Page, PageRequest
from arrears.store.billing_failures import ListedFailure
from arrears.store.unit_of_work import Database, RegistryWork, outage_of

__all__ = [
    "BillingFailed",
    "ListedFailure",
    "attempt",
    "failing_contracts",
    "listed_failures",
    "on_request",
    "reason_of",
]

log = logging.getLogger("arrears.billing")


class BillingFailed(Conflict):
    """The contract cannot be billed (409, `type` ending in `billing-failed`): its state,
    not the request, is at fault, and the same request succeeds once the cause is gone."""

    title = "Billing failed"
    slug = "billing-failed"

    def __init__(self, contract_id: str, reason: FailureReason) -> None:
        super().__init__(f"Contract {contract_id} cannot be billed: {reason.message}")
        self.contract_id = contract_id
        self.reason = reason


@contextmanager
def attempt(database: Database, clock: Clock, seller_id: str, contract_id: str) -> Iterator[None]:
    """One billing run's attempt at the contract, run inside the block. A failure of the
    contract's own is recorded and logged; any failure is raised again, for the run to
    count it and go on with the other contracts. Success clears a recorded failure."""
    try:
        yield
    except Exception as error:
        reason = reason_of(error)
        if reason is None:
            log.warning(
                "billing contract %s of seller %s was interrupted (%s); the next run retries it",
                contract_id,
                seller_id,
                type(error).__name__,
                extra={"seller_id": seller_id, "contract_id": contract_id},
            )
        else:
            _record(database, clock, seller_id, contract_id, reason=reason, error=error, path="run")
        raise
    try:
        _clear(database, seller_id, contract_id)
    except Exception:  # billed all the same: the run must not count it as failed
        log.exception("clearing the billing failure of contract %s failed", contract_id)


@contextmanager
def on_request(
    database: Database, clock: Clock, seller_id: str, contract_id: str, *, bills: bool = True
) -> Iterator[None]:
    """A request's billing of the contract, run inside the block (`bills`: it issues
    invoices; False for a preview). A failure of the contract's own is recorded and
    raised as `BillingFailed`; the request's own errors (`ArrearsError`) and outages are
    raised as they are. A request that bills clears a recorded failure."""
    try:
        yield
    except ArrearsError:
        raise
    except Exception as error:
        reason = reason_of(error)
        if reason is None:
            raise
        _record(database, clock, seller_id, contract_id, reason=reason, error=error, path="request")
        raise BillingFailed(contract_id, reason) from error
    if bills:
        _clear(database, seller_id, contract_id)


def failing_contracts(database: Database) -> int:
    """How many contracts cannot be billed now, across sellers; also what the
    `arrears_billing_failing_contracts` gauge shows from now on."""
    with database.registry_work("read") as work:
        count = work.billing_failure_log.count()
    metrics.BILLING_FAILING_CONTRACTS.set(count)
    return count


def listed_failures(work: RegistryWork, page: PageRequest) -> Page[ListedFailure]:
    """Contracts whose last billing attempt failed, of every seller, most recently
    failed first."""
    return work.billing_failure_log.page(page)


# -- what counts as the contract's failure -------------------------------------------------

# PostgreSQL SQLSTATEs of a transaction that lost a race: class 40 (serialization
# failure, deadlock), lock_not_available, unique_violation (another run issued the
# period's invoice first). Retried, never the contract's fault.
_RACES = ("40", "55P03", "23505")
# SQLite's extended codes of the same unique-key race.
_SQLITE_RACES = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
# PostgreSQL's numeric_value_out_of_range, datetime_field_overflow.
_SQLSTATE_CODES = {"22003": FailureCode.AMOUNT_OUT_OF_RANGE, "22008": FailureCode.DATE_OUT_OF_RANGE}


def reason_of(error: BaseException) -> FailureReason | None:
    """Why `error` keeps the contract from being billed; None when it is no fault of
    the contract (an outage of the database, a race with another run): then it is not
    recorded, and the attempt is simply retried."""
    if outage_of(error) is not None:
        return None
    chain = list(_chain(error))
    if any(_lost_a_race(cause) for cause in chain):
        return None
    for cause in chain:
        if isinstance(cause, ArrearsError):
            # Raised on purpose, and meant for a client: its detail may be shown.
            return FailureReason(FailureCode.REJECTED, cause.detail, type(cause).__name__)
    name = f"{type(error).__module__}.{type(error).__qualname__}"
    for cause in chain:
        code = _code(cause)
        if code is not None:
            return FailureReason.of(code, f"{type(cause).__module__}.{type(cause).__qualname__}")
    return FailureReason.of(FailureCode.UNEXPECTED, name)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped in it, and its causes and contexts."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        cause = pending.pop(0)
        if cause is None or id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        orig = cause.orig if isinstance(cause, StatementError) else None
        pending += [orig if isinstance(orig, BaseException) else None]
        pending += [cause.__cause__, cause.__context__]


def _lost_a_race(cause: BaseException) -> bool:
    if isinstance(cause, Conflict | NotFound) and not isinstance(cause, BillingFailed):
        return True  # e.g. "Usage was billed meanwhile", a period issued by another run
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_RACES):
        return True
    return isinstance(cause, sqlite3.IntegrityError) and cause.sqlite_errorname in _SQLITE_RACES


def _code(cause: BaseException) -> FailureCode | None:
    text = str(cause).lower()
    if (
        isinstance(cause, ValueError | OverflowError)
        and "out of range" in text
        and ("year" in text or "date" in text)
    ):
        return FailureCode.DATE_OUT_OF_RANGE  # datetime: "year 10999 is out of range"
    if isinstance(cause, ArithmeticError):
        return FailureCode.AMOUNT_OUT_OF_RANGE  # decimal.InvalidOperation, Overflow
    if isinstance(cause, ValueError) and ("too large" in text or "decimal places" in text):
        return FailureCode.AMOUNT_OUT_OF_RANGE  # store.types refusing a value
    if isinstance(cause, sqlite3.Error) and ("overflow" in text or "too big" in text):
        return FailureCode.AMOUNT_OUT_OF_RANGE  # SUM() of SQLite's integers
    sqlstate = getattr(cause, "sqlstate", None)
    if isinstance(cause, DBAPIError):
        sqlstate = getattr(cause.orig, "sqlstate", None)
    return _SQLSTATE_CODES.get(sqlstate) if isinstance(sqlstate, str) else None


# -- recording -----------------------------------------------------------------------------


def _record(
    database: Database,
    clock: Clock,
    seller_id: str,
    contract_id: str,
    *,
    reason: FailureReason,
    error: BaseException,
    path: str,
) -> None:
    """Record the failed attempt in a transaction of its own and log it. If even that
    fails (the database went away meanwhile), the log line still says what happened."""
    failure: BillingFailure | None = None
    try:
        with database.unit_of_work(seller_id) as work:
            failure = work.billing_failures.record(contract_id, reason, clock.now())
    except Exception:
        log.exception("recording the billing failure of contract %s failed", contract_id)
    if failure is None:
        attempts = 0
    else:
        attempts = failure.attempts
        metrics.BILLING_FAILURES.labels(path).inc()
    # The first failure gets the traceback; each repeat (every run) one line.
    known = attempts > 1
    log.log(
        logging.WARNING if known else logging.ERROR,
        "billing contract %s of seller %s failed (%s, attempt %d): %s",
        contract_id,
        seller_id,
        reason.code.value,
        attempts,
        reason.message,
        exc_info=None if known else error,
        extra={
            "seller_id": seller_id,
            "contract_id": contract_id,
            "billing_failure": reason.code.value,
            "error": reason.error,
        },
    )


def _clear(database: Database, seller_id: str, contract_id: str) -> None:
    """Forget the contract's recorded failure, if it has one: a read when it has none,
    as almost every contract."""
    with database.unit_of_work(seller_id, "read") as work:
        if not work.billing_failures.of([contract_id]):
            return
    with database.unit_of_work(seller_id) as work:
        work.billing_failures.clear([contract_id])
