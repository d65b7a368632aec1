"""The seller's profile and its customers' details (SPEC §12): editable at any time,
while every issued invoice keeps the parties as they were when it was issued."""

from __future__ import annotations

from arrears.domain.catalog import Customer
from arrears.domain.clock import Clock
from arrears.domain.errors import NotFound
from arrears.domain.profiles import SellerProfile
from arrears.store.unit_of_work import UnitOfWork

__all__ = ["CUSTOMER_FIELDS", "seller_profile", "set_seller_profile", "update_customer"]

CUSTOMER_FIELDS = frozenset(
    {
        "company_name",
        "first_name",
        "last_name",
        "email_address",
        "external_customer_id",
        "locale",
        "tax_rate",
        "address",
        "vat_id",
        "payment_terms_days",
    }
)
"""What `PATCH /customers/{id}` may change: everything but the id and `CreatedAt`."""


def seller_profile(work: UnitOfWork) -> SellerProfile:
    """The seller's profile; `NotFound` until its first `PUT`."""
    profile = work.seller_profiles.get()
    if profile is None:
        raise NotFound("The seller has no profile yet: PUT /api/v1/seller sets it.")
    return profile


def set_seller_profile(work: UnitOfWork, clock: Clock, profile: SellerProfile) -> SellerProfile:
    """Replace the seller's profile with `profile` (stamped with the clock's now)."""
    stamped = SellerProfile(
        legal_name=profile.legal_name,
        address=profile.address,
        vat_id=profile.vat_id,
        tax_number=profile.tax_number,
        email=profile.email,
        phone=profile.phone,
        bank_account=profile.bank_account,
        payment_terms_days=profile.payment_terms_days,
        footer=profile.footer,
        logo=profile.logo,
        updated_at=clock.now(),
    )
    work.seller_profiles.put(stamped)
    return stamped


def update_customer(work: UnitOfWork, customer_id: str, changes: dict[str, object]) -> Customer:
    """Set the given fields of the customer (`CUSTOMER_FIELDS`; a None clears one).
    `ExternalCustomerId` stays unique per seller (`Conflict`)."""
    unknown = set(changes) - CUSTOMER_FIELDS
    if unknown:
        raise ValueError(f"not a customer's field: {sorted(unknown)}")
    return work.catalog.update_customer(customer_id, changes)
