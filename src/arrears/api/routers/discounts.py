"""Contract usage API, discounts and coupons (SPEC §11)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import ConfigDict, Field

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import (
    AnyDecimal,
    Instant,
    PascalModel,
    PlainDecimal,
    declared_as,
    domain_rule,
    list_response,
)
from arrears.api.paging import Paging
from arrears.api.problems import problem_responses
from arrears.domain.discounts import Coupon, Discount, DiscountTarget, parse_coupon, parse_discount
from arrears.services import discounts as service
from arrears.services.discounts import StoredCoupon, StoredDiscount

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["discounts"])


# -- discounts -------------------------------------------------------------------------


class NewDiscount(PascalModel):
    """A percentage or an amount off the lines of `AppliesTo`, for `Periods` billing
    periods (absent: every period). Give exactly one of `Percentage` and `Amount`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"Name": "Launch", "Percentage": 20, "Periods": 2, "AppliesTo": "Usage"},
                {"Name": "Goodwill", "Amount": 50, "AppliesTo": "All"},
            ]
        }
    )

    name: str = Field(min_length=1, max_length=200)
    percentage: AnyDecimal | None = Field(default=None, description="> 0 and <= 100.")
    amount: AnyDecimal | None = Field(default=None, description="> 0, in the invoice's currency.")
    periods: int | None = Field(default=None, ge=1, description="Absent: every period.")
    applies_to: DiscountTarget


def _discount_body(data: dict[str, Any]) -> Discount:
    # The service draws the id; the parser wants one to build a Discount.
    return parse_discount(data, discount_id="new")


DiscountBody = Annotated[dict[str, Any], declared_as(NewDiscount), domain_rule(_discount_body)]


class DiscountOut(PascalModel):
    id: str
    created_at: datetime
    name: str
    percentage: PlainDecimal | None
    amount: PlainDecimal | None
    periods: int | None
    applies_to: DiscountTarget


@router.post("/discounts", status_code=201, response_model=DiscountOut)
def create_discount(body: DiscountBody, seller_id: SellerId, context: Context) -> Response:
    """Create a discount; an order's `Cart.DiscountSubscriptions` gives it to a contract."""
    parsed: Discount = body  # type: ignore[assignment]
    with context.database.unit_of_work(seller_id) as work:
        stored = service.create_discount(work, context.clock, parsed)
    return json_response(_discount(stored), 201)


@router.get("/discounts", response_model=list[DiscountOut])
def list_discounts(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's discounts, newest first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.discounts(work, paging)
    return list_response([_discount(d) for d in page.items], page.total)


@router.get("/discounts/{discountId}", response_model=DiscountOut)
def get_discount(
    discount_id: Annotated[str, Path(alias="discountId")], seller_id: SellerId, context: Context
) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        stored = service.discount(work, discount_id)
    return json_response(_discount(stored))


def _discount(stored: StoredDiscount) -> DiscountOut:
    discount = stored.discount
    return DiscountOut(
        id=discount.id,
        created_at=stored.created_at,
        name=discount.name,
        percentage=discount.percentage,
        amount=discount.amount,
        periods=discount.periods,
        applies_to=discount.applies_to,
    )


# -- coupons ---------------------------------------------------------------------------


class NewCoupon(PascalModel):
    """A code that gives its discount to the contract of the order that redeems it."""

    code: str = Field(min_length=1, max_length=200)
    discount_id: str = Field(min_length=1, max_length=200)
    max_redemptions: int | None = Field(
        default=None, ge=1, description="How often it may be redeemed; absent: unlimited."
    )
    valid_until: Instant | None = Field(
        default=None, description="The last instant it may be redeemed; absent: no expiry."
    )


CouponBody = Annotated[dict[str, Any], declared_as(NewCoupon), domain_rule(parse_coupon)]


class CouponOut(PascalModel):
    id: str
    created_at: datetime
    code: str
    discount_id: str
    max_redemptions: int | None
    valid_until: datetime | None
    redemptions: int = Field(description="How often it was redeemed.")


@router.post(
    "/coupons",
    status_code=201,
    response_model=CouponOut,
    responses=problem_responses({409: "The Code is taken."}),
)
def create_coupon(body: CouponBody, seller_id: SellerId, context: Context) -> Response:
    """Create a coupon of a discount. `Code` is unique per seller (409)."""
    parsed: Coupon = body  # type: ignore[assignment]
    with context.database.unit_of_work(seller_id) as work:
        stored = service.create_coupon(work, context.clock, parsed)
    return json_response(_coupon(stored), 201)


@router.get("/coupons", response_model=list[CouponOut])
def list_coupons(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's coupons, newest first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.coupons(work, paging)
    return list_response([_coupon(c) for c in page.items], page.total)


@router.get("/coupons/{couponId}", response_model=CouponOut)
def get_coupon(
    coupon_id: Annotated[str, Path(alias="couponId")], seller_id: SellerId, context: Context
) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        stored = service.coupon(work, coupon_id)
    return json_response(_coupon(stored))


def _coupon(stored: StoredCoupon) -> CouponOut:
    coupon = stored.coupon
    return CouponOut(
        id=stored.id,
        created_at=stored.created_at,
        code=coupon.code,
        discount_id=coupon.discount_id,
        max_redemptions=coupon.max_redemptions,
        valid_until=coupon.valid_until,
        redemptions=coupon.redemptions,
    )
