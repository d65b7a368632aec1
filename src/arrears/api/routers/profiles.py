"""Contract usage API: the seller's profile (SPEC §12) and changes to customers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field, StringConstraints

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import PascalModel
from arrears.api.problems import problem_responses
from arrears.api.profiles import (
    BankAccountDetails,
    LogoIn,
    PaymentTermsDays,
    PostalAddress,
    VatId,
)
from arrears.api.routers.catalog import CustomerOut, EmailAddress, NewCustomer, customer_out
from arrears.domain.profiles import BankAccount, SellerProfile
from arrears.services import profiles as service

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["seller"])

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SellerProfileIn(PascalModel):
    legal_name: _Name
    address: PostalAddress
    vat_id: VatId | None = None
    tax_number: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    email: EmailAddress | None = None
    phone: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    bank_account: BankAccountDetails | None = None
    payment_terms_days: PaymentTermsDays | None = Field(
        default=None,
        description="Days from an invoice's date to its due date, unless the customer "
        "has its own (default 14).",
    )
    footer: Annotated[str, StringConstraints(max_length=1000)] | None = None
    logo: LogoIn | None = None


class SellerProfileOut(SellerProfileIn):
    updated_at: datetime


@router.get(
    "/seller",
    response_model=SellerProfileOut,
    operation_id="getSeller",
    responses=problem_responses({404: "The seller has not set its profile yet."}),
)
def get_seller(seller_id: SellerId, context: Context) -> Response:
    """The seller's profile: what its invoices show of it."""
    with context.database.unit_of_work(seller_id, "read") as work:
        profile = service.seller_profile(work)
    return json_response(_profile_out(profile))


@router.put("/seller", response_model=SellerProfileOut, operation_id="changeSeller")
def put_seller(body: SellerProfileIn, seller_id: SellerId, context: Context) -> Response:
    """Set the seller's profile, whole. Invoices issued before keep the seller as it was."""
    account = body.bank_account
    profile = SellerProfile(
        legal_name=body.legal_name,
        address=body.address.model_dump(by_alias=True, exclude_none=True),
        vat_id=body.vat_id,
        tax_number=body.tax_number,
        email=body.email,
        phone=body.phone,
        bank_account=None
        if account is None
        else BankAccount(account.iban, account.bic, account.account_holder),
        payment_terms_days=body.payment_terms_days,
        footer=body.footer,
        logo=None if body.logo is None else base64.b64decode(body.logo),
    )
    with context.database.unit_of_work(seller_id) as work:
        stored = service.set_seller_profile(work, context.clock, profile)
    return json_response(_profile_out(stored))


def _profile_out(profile: SellerProfile) -> SellerProfileOut:
    account = profile.bank_account
    return SellerProfileOut(
        legal_name=profile.legal_name,
        address=PostalAddress.model_validate(profile.address),
        vat_id=profile.vat_id,
        tax_number=profile.tax_number,
        email=profile.email,
        phone=profile.phone,
        bank_account=None
        if account is None
        else BankAccountDetails(
            iban=account.iban, bic=account.bic, account_holder=account.account_holder
        ),
        payment_terms_days=profile.payment_terms_days,
        footer=profile.footer,
        logo=None if profile.logo is None else base64.b64encode(profile.logo).decode(),
        updated_at=profile.updated_at,
    )


class CustomerChanges(NewCustomer):
    """The fields to change; those left out stay as they are, a null clears one."""


@router.patch(
    "/customers/{customerId}",
    response_model=CustomerOut,
    operation_id="changeCustomer",
    responses=problem_responses({409: "The ExternalCustomerId is taken."}),
)
def update_customer(
    customer_id: Annotated[str, Path(alias="customerId")],
    body: CustomerChanges,
    seller_id: SellerId,
    context: Context,
) -> Response:
    """Change a customer. Invoices issued before keep the customer as it was."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if body.address is not None:
        changes["address"] = body.address.model_dump(exclude_none=True)
    with context.database.unit_of_work(seller_id) as work:
        customer = service.update_customer(work, customer_id, changes)
    return json_response(customer_out(customer))
