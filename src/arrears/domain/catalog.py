"""The price list a seller sets up: customers, components, plans and plan variants."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from arrears.domain.periods import BillingPeriod
from arrears.domain.pricing import Pricing

__all__ = [
    "Address",
    "Component",
    "ComponentKind",
    "Customer",
    "MeteredComponent",
    "Plan",
    "PlanVariant",
    "QuantityComponent",
]

Address = dict[str, str]


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    created_at: datetime
    company_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email_address: str | None = None
    external_customer_id: str | None = None
    locale: str | None = None
    tax_rate: Decimal | None = None
    """Percent; when set it overrides the plan variant's rate on this customer's invoices."""
    address: Address | None = None
    vat_id: str | None = None
    payment_terms_days: int | None = None
    """Days from an invoice's date to its due date; None: the seller's terms."""


class ComponentKind(enum.StrEnum):
    """How a component is counted (SPEC §11 `Kind`, default `Metered`); the values are
    the wire names."""

    METERED = "Metered"
    """Usage reported as it happens, billed by quantity used."""
    QUANTITY = "Quantity"
    """A quantity held over time (seats, licences), billed per unit and period."""


@dataclass(frozen=True, slots=True)
class Component:
    """Something metered, in a unit (e.g. storage in GB); a "product" on the seller API."""

    id: str
    created_at: datetime
    name: str
    unit: str
    item_code: str | None = None
    description: str | None = None
    kind: ComponentKind = ComponentKind.METERED


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    created_at: datetime
    name: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class MeteredComponent:
    """How one component is charged on a plan variant."""

    component_id: str
    pricing: Pricing
    free_quota: Decimal = Decimal(0)
    """Quantity per billing period that is not charged."""
    maximum_amount: Decimal | None = None
    """The spend cap (SPEC §11 `MaximumAmount`): the most a period's current usage of
    the component is charged, over all the period's invoices; None for no cap."""


@dataclass(frozen=True, slots=True)
class QuantityComponent:
    """How one quantity component is charged on a plan variant: `price_per_unit` per
    unit held for a whole billing period (SPEC §11 `QuantityComponents`)."""

    component_id: str
    price_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class PlanVariant:
    """A concrete price list. Immutable once a contract uses it, so that every past
    invoice stays explainable: a new price is a new variant."""

    id: str
    created_at: datetime
    plan_id: str
    name: str
    currency: str
    billing_period: BillingPeriod
    tax_rate: Decimal
    """Percent, e.g. 19 for 19 %."""
    metered_components: tuple[MeteredComponent, ...]
    recurring_fee: Decimal | None = None
    """Amount charged per billing period, if any."""
    minimum_commitment: Decimal | None = None
    """The least a period's usage and fee charges come to; a `Commitment` line on the
    period's closing invoice makes up the difference (SPEC §11)."""
    quantity_components: tuple[QuantityComponent, ...] = ()
    notice_period: BillingPeriod | None = None
    """How long before its end a contract must be ended (SPEC §11), if at all."""

    def metered_component(self, component_id: str) -> MeteredComponent | None:
        return next((m for m in self.metered_components if m.component_id == component_id), None)

    def quantity_price(self, component_id: str) -> Decimal | None:
        """The price per unit and period of quantity component `component_id`; None
        when the variant does not price it."""
        return next(
            (q.price_per_unit for q in self.quantity_components if q.component_id == component_id),
            None,
        )
