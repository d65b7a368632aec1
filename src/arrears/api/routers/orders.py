"""Contract usage API, orders (SPEC §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import AnyDecimal, Instant, PascalModel, Price, Quantity
from arrears.api.problems import problem_responses
from arrears.api.routers.invoices import InvoiceOut, preview_out
from arrears.api.routers.usage import UsageOut, usage_out
from arrears.domain.usage import MAX_KEY_LENGTH
from arrears.services import orders as service
from arrears.services import submissions
from arrears.services.contract_plans import CartTerms, OrderedQuantity
from arrears.services.orders import Order, OrderedUsage, RatedItem

router = APIRouter(prefix="/api/v1/orders", route_class=ArrearsRoute, tags=["orders"])

_CONFLICTS = {
    409: "The contract has its final invoice, or a Key was used with different values, or "
    "the contract cannot be billed (`type` ending in `billing-failed`)."
}


class MeteredUsageIn(PascalModel):
    component_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    quantity: AnyDecimal
    due_date: Instant | None = Field(default=None, description="Defaults to now.")
    key: Annotated[str, StringConstraints(max_length=MAX_KEY_LENGTH)] | None = None


class RatedItemIn(PascalModel):
    description: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    quantity: Quantity
    price_per_unit: Price


class ComponentSubscriptionIn(PascalModel):
    """The quantity of a quantity component the contract holds from `ChangeDate` on."""

    component_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    quantity: Quantity


class DiscountSubscriptionIn(PascalModel):
    """A discount by its id, or a coupon by its code: exactly one of the two."""

    discount_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    coupon_code: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> DiscountSubscriptionIn:
        if (self.discount_id is None) == (self.coupon_code is None):
            raise PydanticCustomError("one_of", "Give exactly one of DiscountId and CouponCode.")
        return self

    def as_wire(self) -> dict[str, str]:
        if self.discount_id is not None:
            return {"DiscountId": self.discount_id}
        return {"CouponCode": self.coupon_code or ""}


class Cart(PascalModel):
    metered_usages: list[MeteredUsageIn] = Field(default_factory=list, max_length=10_000)
    rated_items: list[RatedItemIn] = Field(default_factory=list, max_length=1_000)
    plan_variant_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The plan variant the contract moves to at ChangeDate."
    )
    component_subscriptions: list[ComponentSubscriptionIn] = Field(
        default_factory=list, max_length=200
    )
    discount_subscriptions: list[DiscountSubscriptionIn] = Field(
        default_factory=list, max_length=200
    )
    quantity: Annotated[int, Field(ge=1)] = 1


class NewOrder(PascalModel):
    contract_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    cart: Cart
    change_date: Instant | None = Field(
        default=None,
        description="When the plan change, quantities and discounts take effect; default now. "
        "Not before the contract's LastBillingDate.",
    )
    trigger_interim_billing: bool = False


class OrderOut(PascalModel):
    id: str
    contract_id: str
    created_at: datetime
    metered_usages: list[UsageOut]
    invoice_id: str | None


@router.post(
    "",
    status_code=201,
    response_model=OrderOut,
    responses=problem_responses(_CONFLICTS),
)
def create_order(body: NewOrder, seller_id: SellerId, context: Context) -> Response:
    """Add metered usages and one-off rated items to a contract, all or nothing; with
    `TriggerInterimBilling` bill them (and all unbilled usage due by now) at once."""
    order = submissions.settled(
        lambda _careful: service.place(context.database, context.clock, seller_id, _order(body)),
        label=f"order on {body.contract_id}",
    )
    return json_response(
        OrderOut(
            id=order.id,
            contract_id=order.contract_id,
            created_at=order.created_at,
            metered_usages=[usage_out(e) for e in order.usage],
            invoice_id=order.invoice.id if order.invoice else None,
        ),
        201,
    )


@router.post(
    "/preview",
    response_model=InvoiceOut,
    responses={
        204: {"description": "The order would bill nothing."},
        **problem_responses(_CONFLICTS),
    },
)
def preview_order(body: NewOrder, seller_id: SellerId, context: Context) -> Response:
    """The interim invoice the order would produce, saving nothing (`Id` and
    `InvoiceNumber` are null); 204 when it would bill nothing."""
    order, customer_id = submissions.settled(
        lambda _careful: service.rehearse(context.database, context.clock, seller_id, _order(body)),
        label=f"order preview on {body.contract_id}",
    )
    if order.invoice is None:
        return Response(status_code=204)
    return json_response(preview_out(order.invoice.draft, body.contract_id, customer_id, context))


def _order(body: NewOrder) -> Order:
    return Order(
        contract_id=body.contract_id,
        usages=[
            OrderedUsage(u.component_id, u.quantity, u.due_date, u.key)
            for u in body.cart.metered_usages
        ],
        rated_items=[
            RatedItem(i.description, i.quantity, i.price_per_unit) for i in body.cart.rated_items
        ],
        trigger_interim_billing=body.trigger_interim_billing,
        cart_terms=_cart_terms(body),
    )


def _cart_terms(body: NewOrder) -> CartTerms:
    cart = body.cart
    return CartTerms(
        plan_variant_id=cart.plan_variant_id,
        change_date=body.change_date,
        quantities=tuple(
            OrderedQuantity(s.component_id, s.quantity) for s in cart.component_subscriptions
        ),
        discounts=tuple(d.as_wire() for d in cart.discount_subscriptions),
    )
