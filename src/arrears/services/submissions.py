"""Applying a submission of usage (SPEC §5-§7): the one way the task worker, the older
synchronous `PUT` and orders store it, and how each try is retried.

Nearly every submission holds only valid, new records, so it is first applied trusting
that it does (`ingest.apply_submission`); when one is not, or when a concurrent
submission stored one of its keys meanwhile, the transaction is rolled back
(`ApplyCarefully`) and the submission applied again, carefully. A deadlock or a
serialization failure (PostgreSQL) rolls back the whole transaction, which simply runs
again. Every try is a transaction of its own: none leaves anything behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from arrears.domain import wire
from arrears.domain.clock import Clock
from arrears.domain.errors import Conflict, FieldError, Invalid
from arrears.domain.ids import new_id
from arrears.domain.tasks import Outcome, RecordError
from arrears.domain.usage import UsageCandidate, UsageEntry, key_conflicts
from arrears.services import ingest
from arrears.services.ingest import ApplyCarefully
from arrears.store.unit_of_work import Database, UnitOfWork
from arrears.store.usage import UsageRepository

__all__ = [
    "Applied",
    "ApplyCarefully",
    "KeptRacing",
    "KeyReused",
    "Submission",
    "apply",
    "apply_now",
    "insert_new",
    "settled",
    "split_by_key",
]

log = logging.getLogger("arrears.submissions")

T = TypeVar("T")

# One trusting try, then careful ones while concurrent submissions store the same keys.
_TRIES = 4

# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled
# back whole and may simply run again.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


class KeptRacing(Conflict):
    """Every try was rolled back by concurrent submissions of the same keys."""

    def __init__(self) -> None:
        super().__init__(
            "The submission kept racing concurrent submissions of the same keys; retry."
        )


class KeyReused(Conflict):
    """A key already stored on the contract, sent again with other values."""

    def __init__(self, key: str, entry_id: int) -> None:
        super().__init__(
            f"Key {key!r} was already used on this contract for entry {entry_id} "
            "with different values."
        )


def settled(attempt: Callable[[bool], T], *, label: str) -> T:
    """`attempt(careful)`, each call in a transaction of its own, until one returns.

    The first call trusts (`careful` False); after `ApplyCarefully` the next ones are
    careful. A transient failure of the database runs the same call again. `KeptRacing`
    when no try settled; any other exception is the caller's."""
    careful = False
    for _ in range(_TRIES):
        try:
            return attempt(careful)
        except ApplyCarefully:
            careful = True  # rolled back; validate every record and look keys up first
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) not in _TRANSIENT_SQLSTATES:
                raise
            log.warning("%s: %s; retrying", label, type(error.orig).__name__)
    raise KeptRacing()


@dataclass(frozen=True, slots=True)
class Submission:
    """Records of one seller to apply all or nothing, under one submission id."""

    seller_id: str
    submission_id: str
    records: Sequence[ingest.SubmittedRecord | list[RecordError]]
    submitted_at: datetime | None = None
    """Default due date of its records; None: the instant of each try."""


@dataclass(frozen=True, slots=True)
class Applied:
    """A try's outcome, inside its still open transaction."""

    work: UnitOfWork
    outcome: Outcome


def apply(
    submission: Submission,
    clock: Clock,
    transaction: Callable[[], AbstractContextManager[UnitOfWork]],
    settle: Callable[[Applied], T],
) -> T:
    """Apply `submission` in a transaction opened by `transaction()` (which may check
    first that the work is still the caller's), and `settle` the outcome in the same
    transaction; retried as `settled` says. Saves all the submission's new records, or
    none (an outcome with errors saves none)."""

    def attempt(careful: bool) -> T:
        # The try's instant, read before its transaction holds anything.
        transferred_at = clock.now()
        with transaction() as work:
            outcome = ingest.apply_submission(
                work.usage,
                submission.records,
                submission_id=submission.submission_id,
                submitted_at=submission.submitted_at or transferred_at,
                transferred_at=transferred_at,
                careful=careful,
            )
            return settle(Applied(work, outcome))

    return settled(attempt, label=f"submission {submission.submission_id}")


def apply_now(
    database: Database,
    clock: Clock,
    seller_id: str,
    subscription_id: str,
    records: Sequence[Any],
) -> list[UsageEntry]:
    """Apply one subscription's records now (the older `PUT`), all or nothing, and
    answer the entries they stand for, in their order (new ones, and stored ones whose
    key they repeat). `Invalid` names every failing record as `consumptions[i].<field>`;
    an unknown subscription is named once, with the faults that can be judged without
    it. A concurrent request storing some of the same keys makes them duplicates."""
    read = [_subscription_record(r, i, subscription_id) for i, r in enumerate(records)]
    submission = Submission(seller_id, new_id(), read)

    @contextmanager
    def known_subscription() -> Iterator[UnitOfWork]:
        with database.unit_of_work(seller_id) as work:
            if not work.usage.contract_terms([subscription_id]):
                _refuse_unknown_subscription(work.usage, clock, subscription_id, read)
            yield work

    def entries(applied: Applied) -> list[UsageEntry]:
        if applied.outcome.errors:
            raise Invalid([_field_error(e) for e in applied.outcome.errors])
        return _in_record_order(applied.work.usage, subscription_id, submission)

    return apply(submission, clock, known_subscription, entries)


def _subscription_record(
    record: Any, index: int, subscription_id: str
) -> ingest.SubmittedRecord | list[RecordError]:
    if isinstance(record, dict) and wire.SUBSCRIPTION_ID in record:
        return [
            RecordError(
                index,
                subscription_id,
                wire.SUBSCRIPTION_ID,
                "unknown_field",
                "A record here names no subscription: the body's subscriptionId is theirs.",
            )
        ]
    if isinstance(record, dict):
        record = {**record, wire.SUBSCRIPTION_ID: subscription_id}
    return ingest.read_record(record, index)


def _in_record_order(
    usage: UsageRepository, subscription_id: str, submission: Submission
) -> list[UsageEntry]:
    """The entries the records stand for, in the records' order: a keyed record's entry
    (new, or stored before with its key), an unkeyed one's new entry (a submission's
    entries have ascending ids in its order)."""
    submitted = [r for r in submission.records if isinstance(r, ingest.SubmittedRecord)]
    keys = {(subscription_id, r.key) for r in submitted if r.key}
    by_key = {key: entry for (_, key), entry in usage.stored_by_key(keys).items()}
    unkeyed: list[UsageEntry] = []
    for entry in usage.entries_of_submission(submission.submission_id):
        if entry.key:
            by_key[entry.key] = entry
        else:
            unkeyed.append(entry)
    in_order = iter(unkeyed)
    return [by_key[r.key] if r.key else next(in_order) for r in submitted]


def _refuse_unknown_subscription(
    usage: UsageRepository,
    clock: Clock,
    subscription_id: str,
    records: Sequence[ingest.SubmittedRecord | list[RecordError]],
) -> None:
    """The unknown subscription, named once, with every fault of the records that can
    be judged without it (a quantity with seven places is not hidden behind it)."""
    outcome = ingest.validate_submission(usage, records, submitted_at=clock.now()).outcome
    unknown = FieldError(
        wire.SUBSCRIPTION_ID, "not_found", f"There is no subscription {subscription_id}."
    )
    raise Invalid(
        [unknown, *(_field_error(e) for e in outcome.errors if e.field != wire.SUBSCRIPTION_ID)]
    )


def _field_error(error: RecordError) -> FieldError:
    field = wire.item_path(wire.RECORDS, error.index, error.field)
    return FieldError(field, error.code, error.message, error.index)


# -- usage already validated (orders) ---------------------------------------------------


def split_by_key(
    usage: UsageRepository, candidates: Sequence[UsageCandidate]
) -> tuple[list[UsageCandidate], list[UsageEntry]]:
    """The valid `candidates` that are new, and the stored entries whose key and values
    the others repeat (not saved again). A key stored with other values: `KeyReused`."""
    stored = usage.stored_by_key((c.contract_id, c.key) for c in candidates if c.key)
    if not stored:  # most usage brings only new keys: nothing to compare
        return list(candidates), []
    by_index = dict(enumerate(candidates))
    duplicates, conflicts = key_conflicts(by_index, stored)
    if conflicts:  # the first, in the candidates' order
        reused = by_index[conflicts[0].index or 0]
        key = reused.key or ""
        raise KeyReused(key, stored[(reused.contract_id, key)].id)
    repeated = [by_index[i] for i in duplicates]
    skipped = set(duplicates)
    new = [c for i, c in by_index.items() if i not in skipped]
    return new, [stored[(c.contract_id, c.key or "")] for c in repeated]


def insert_new(
    usage: UsageRepository,
    new: Sequence[UsageCandidate],
    *,
    submission_id: str,
    transferred_at: datetime,
) -> None:
    """Insert `new` (from `split_by_key`), all of it: `ApplyCarefully` when another
    transaction stored some of the same keys meanwhile (roll back and try again)."""
    inserted = usage.insert_new(new, submission_id=submission_id, transferred_at=transferred_at)
    if inserted != len(new):
        raise ApplyCarefully(submission_id)
