"""Use cases of discounts and coupons (SPEC §11): creating and reading them, and
giving a contract its discounts from an order's `Cart.DiscountSubscriptions`.

The bodies are checked by the domain's parsers (`discounts.parse_discount`,
`parse_coupon`), which name every bad field at once; here are the rules that need the
seller's stored objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from arrears.domain.clock import Clock
from arrears.domain.discounts import Coupon, Discount
from arrears.domain.errors import Conflict, FieldError, Invalid, NotFound
from arrears.domain.ids import new_id
from arrears.domain.paging import Page, PageRequest
from arrears.domain.wire import ORDER_DISCOUNT_SUBSCRIPTIONS
from arrears.store.discounts import (
    ContractDiscount,
    DiscountRepository,
    StoredCoupon,
    StoredDiscount,
)
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "StoredCoupon",
    "StoredDiscount",
    "coupon",
    "coupons",
    "create_coupon",
    "create_discount",
    "discount",
    "discounts",
    "subscribe_discounts",
]


def create_discount(work: UnitOfWork, clock: Clock, parsed: Discount) -> StoredDiscount:
    """A new discount as `parsed` describes it (its id is drawn here)."""
    stored = StoredDiscount(replace(parsed, id=new_id()), clock.now())
    work.discounts.add_discount(stored.discount, stored.created_at)
    return stored


def discount(work: UnitOfWork, discount_id: str) -> StoredDiscount:
    return work.discounts.discount(discount_id)


def discounts(work: UnitOfWork, page: PageRequest) -> Page[StoredDiscount]:
    return work.discounts.discounts(page)


def create_coupon(work: UnitOfWork, clock: Clock, parsed: Coupon) -> StoredCoupon:
    """A new coupon of one of the seller's discounts (422 naming `DiscountId` when it is
    not one); its `Code` is unique per seller (409)."""
    if not work.discounts.existing_discount_ids([parsed.discount_id]):
        raise Invalid.one("DiscountId", "not_found", f"There is no discount {parsed.discount_id}.")
    stored = StoredCoupon(new_id(), clock.now(), replace(parsed, redemptions=0))
    work.discounts.add_coupon(stored)
    return stored


def coupon(work: UnitOfWork, coupon_id: str) -> StoredCoupon:
    return work.discounts.coupon(coupon_id)


def coupons(work: UnitOfWork, page: PageRequest) -> Page[StoredCoupon]:
    return work.discounts.coupons(page)


def subscribe_discounts(
    discounts: DiscountRepository,
    contract_id: str,
    items: Sequence[Mapping[str, str]],
    *,
    first_period: int,
    now: datetime,
) -> list[ContractDiscount]:
    """Give the contract (whose row the caller holds locked) the discounts `items`
    name, from billing period `first_period` on; redeem each coupon once. Unknown
    discounts and coupons are `Invalid` (422, every one named); a spent or expired
    coupon is `Conflict` (409), and the caller's transaction rolls every redemption
    of the order back."""
    at = ORDER_DISCOUNT_SUBSCRIPTIONS
    ids = [item["DiscountId"] for item in items if "DiscountId" in item]
    known = discounts.existing_discount_ids(ids)
    errors = [
        FieldError(f"{at}[{index}].DiscountId", "not_found", "No such discount.", index)
        for index, item in enumerate(items)
        if "DiscountId" in item and item["DiscountId"] not in known
    ]
    given: list[ContractDiscount] = []
    spent: Conflict | None = None
    for index, item in enumerate(items):
        if "DiscountId" in item:
            given.append(ContractDiscount(item["DiscountId"], first_period))
            continue
        code = item["CouponCode"]
        try:
            discount_id = discounts.redeem(code, now)
        except NotFound:
            errors.append(
                FieldError(f"{at}[{index}].CouponCode", "not_found", "No such coupon.", index)
            )
            continue
        except Conflict as conflict:
            spent = spent or conflict
            continue
        given.append(ContractDiscount(discount_id, first_period, coupon_code=code))
    if errors:
        raise Invalid(errors)
    if spent is not None:
        raise spent
    discounts.add_contract_discounts(contract_id, given, now)
    return given
