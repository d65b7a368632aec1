"""Pricing and billing periods on the wire (SPEC §3), typed for the OpenAPI.

Requests are checked by the domain (`parse_pricing`, `parse_billing_period`), which names
every bad field at once with its own codes; the request models here only *declare* the
shape, as a `oneOf` with `Model` as its discriminator, so that a generated client gets one
class per pricing model instead of an untyped object. Responses are built from them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from arrears.api.models import (
    AnyDecimal,
    PascalModel,
    PlainDecimal,
    Price,
    declared_as,
    domain_rule,
)
from arrears.domain.periods import MAX_PERIOD_QUANTITY, PeriodUnit, parse_billing_period
from arrears.domain.pricing import Pricing, parse_pricing, pricing_to_json

__all__ = [
    "BillingPeriodField",
    "BillingPeriodOut",
    "PricingField",
    "PricingOut",
    "pricing_out",
]

# -- requests --------------------------------------------------------------------------


class PricingTier(PascalModel):
    up_to: AnyDecimal | None = Field(
        description="Units up to and including this bound; null for the last, open tier."
    )
    price_per_unit: Price
    flat_fee: Price | None = Field(
        default=None,
        description="Charged once per period when the period's quantity reaches the tier.",
    )


class PerUnitPricing(PascalModel):
    """Every unit at one price."""

    model: Literal["PerUnit"]
    price_per_unit: Price


class GraduatedPricing(PascalModel):
    """Each unit priced by the tier it falls in."""

    model: Literal["Graduated"]
    tiers: list[PricingTier] = Field(min_length=1)


class VolumePricing(PascalModel):
    """All units priced by the tier that the total falls in."""

    model: Literal["Volume"]
    tiers: list[PricingTier] = Field(min_length=1)


class PackagePricing(PascalModel):
    """Units sold in packages; a started package is charged whole."""

    model: Literal["Package"]
    package_size: AnyDecimal = Field(description="> 0, at most 6 decimal places.")
    price_per_package: Price


_PricingIn = Annotated[
    PerUnitPricing | GraduatedPricing | VolumePricing | PackagePricing,
    Field(discriminator="model"),
]


class BillingPeriod(PascalModel):
    """`Quantity` units of `Unit`, e.g. 3 months."""

    unit: PeriodUnit
    quantity: int = Field(ge=1, le=MAX_PERIOD_QUANTITY)


PricingField = Annotated[
    dict[str, Any],
    declared_as(_PricingIn),
    domain_rule(parse_pricing),
]
"""A `Pricing` (the domain's, once validated), declared as the `oneOf` above."""

BillingPeriodField = Annotated[
    dict[str, Any],
    declared_as(BillingPeriod),
    domain_rule(parse_billing_period),
]
"""A `BillingPeriod` (the domain's, once validated), declared as the model above."""


# -- responses -------------------------------------------------------------------------


class PricingTierOut(PascalModel):
    up_to: PlainDecimal | None
    price_per_unit: PlainDecimal
    # Absent where the tier has none, so that tiers read as they did before flat fees.
    flat_fee: PlainDecimal | None = Field(default=None, exclude_if=lambda fee: fee is None)


class PerUnitPricingOut(PascalModel):
    model: Literal["PerUnit"]
    price_per_unit: PlainDecimal


class GraduatedPricingOut(PascalModel):
    model: Literal["Graduated"]
    tiers: list[PricingTierOut]


class VolumePricingOut(PascalModel):
    model: Literal["Volume"]
    tiers: list[PricingTierOut]


class PackagePricingOut(PascalModel):
    model: Literal["Package"]
    package_size: PlainDecimal
    price_per_package: PlainDecimal


PricingOut = Annotated[
    PerUnitPricingOut | GraduatedPricingOut | VolumePricingOut | PackagePricingOut,
    Field(discriminator="model"),
]

_PRICING_OUT: TypeAdapter[Any] = TypeAdapter(PricingOut)


def pricing_out(pricing: Pricing) -> Any:
    """`pricing` as its response model (one of the `...PricingOut` classes)."""
    return _PRICING_OUT.validate_python(pricing_to_json(pricing))


class BillingPeriodOut(PascalModel):
    unit: PeriodUnit
    quantity: int
