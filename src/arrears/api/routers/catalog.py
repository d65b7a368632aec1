"""Contract usage API, catalog (SPEC §3): customers, components, plans, plan variants."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import (
    CurrencyCode,
    PascalModel,
    Percent,
    Price,
    Quantity,
    list_response,
)
from arrears.api.paging import Paging
from arrears.api.pricing import (
    BillingPeriodField,
    BillingPeriodOut,
    PricingField,
    PricingOut,
    pricing_out,
)
from arrears.api.problems import problem_responses
from arrears.api.profiles import PaymentTermsDays, VatId
from arrears.domain import catalog as domain
from arrears.domain.periods import BillingPeriod, billing_period_to_json
from arrears.domain.pricing import Pricing
from arrears.services import catalog as service

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["catalog"])

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=1000)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Line = Annotated[str, StringConstraints(max_length=200)]

# No tiered example: FastAPI writes the OpenAPI without nulls, examples included, so the
# open last tier's `"UpTo": null` would vanish and the example would be invalid.
_PRICING_EXAMPLES = [
    {"Model": "PerUnit", "PricePerUnit": 0.10},
    {"Model": "Package", "PackageSize": 100, "PricePerPackage": 5.00},
]


# -- customers -------------------------------------------------------------------------

_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
_EMAIL_ADDRESS = re.compile(_EMAIL_PATTERN)


def _email_address(text: str) -> str:
    if not _EMAIL_ADDRESS.fullmatch(text):
        raise PydanticCustomError(
            "invalid_format", "EmailAddress must be an email address, e.g. billing@example.com."
        )
    return text


EmailAddress = Annotated[
    str,
    StringConstraints(max_length=254),
    AfterValidator(_email_address),
    # Declared for clients and generators; checked by `_email_address`, whose
    # message names the rule instead of showing the expression.
    Field(json_schema_extra={"pattern": _EMAIL_PATTERN}),
]


class Address(PascalModel):
    """A customer's address: SPEC §12's `Line1`, `Line2`, `PostalCode`, `City`,
    `Region`, `Country`; the older `AddressLine1`, `Street`, ... are kept as they were."""

    line1: Line | None = Field(default=None, alias="Line1")
    line2: Line | None = Field(default=None, alias="Line2")
    region: Line | None = None
    address_line1: Line | None = Field(default=None, alias="AddressLine1")
    address_line2: Line | None = Field(default=None, alias="AddressLine2")
    street: Line | None = None
    house_number: Annotated[str, StringConstraints(max_length=20)] | None = None
    postal_code: Annotated[str, StringConstraints(max_length=20)] | None = None
    city: Line | None = None
    state: Line | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code, e.g. DE."
    )


class NewCustomer(PascalModel):
    company_name: Name | None = None
    first_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    last_name: Annotated[str, StringConstraints(max_length=100)] | None = None
    email_address: EmailAddress | None = None
    external_customer_id: Code | None = Field(
        default=None, description="The seller's own id for the customer; unique per seller."
    )
    # At most 35 characters, as BCP 47 asks every implementation to take (and as stored).
    locale: (
        Annotated[
            str, StringConstraints(max_length=35, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
        ]
        | None
    ) = Field(default=None, description="BCP 47 language tag, e.g. de-DE.")
    tax_rate: Percent | None = Field(
        default=None, description="Percent; overrides the plan variant's tax rate."
    )
    address: Address | None = None
    vat_id: VatId | None = None
    payment_terms_days: PaymentTermsDays | None = Field(
        default=None, description="Days from an invoice's date to its due date."
    )


class CustomerOut(NewCustomer):
    id: str
    created_at: datetime


@router.post(
    "/customers",
    status_code=201,
    response_model=CustomerOut,
    responses=problem_responses({409: "The ExternalCustomerId is taken."}),
)
def create_customer(body: NewCustomer, seller_id: SellerId, context: Context) -> Response:
    """Create a customer. `ExternalCustomerId` is unique per seller (409)."""
    fields = body.model_dump(exclude={"address"})
    address = body.address.model_dump(exclude_none=True) if body.address else None
    with context.database.unit_of_work(seller_id) as work:
        customer = service.create_customer(work, context.clock, address=address, **fields)
    return json_response(customer_out(customer), 201)


@router.get("/customers", response_model=list[CustomerOut])
def list_customers(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's customers, newest first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.customers(work, paging)
    return list_response([customer_out(c) for c in page.items], page.total)


@router.get("/customers/{customerId}", response_model=CustomerOut)
def get_customer(
    customer_id: Annotated[str, Path(alias="customerId")], seller_id: SellerId, context: Context
) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        customer = service.customer(work, customer_id)
    return json_response(customer_out(customer))


def customer_out(customer: domain.Customer) -> CustomerOut:
    return CustomerOut.model_validate(customer, from_attributes=True)


# -- components ------------------------------------------------------------------------


Unit = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class NewComponent(PascalModel):
    name: Name
    unit: Unit
    item_code: Code | None = Field(
        default=None,
        description="Unique per seller; the seller consumption API may name a product by it.",
    )
    description: Text | None = None
    kind: domain.ComponentKind = Field(
        default=domain.ComponentKind.METERED,
        description="Metered (usage reported as it happens) or Quantity (seats, licences).",
    )


# In a change, a field that is absent stays as it is. Required fields are typed without
# `None`, so an explicit null is a validation error rather than a cleared name.


class ComponentChanges(PascalModel):
    name: Name = None  # type: ignore[assignment]
    unit: Unit = None  # type: ignore[assignment]
    item_code: Code | None = None
    description: Text | None = None
    kind: domain.ComponentKind = None  # type: ignore[assignment]


class ComponentOut(NewComponent):
    id: str
    created_at: datetime


ComponentIdPath = Annotated[str, Path(alias="componentId")]


@router.post(
    "/components",
    status_code=201,
    response_model=ComponentOut,
    responses=problem_responses({409: "The ItemCode is taken."}),
)
def create_component(body: NewComponent, seller_id: SellerId, context: Context) -> Response:
    """Create a metered component. `ItemCode` is unique per seller (409)."""
    with context.database.unit_of_work(seller_id) as work:
        component = service.create_component(work, context.clock, **body.model_dump())
    return json_response(_component(component), 201)


@router.get("/components", response_model=list[ComponentOut])
def list_components(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's components, newest first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.components(work, paging)
    return list_response([_component(c) for c in page.items], page.total)


@router.get("/components/{componentId}", response_model=ComponentOut)
def get_component(component_id: ComponentIdPath, seller_id: SellerId, context: Context) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        component = service.component(work, component_id)
    return json_response(_component(component))


@router.patch(
    "/components/{componentId}",
    response_model=ComponentOut,
    responses=problem_responses(
        {409: "A contract uses the component (it is immutable), or the ItemCode is taken."}
    ),
)
def change_component(
    component_id: ComponentIdPath, body: ComponentChanges, seller_id: SellerId, context: Context
) -> Response:
    """Change the fields sent. Once a contract uses the component it is immutable (409)."""
    with context.database.unit_of_work(seller_id) as work:
        component = service.change_component(work, component_id, _changes(body))
    return json_response(_component(component))


def _component(component: domain.Component) -> ComponentOut:
    return ComponentOut.model_validate(component, from_attributes=True)


# -- plans -----------------------------------------------------------------------------


class NewPlan(PascalModel):
    name: Name
    description: Text | None = None


class PlanOut(NewPlan):
    id: str
    created_at: datetime


@router.post("/plans", status_code=201, response_model=PlanOut)
def create_plan(body: NewPlan, seller_id: SellerId, context: Context) -> Response:
    with context.database.unit_of_work(seller_id) as work:
        plan = service.create_plan(work, context.clock, **body.model_dump())
    return json_response(PlanOut.model_validate(plan, from_attributes=True), 201)


@router.get("/plans", response_model=list[PlanOut])
def list_plans(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's plans, newest first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.plans(work, paging)
    return list_response(
        [PlanOut.model_validate(p, from_attributes=True) for p in page.items], page.total
    )


@router.get("/plans/{planId}", response_model=PlanOut)
def get_plan(
    plan_id: Annotated[str, Path(alias="planId")], seller_id: SellerId, context: Context
) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        plan = service.plan(work, plan_id)
    return json_response(PlanOut.model_validate(plan, from_attributes=True))


# -- plan variants ---------------------------------------------------------------------


class NewMeteredComponent(PascalModel):
    component_id: Id
    pricing: Annotated[
        PricingField,
        Field(description="PerUnit, Graduated, Volume or Package.", examples=_PRICING_EXAMPLES),
    ]
    free_quota: Quantity = Field(
        default=Decimal(0), description="Quantity per billing period that is not charged."
    )
    maximum_amount: Price | None = Field(
        default=None,
        description="The spend cap: the most a period's usage of it is charged, over all "
        "the period's invoices.",
    )

    def to_domain(self) -> domain.MeteredComponent:
        # domain_rule(parse_pricing) replaced the JSON object by the domain's Pricing.
        pricing: Pricing = self.pricing  # type: ignore[assignment]
        return domain.MeteredComponent(
            self.component_id, pricing, self.free_quota, self.maximum_amount
        )


class NewQuantityComponent(PascalModel):
    component_id: Id
    price_per_unit: Price = Field(description="Per unit held for a whole billing period.")

    def to_domain(self) -> domain.QuantityComponent:
        return domain.QuantityComponent(self.component_id, self.price_per_unit)


BillingPeriodIn = Annotated[BillingPeriodField, Field(examples=[{"Unit": "Month", "Quantity": 1}])]


class NewPlanVariant(PascalModel):
    plan_id: Id
    name: Name
    currency: CurrencyCode = Field(description="ISO 4217 code, e.g. EUR.")
    billing_period: BillingPeriodIn
    recurring_fee: Price | None = Field(default=None, description="Amount per billing period.")
    tax_rate: Percent = Field(default=Decimal(0), description="Percent, e.g. 19.")
    metered_components: list[NewMeteredComponent] = Field(default_factory=list, max_length=200)
    quantity_components: list[NewQuantityComponent] = Field(default_factory=list, max_length=200)
    minimum_commitment: Price | None = Field(
        default=None, description="The least a period's usage and fee charges come to."
    )
    notice_period: BillingPeriodIn | None = Field(
        default=None, description="How long before its end a contract must be ended."
    )


class PlanVariantChanges(PascalModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"Name": "Monthly", "TaxRate": 19}]})

    name: Name = None  # type: ignore[assignment]
    currency: CurrencyCode = None  # type: ignore[assignment]
    billing_period: BillingPeriodIn = None  # type: ignore[assignment]
    recurring_fee: Price | None = None
    tax_rate: Percent = None  # type: ignore[assignment]
    metered_components: list[NewMeteredComponent] = Field(default=None, max_length=200)  # type: ignore[arg-type]
    quantity_components: list[NewQuantityComponent] = Field(default=None, max_length=200)  # type: ignore[arg-type]
    minimum_commitment: Price | None = None
    notice_period: BillingPeriodIn | None = None


class MeteredComponentOut(PascalModel):
    component_id: str
    pricing: PricingOut
    free_quota: Quantity
    # Absent without a cap, so that metered components read as they did before caps.
    maximum_amount: Price | None = Field(default=None, exclude_if=lambda cap: cap is None)


class QuantityComponentOut(PascalModel):
    component_id: str
    price_per_unit: Price


class PlanVariantOut(PascalModel):
    id: str
    created_at: datetime
    plan_id: str
    name: str
    currency: str
    billing_period: BillingPeriodOut
    recurring_fee: Price | None
    tax_rate: Percent
    metered_components: list[MeteredComponentOut]
    quantity_components: list[QuantityComponentOut]
    minimum_commitment: Price | None
    notice_period: BillingPeriodOut | None


PlanVariantIdPath = Annotated[str, Path(alias="planVariantId")]


@router.post("/planvariants", status_code=201, response_model=PlanVariantOut)
def create_plan_variant(body: NewPlanVariant, seller_id: SellerId, context: Context) -> Response:
    """Create a plan variant: a price list in one currency and billing period."""
    billing_period: BillingPeriod = body.billing_period  # type: ignore[assignment]
    with context.database.unit_of_work(seller_id) as work:
        variant = service.create_plan_variant(
            work,
            context.clock,
            plan_id=body.plan_id,
            name=body.name,
            currency=body.currency,
            billing_period=billing_period,
            recurring_fee=body.recurring_fee,
            tax_rate=body.tax_rate,
            metered_components=tuple(m.to_domain() for m in body.metered_components),
            quantity_components=tuple(q.to_domain() for q in body.quantity_components),
            minimum_commitment=body.minimum_commitment,
            notice_period=body.notice_period,  # type: ignore[arg-type]
        )
    return json_response(_variant(variant), 201)


@router.get("/planvariants", response_model=list[PlanVariantOut])
def list_plan_variants(seller_id: SellerId, context: Context, paging: Paging) -> Response:
    """The seller's plan variants, newest first; `X-Total-Count` holds their number."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.plan_variants(work, paging)
    return list_response([_variant(v) for v in page.items], page.total)


@router.get("/planvariants/{planVariantId}", response_model=PlanVariantOut)
def get_plan_variant(
    variant_id: PlanVariantIdPath, seller_id: SellerId, context: Context
) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        variant = service.plan_variant(work, variant_id)
    return json_response(_variant(variant))


@router.patch(
    "/planvariants/{planVariantId}",
    response_model=PlanVariantOut,
    responses=problem_responses({409: "A contract uses the plan variant: it is immutable."}),
)
def change_plan_variant(
    variant_id: PlanVariantIdPath, body: PlanVariantChanges, seller_id: SellerId, context: Context
) -> Response:
    """Change the fields sent. Once a contract uses the variant it is immutable (409):
    a new price is a new plan variant, so that past invoices stay explainable."""
    changes = _changes(body)
    if "metered_components" in changes:
        changes["metered_components"] = tuple(m.to_domain() for m in body.metered_components)
    if "quantity_components" in changes:
        changes["quantity_components"] = tuple(q.to_domain() for q in body.quantity_components)
    with context.database.unit_of_work(seller_id) as work:
        variant = service.change_plan_variant(work, variant_id, changes)
    return json_response(_variant(variant))


def _variant(variant: domain.PlanVariant) -> PlanVariantOut:
    return PlanVariantOut(
        id=variant.id,
        created_at=variant.created_at,
        plan_id=variant.plan_id,
        name=variant.name,
        currency=variant.currency,
        billing_period=BillingPeriodOut.model_validate(
            billing_period_to_json(variant.billing_period), by_alias=True
        ),
        recurring_fee=variant.recurring_fee,
        tax_rate=variant.tax_rate,
        metered_components=[
            MeteredComponentOut(
                component_id=m.component_id,
                pricing=pricing_out(m.pricing),
                free_quota=m.free_quota,
                maximum_amount=m.maximum_amount,
            )
            for m in variant.metered_components
        ],
        quantity_components=[
            QuantityComponentOut(component_id=q.component_id, price_per_unit=q.price_per_unit)
            for q in variant.quantity_components
        ],
        minimum_commitment=variant.minimum_commitment,
        notice_period=_period_out(variant.notice_period) if variant.notice_period else None,
    )


def _period_out(period: BillingPeriod) -> BillingPeriodOut:
    return BillingPeriodOut.model_validate(billing_period_to_json(period), by_alias=True)


def _changes(body: PascalModel) -> dict[str, Any]:
    """The fields the client sent; an explicit null clears an optional field."""
    return {name: getattr(body, name) for name in body.model_fields_set}
