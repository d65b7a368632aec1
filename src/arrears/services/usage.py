"""Use cases of metered usage on the contract usage API (SPEC §5)."""

from __future__ import annotations

from arrears.domain import wire
from arrears.domain.clock import Clock
from arrears.domain.errors import Conflict, Invalid, NotFound
from arrears.domain.ids import new_id
from arrears.domain.paging import Page, PageRequest
from arrears.domain.usage import ContractTerms, UsageCandidate, UsageEntry, check_usage
from arrears.services.submissions import KeyReused
from arrears.store.unit_of_work import UnitOfWork
from arrears.store.usage import UsageFilter, UsageRepository

__all__ = ["UsageFilter", "delete_usage", "post_usage", "terms_of", "usage_of"]

# Tries at a free random id before giving up; one nearly always suffices (a usage id is
# taken with a chance of about one in 10**10 per billion stored entries).
_ID_DRAWS = 3


def post_usage(
    work: UnitOfWork, clock: Clock, candidate: UsageCandidate
) -> tuple[UsageEntry, bool]:
    """Store one usage entry; returns it and whether it is new.

    With a `Key` already used on the contract, identical values return the stored entry
    (not new) and different values are a `Conflict`. The unique (contract, key) index
    decides, not an earlier lookup, so concurrent posts of one key store it once."""
    usage = work.usage
    terms = usage.terms_of(candidate.contract_id)
    if terms is None:
        raise NotFound(f"There is no contract {candidate.contract_id}.")
    if terms.closed:
        raise Conflict(
            f"Contract {candidate.contract_id} has its final invoice; it takes no more usage."
        )
    errors = check_usage(candidate, terms)
    if errors:
        raise Invalid([wire.usage_error(error) for error in errors])
    # Insert first: a new key (the common case) costs one statement, a replay two.
    submission_id = new_id()
    for _ in range(_ID_DRAWS):
        entry = usage.insert_one(candidate, submission_id=submission_id, transferred_at=clock.now())
        if entry is not None:
            return entry, True
        stored = _stored(usage, candidate)
        if stored is not None:
            return stored, False
        # Skipped, yet no entry holds its key: the random id it drew is another entry's
        # (domain.ids.UsageIds). Draw again.
    raise Conflict("The usage entry could not be stored; retry the request.")


def terms_of(work: UnitOfWork, contract_id: str) -> ContractTerms | None:
    """The contract's rules for usage; None for an unknown or foreign contract."""
    return work.usage.terms_of(contract_id)


def usage_of(
    work: UnitOfWork, contract_id: str, usage_filter: UsageFilter, page: PageRequest
) -> Page[UsageEntry]:
    """The contract's usage entries, latest due date first; `NotFound` for a foreign
    contract."""
    work.contracts.get(contract_id)
    return work.usage.entries(contract_id, usage_filter, page)


def delete_usage(work: UnitOfWork, contract_id: str, usage_id: int) -> None:
    """Delete an unbilled entry; a billed one is a `Conflict`."""
    work.usage.delete_unbilled(contract_id, usage_id)


def _stored(usage: UsageRepository, candidate: UsageCandidate) -> UsageEntry | None:
    if candidate.key is None:
        return None
    entry = usage.stored_by_key([(candidate.contract_id, candidate.key)]).get(
        (candidate.contract_id, candidate.key)
    )
    if entry is None:
        return None
    if not candidate.same_values(entry):
        raise KeyReused(candidate.key, entry.id)
    return entry
