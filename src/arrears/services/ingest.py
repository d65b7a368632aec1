"""Ingesting consumption: a whole submission validated set-based, then saved at once.

Records are read by `consumption_records` (re-exported here). One submission (a bulk
task, or one synchronous request) is validated against the
seller's stored contracts with a handful of queries, whatever its size. If any record
breaks a rule, nothing is saved and every failing record is reported; otherwise all
new records are inserted in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from arrears.domain.clock import EARLIEST
from arrears.domain.errors import FieldError
from arrears.domain.grammar import NotInGrammar, parse_decimal, parse_instant
from arrears.domain.tasks import Outcome, RecordError
from arrears.domain.usage import (
    ContractTerms,
    ProductOverride,
    UsageCandidate,
    check_usage,
    duplicate_keys,
    key_conflicts,
)
from arrears.domain.wire import RECORD_FIELDS as _WIRE_NAMES
from arrears.services.consumption_records import (
    SubmittedRecord,
    Unconfirmed,
    confirmed,
    count_records,
    decode_records,
    decode_unconfirmed,
    read_record,
)
from arrears.store.usage import KeyStored, UsageRepository

__all__ = [
    "ApplyCarefully",
    "SubmittedRecord",
    "apply_submission",
    "count_records",
    "decode_records",
    "decode_unconfirmed",
    "read_record",
    "validate_submission",
]


class ApplyCarefully(Exception):
    """Roll back, and apply the submission again with `careful=True`: it was applied
    assuming every record valid and new, and one was not; or, applied carefully, another
    transaction stored some of the same keys meanwhile."""


# Records validated, then written, at a time by the first, trusting way of applying a
# submission: enough to make each write cheap, few enough to be freed and reused.
_CHUNK = 1_000


@dataclass(frozen=True, slots=True)
class Validated:
    """A validated submission: the outcome, and the new records to save when it passed."""

    outcome: Outcome
    new: list[UsageCandidate]


def validate_submission(
    usage: UsageRepository,
    records: Sequence[SubmittedRecord | list[RecordError]],
    *,
    submitted_at: datetime,
) -> Validated:
    """Check every record; look up all references and stored keys set-based."""
    confirmed(records)  # records read on trust become the sure ones if they were not
    errors: list[RecordError] = []
    ok: list[tuple[int, SubmittedRecord]] = []
    for index, record in enumerate(records):
        if isinstance(record, list):
            errors.extend(record)
        else:
            ok.append((index, record))
    terms, by_item_code = _references(usage, [record for _, record in ok])
    candidates: dict[int, UsageCandidate] = {}
    for index, record in ok:
        checked = _candidate(record, index, terms, by_item_code, submitted_at)
        if isinstance(checked, list):
            errors.extend(checked)
        else:
            candidates[index] = checked
    keyed = [(i, c.contract_id, c.key) for i, c in candidates.items() if c.key is not None]
    for error in duplicate_keys(keyed):
        errors.append(_record_error(error, _subscription_of(error, candidates)))
    stored = usage.stored_by_key((contract_id, key) for _, contract_id, key in keyed)
    # Most submissions bring only new keys: with nothing stored there is nothing to compare.
    duplicates, conflicts = key_conflicts(candidates, stored) if stored else ([], [])
    errors.extend(_record_error(e, _subscription_of(e, candidates)) for e in conflicts)
    if errors:
        errors.sort(key=lambda e: (e.index if e.index is not None else -1, e.field))
        return Validated(Outcome(total_records=len(records), errors=tuple(errors)), [])
    skipped = set(duplicates)
    new = [c for i, c in candidates.items() if i not in skipped]
    outcome = Outcome(
        total_records=len(records), saved_records=len(new), duplicate_records=len(skipped)
    )
    return Validated(outcome, new)


def _references(
    usage: UsageRepository, records: Sequence[SubmittedRecord]
) -> tuple[dict[str, ContractTerms], dict[str, str]]:
    """The terms of the records' contracts (locked until the transaction ends), and the
    components their item codes name: two lookups for the whole submission."""
    terms = usage.contract_terms({record.subscription_id for record in records})
    by_item_code = usage.component_ids_by_item_code(
        {record.item_code for record in records if record.item_code is not None}
    )
    return terms, by_item_code


def _subscription_of(error: FieldError, candidates: dict[int, UsageCandidate]) -> str | None:
    """The subscription of the candidate a key error names (its index is a candidate's)."""
    candidate = candidates.get(error.index) if error.index is not None else None
    return candidate.contract_id if candidate is not None else None


def apply_submission(
    usage: UsageRepository,
    records: Sequence[SubmittedRecord | list[RecordError]],
    *,
    submission_id: str,
    submitted_at: datetime,
    transferred_at: datetime,
    careful: bool,
) -> Outcome:
    """Validate, then save all new records, or none. Runs inside the caller's transaction;
    `ApplyCarefully` means the caller must roll back and call again with `careful=True`.

    Nearly every submission holds only valid, new records. Unless `careful`, this trusts
    that it does: each chunk of records is written as soon as it is validated, while the
    next is being validated, and the unique (contract, key) index confirms that no key
    was stored before or repeated. A record that breaks a rule, or a key already held,
    raises `ApplyCarefully`. Applied carefully, every record is validated first, stored
    keys are looked up (a repeat with the same values is a duplicate, not saved again),
    and the errors name every failing record."""
    if not careful:
        return _apply_trusting(
            usage,
            records,
            submission_id=submission_id,
            submitted_at=submitted_at,
            transferred_at=transferred_at,
        )
    validated = validate_submission(usage, records, submitted_at=submitted_at)
    if validated.outcome.errors:
        return validated.outcome
    # Inserted in submission order, so ids follow it. Two submissions sharing keys in
    # different orders may deadlock on PostgreSQL; the loser is rolled back whole and
    # the worker runs it again (services.tasks).
    inserted = usage.insert_new(
        validated.new, submission_id=submission_id, transferred_at=transferred_at
    )
    if inserted != len(validated.new):
        raise ApplyCarefully(submission_id)  # keys stored meanwhile by another submission
    return validated.outcome


def _apply_trusting(
    usage: UsageRepository,
    records: Sequence[SubmittedRecord | list[RecordError]],
    *,
    submission_id: str,
    submitted_at: datetime,
    transferred_at: datetime,
) -> Outcome:
    # Records read on trust hold no errors until confirmed (6 ms not to look).
    decoded: Sequence[SubmittedRecord] = (
        cast("list[SubmittedRecord]", records)
        if isinstance(records, Unconfirmed) and records.pending
        else [record for record in records if not isinstance(record, list)]
    )
    if len(decoded) != len(records):
        raise ApplyCarefully(submission_id)
    terms, by_item_code = _references(usage, decoded)
    chunk: list[UsageCandidate] = []
    try:
        with usage.writer(submission_id=submission_id, transferred_at=transferred_at) as writer:
            for index, record in enumerate(decoded):
                checked = _candidate(record, index, terms, by_item_code, submitted_at)
                if isinstance(checked, list):
                    raise ApplyCarefully(submission_id)
                chunk.append(checked)
                if len(chunk) == _CHUNK:
                    writer.write(chunk)
                    chunk = []
            if chunk:
                writer.write(chunk)
            # Records read on trust (`decode_unconfirmed`) are confirmed here, while the
            # writer still inserts the last chunks: off the path to the commit.
            if not confirmed(records):
                raise ApplyCarefully(submission_id)
    except KeyStored:
        raise ApplyCarefully(submission_id) from None
    return Outcome(total_records=len(records), saved_records=writer.written)


def _candidate(
    record: SubmittedRecord,
    index: int,
    terms: dict[str, ContractTerms],
    by_item_code: dict[str, str],
    submitted_at: datetime,
) -> UsageCandidate | list[RecordError]:
    """The record as a candidate, or every error it has."""
    # Runs once per record: the common case (a known subscription, a product named by its
    # id, a quantity sent as a number, no error) builds no error helpers and no lists.
    subscription = record.subscription_id
    contract = terms.get(subscription)
    quantity = record.quantity
    if type(quantity) is int:
        quantity = Decimal(quantity)
    price = record.price
    if type(price) is int:
        price = Decimal(price)
    code = record.item_code
    component_id = record.product_id if code is None else _by_code(code, record, by_item_code)
    due = record.due_date
    if due is None:
        due_date: datetime | None = submitted_at
    elif type(due) is datetime and due.tzinfo is UTC:
        due_date = due  # read by msgspec from a canonical text (consumption_records)
    else:
        due_date = _instant(due)
    if (
        contract is None
        or not component_id
        or type(quantity) is not Decimal
        or (price is not None and type(price) is not Decimal)
        or due_date is None
    ):
        return _every_error(record, index, terms, by_item_code, submitted_at)
    candidate = UsageCandidate(
        subscription,
        component_id,
        quantity,
        due_date,
        record.key or None,  # an empty key is no key
        record.description,
        None if price is None else ProductOverride(price_per_unit=price),
        record.due_date is None,  # due_date_defaulted
    )
    broken = check_usage(candidate, contract, index=index)
    if not broken:
        return candidate
    return [_record_error(e, subscription, _component_field(record)) for e in broken]


def _by_code(code: str, record: SubmittedRecord, by_item_code: dict[str, str]) -> str | None:
    # A record naming its product by item code takes the short way too when the code is
    # known and agrees with a productId also sent (before, every such record took
    # `_every_error`'s long way: 10,000 of bench_ingest's 100,000, about 25 ms); anything
    # else is None, and `_every_error` names what is wrong (through `_component`).
    found = by_item_code.get(code)
    return found if record.product_id is None or record.product_id == found else None


def _instant(text: object) -> datetime | None:
    try:
        return parse_instant(text)
    except NotInGrammar:
        return None


def _component_field(record: SubmittedRecord) -> str:
    return "productId" if record.product_id is not None else "itemCode"


def _every_error(
    record: SubmittedRecord,
    index: int,
    terms: dict[str, ContractTerms],
    by_item_code: dict[str, str],
    submitted_at: datetime,
) -> UsageCandidate | list[RecordError]:
    """The record's candidate, the long way: every value read by its grammar and every
    rule checked, so that no fault hides another (an unknown subscription does not hide
    a quantity with seven decimals, nor an unknown item code a negative quantity)."""
    subscription = record.subscription_id
    error = _error_maker(index, subscription)
    errors: list[RecordError] = []
    faulty: set[str] = set()  # domain fields already named, not to be named twice
    quantity, price, due_date = _read_values(record, submitted_at, error, errors, faulty)
    resolved = _component(record, by_item_code, error)
    if isinstance(resolved, list):
        errors.extend(resolved)
        faulty.add("component")
    contract = terms.get(subscription)
    if contract is None:
        errors.append(
            error("subscriptionId", "not_found", f"There is no subscription {subscription}.")
        )
    component_id = resolved if isinstance(resolved, str) else ""
    if contract is None or not component_id:
        # Without a contract (or a product), only the record's own values can be judged:
        # terms that every value passes leave just those rules.
        faulty.add("component")
        contract = ContractTerms(subscription, EARLIEST, None, frozenset({component_id}))
    candidate = UsageCandidate(
        subscription,
        component_id,
        Decimal(0) if quantity is None else quantity,
        contract.start_date if due_date is None else due_date,
        record.key or None,
        record.description,
        None if price is None else ProductOverride(price_per_unit=price),
        record.due_date is None,
    )
    broken = check_usage(candidate, contract, index=index)
    errors.extend(
        _record_error(e, subscription, _component_field(record))
        for e in broken
        if e.field not in faulty
    )
    return errors or candidate


def _read_values(
    record: SubmittedRecord,
    submitted_at: datetime,
    error: _ErrorMaker,
    errors: list[RecordError],
    faulty: set[str],
) -> tuple[Decimal | None, Decimal | None, datetime | None]:
    """The record's quantity, price and due date, each read by its grammar; one that is
    missing or not in it is None, its error appended to `errors` and its domain field
    to `faulty`."""

    def value(read: Callable[[object], Any], raw: object, field: str, domain_name: str) -> Any:
        try:
            return read(raw)
        except NotInGrammar as fault:
            errors.append(error(field, fault.code, fault.message))
            faulty.add(domain_name)
            return None

    if record.quantity is None:
        errors.append(error("quantity", "required", "quantity is required."))
        faulty.add("quantity")
        quantity = None
    else:
        quantity = value(parse_decimal, record.quantity, "quantity", "quantity")
    price = None if record.price is None else value(parse_decimal, record.price, "price", "price")
    due_date = (
        submitted_at
        if record.due_date is None
        else value(parse_instant, record.due_date, "dueDate", "due_date")
    )
    return quantity, price, due_date


def _component(
    record: SubmittedRecord, by_item_code: dict[str, str], error: _ErrorMaker
) -> str | list[RecordError]:
    """The component a record names by `productId` or `itemCode` (or both), or why not."""
    if record.item_code is None:
        if not record.product_id:
            return [error("productId", "required", "Name the product by productId or itemCode.")]
        return record.product_id
    from_code = by_item_code.get(record.item_code)
    if from_code is None:
        return [error("itemCode", "not_found", f"No product has itemCode {record.item_code!r}.")]
    if record.product_id is not None and from_code != record.product_id:
        return [error("itemCode", "mismatch", "productId and itemCode name different products.")]
    return from_code


_ErrorMaker = Callable[[str, str, str], RecordError]


def _error_maker(index: int, subscription: str) -> _ErrorMaker:
    def error(field: str, code: str, message: str) -> RecordError:
        return RecordError(index, subscription, field, code, message)

    return error


def _record_error(
    error: FieldError, subscription_id: str | None, component_field: str = "productId"
) -> RecordError:
    field = (
        component_field if error.field == "component" else _WIRE_NAMES.get(error.field, error.field)
    )
    return RecordError(error.index, subscription_id, field, error.code, error.message)
