"""Use cases of the tenant registry: sellers, API keys, authentication."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from arrears.domain.clock import Clock
from arrears.domain.errors import FieldError, Invalid, NotFound, Unauthorized
from arrears.domain.ids import new_id
from arrears.domain.money import currency
from arrears.store.sellers import ApiKeyRecord, SellerRecord
from arrears.store.unit_of_work import RegistryWork

__all__ = [
    "IssuedKey",
    "authenticate",
    "create_seller",
    "issue_key",
    "revoke_key",
    "seller",
]

KEY_PREFIX = "arr"
# Anchored: the API validates with it too, and pydantic (like JSON Schema) only searches.
INVOICE_PREFIX_PATTERN = r"^[A-Z0-9]{1,20}$"
SELLER_NAME_LENGTH = (1, 200)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key; `api_key` is the only copy of the secret there will ever be."""

    seller_id: str
    key_id: str
    api_key: str


def create_seller(
    work: RegistryWork, clock: Clock, *, name: str, currency_code: str, invoice_prefix: str
) -> IssuedKey:
    """Register a seller and issue its first API key."""
    errors: list[FieldError] = []
    name = name.strip()
    shortest, longest = SELLER_NAME_LENGTH
    if not shortest <= len(name) <= longest:
        errors.append(FieldError("name", "invalid_length", "name must be 1 to 200 characters."))
    try:
        currency(currency_code)
    except Invalid as bad:
        errors.extend(FieldError("currency", e.code, e.message) for e in bad.errors)
    if not re.fullmatch(INVOICE_PREFIX_PATTERN, invoice_prefix):
        errors.append(
            FieldError(
                "invoicePrefix",
                "invalid_format",
                "invoicePrefix must be 1 to 20 upper-case letters or digits.",
            )
        )
    if errors:
        raise Invalid(errors)
    seller = SellerRecord(
        id=new_id(),
        name=name,
        currency=currency_code,
        invoice_prefix=invoice_prefix,
        created_at=clock.now(),
    )
    work.sellers.add(seller)
    return issue_key(work, clock, seller.id)


def issue_key(work: RegistryWork, clock: Clock, seller_id: str) -> IssuedKey:
    """Issue a new API key for an existing seller."""
    registry = work.sellers
    if registry.get(seller_id) is None:
        raise NotFound(f"There is no seller {seller_id}.")
    key_id = new_id()
    secret = secrets.token_hex(32)
    registry.add_key(
        ApiKeyRecord(
            id=key_id,
            seller_id=seller_id,
            secret_sha256=_digest(secret),
            created_at=clock.now(),
            revoked_at=None,
        )
    )
    return IssuedKey(seller_id=seller_id, key_id=key_id, api_key=f"{KEY_PREFIX}_{key_id}_{secret}")


def revoke_key(work: RegistryWork, clock: Clock, seller_id: str, key_id: str) -> None:
    """Revoke a key; requests with it answer 401 from the next request on."""
    if not work.sellers.revoke_key(seller_id, key_id, clock.now()):
        raise NotFound(f"Seller {seller_id} has no live key {key_id}.")


def authenticate(work: RegistryWork, api_key: str) -> str:
    """The seller id that `api_key` belongs to; `Unauthorized` for anything else."""
    prefix, _, rest = api_key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or not key_id or not secret:
        raise Unauthorized("The API key is malformed.")
    record = work.sellers.find_key(key_id)
    # Compare digests even for unknown keys so timing does not reveal which key ids exist.
    expected = record.secret_sha256 if record is not None else _digest("")
    if not hmac.compare_digest(expected, _digest(secret)) or record is None:
        raise Unauthorized("The API key is not valid.")
    if record.revoked_at is not None:
        raise Unauthorized("The API key has been revoked.")
    return record.seller_id


def seller(work: RegistryWork, seller_id: str) -> SellerRecord:
    """The seller; `NotFound` for an unknown id."""
    found = work.sellers.get(seller_id)
    if found is None:  # sellers are never deleted, but a 500 is never the answer
        raise NotFound(f"There is no seller {seller_id}.")
    return found


def _digest(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash suffices: there is nothing to brute-force,
    # and authentication stays cheap on every request.
    return hashlib.sha256(secret.encode()).hexdigest()
