"""Metered usage and the rules every usage record must meet (SPEC §5, §6).

The same rules serve the contract usage API (one entry at a time), the bulk
consumption tasks and the older consumption endpoints. Errors name fields by their
meaning (`quantity`, `due_date`, ...); each wire surface maps them to its own names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal

from arrears.domain.clock import in_range
from arrears.domain.errors import FieldError
from arrears.domain.limits import (
    EARLIEST,
    LATEST,
    MAX_INTEGER_DIGITS,
    PRICE_PLACES,
    QUANTITY_PLACES,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "ContractTerms",
    "ProductOverride",
    "UsageCandidate",
    "UsageEntry",
    "check_decimal",
    "check_usage",
    "contract_rules",
    "duplicate_keys",
    "key_conflicts",
    "product_override",
]

MAX_KEY_LENGTH = 200
MAX_TEXT_LENGTH = 1000
_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
_OUT_OF_RANGE = f"The due date must lie in {EARLIEST.year} to {LATEST.year - 1}."
_QUANTA = {places: Decimal(1).scaleb(-places) for places in (QUANTITY_PLACES, PRICE_PLACES)}
# Below _LIMIT, a value quantized to its places has at most 12 + 6 digits: inside this
# precision, so quantizing never fails, whatever the thread's own decimal context.
_EXACT = Context(prec=MAX_INTEGER_DIGITS + max(_QUANTA) + 1)


@dataclass(frozen=True, slots=True)
class ProductOverride:
    """A price (and line text) for one entry, billed on its own line outside tiers and
    free quota."""

    price_per_unit: Decimal | None = None
    name: str | None = None
    description: str | None = None


def product_override(
    price: Decimal | None, name: str | None, description: str | None
) -> ProductOverride | None:
    """The override these values make: none when there is neither a price nor any text
    (an empty override is stored, billed and compared as no override)."""
    if price is None and not name and not description:
        return None
    return ProductOverride(price_per_unit=price, name=name, description=description)


@dataclass(slots=True)
class UsageCandidate:
    """A usage record as submitted, its references not yet resolved.

    Not frozen, though nothing changes a candidate once built: a bulk submission builds
    one per record, and a frozen dataclass takes three times as long to build."""

    contract_id: str
    component_id: str
    quantity: Decimal
    due_date: datetime
    key: str | None = None
    memo: str | None = None
    override: ProductOverride | None = None
    due_date_defaulted: bool = False
    """The sender gave no due date; it is the time of the submission."""

    def same_values(self, entry: UsageEntry) -> bool:
        """True when `entry` holds exactly this record (a replay of the same key). A
        due date the sender did not give is not compared: a retried submission gets
        a later default, yet it is the same record."""
        return (
            self.component_id == entry.component_id
            and self.quantity == entry.quantity
            and (self.due_date_defaulted or self.due_date == entry.due_date)
            and self.memo == entry.memo
            and self.override == entry.override
        )


@dataclass(frozen=True, slots=True)
class UsageEntry:
    """A stored usage record; `invoice_id` is set once, by the invoice that bills it."""

    id: int
    contract_id: str
    component_id: str
    quantity: Decimal
    due_date: datetime
    transferred_at: datetime
    key: str | None = None
    memo: str | None = None
    override: ProductOverride | None = None
    invoice_id: str | None = None
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class ContractTerms:
    """What usage validation needs to know of a contract."""

    contract_id: str
    start_date: datetime
    end_date: datetime | None
    component_ids: frozenset[str]
    """The components metered by the contract's plan variant."""
    closed: bool = False
    """The final invoice is issued: the contract takes no more usage."""


def check_decimal(
    value: Decimal, field: str, places: int, *, index: int | None = None
) -> FieldError | None:
    """The error of a quantity or price, if any: finite, ≥ 0, at most `places` decimal
    places, below 10**MAX_INTEGER_DIGITS."""
    # Every usage record of a bulk submission comes here: each check is one cheap test.
    if not value.is_finite():
        return FieldError(field, "not_finite", f"{field} must be a finite number.", index)
    if value < 0:
        return FieldError(field, "negative", f"{field} must not be negative.", index)
    if value >= _LIMIT:
        return FieldError(
            field, "too_large", f"{field} must be below 10^{MAX_INTEGER_DIGITS}.", index
        )
    # Equal after quantizing: no non-zero digit lies beyond `places` (trailing zeros
    # do not count, as in `money.decimal_places`).
    if value.quantize(_QUANTA[places], None, _EXACT) != value:  # positional: a faster call
        return FieldError(
            field, "too_many_decimals", f"{field} has more than {places} decimal places.", index
        )
    return None


def check_usage(
    candidate: UsageCandidate, terms: ContractTerms, *, index: int | None = None
) -> list[FieldError]:
    """Every rule `candidate` breaks against its contract's `terms` (empty when valid)."""
    # Runs once per record of a bulk submission: a valid record builds nothing but the
    # empty list.
    errors: list[FieldError] = []
    error = check_decimal(candidate.quantity, "quantity", QUANTITY_PLACES, index=index)
    if error is not None:
        errors.append(error)
    override = candidate.override
    if override is not None and override.price_per_unit is not None:
        error = check_decimal(override.price_per_unit, "price", PRICE_PLACES, index=index)
        if error is not None:
            errors.append(error)
    if terms.closed:
        errors.append(
            FieldError(
                "contract",
                "contract_closed",
                "The contract has its final invoice; it takes no more usage.",
                index,
            )
        )
    due_date = candidate.due_date
    if not in_range(due_date):
        errors.append(FieldError("due_date", "out_of_range", _OUT_OF_RANGE, index))
    errors.extend(contract_rules(candidate.component_id, due_date, terms, index=index))
    if candidate.key is not None and len(candidate.key) > MAX_KEY_LENGTH:
        errors.append(FieldError("key", "too_long", f"key is longer than {MAX_KEY_LENGTH}.", index))
    if candidate.memo is not None and len(candidate.memo) > MAX_TEXT_LENGTH:
        errors.append(
            FieldError("memo", "too_long", f"The text is longer than {MAX_TEXT_LENGTH}.", index)
        )
    return errors


def contract_rules(
    component_id: str | None,
    due_date: datetime | None,
    terms: ContractTerms,
    *,
    index: int | None = None,
) -> list[FieldError]:
    """The rules of `terms` that a component and a due date break (either may be None:
    not known, not judged): metered by the plan variant, within the contract."""
    errors: list[FieldError] = []
    if component_id is not None and component_id not in terms.component_ids:
        errors.append(
            FieldError(
                "component",
                "not_in_plan",
                f"Component {component_id} is not metered by the contract's plan variant.",
                index,
            )
        )
    if due_date is None:
        return errors
    if due_date < terms.start_date:
        errors.append(
            FieldError(
                "due_date",
                "before_contract_start",
                f"The due date lies before the contract's start ({_z(terms.start_date)}).",
                index,
            )
        )
    if terms.end_date is not None and due_date > terms.end_date:
        errors.append(
            FieldError(
                "due_date",
                "after_contract_end",
                f"The due date lies after the contract's end ({_z(terms.end_date)}).",
                index,
            )
        )
    return errors


def duplicate_keys(keyed: Iterable[tuple[int, str, str]]) -> list[FieldError]:
    """Errors for records that repeat an earlier record's (contract, key) in the same
    submission; `keyed` is (index, contract id, key) in submission order."""
    first: dict[tuple[str, str], int] = {}
    errors = []
    for index, contract_id, key in keyed:
        earlier = first.setdefault((contract_id, key), index)
        if earlier != index:
            errors.append(
                FieldError(
                    "key",
                    "duplicate_in_submission",
                    f"Record {earlier} of this submission has the same subscription and key.",
                    index,
                )
            )
    return errors


def key_conflicts(
    candidates: Mapping[int, UsageCandidate], stored: Mapping[tuple[str, str], UsageEntry]
) -> tuple[list[int], list[FieldError]]:
    """Split keyed candidates whose key is already stored on their contract into
    duplicates (identical values: not saved again) and conflicts (different values)."""
    duplicates: list[int] = []
    errors: list[FieldError] = []
    for index, candidate in candidates.items():
        if candidate.key is None:
            continue
        entry = stored.get((candidate.contract_id, candidate.key))
        if entry is None:
            continue
        if candidate.same_values(entry):
            duplicates.append(index)
        else:
            errors.append(
                FieldError(
                    "key",
                    "key_reused",
                    f"Key {candidate.key!r} was already used on this subscription for a "
                    f"record with different values (entry {entry.id}).",
                    index,
                )
            )
    return duplicates, errors


def _z(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")
