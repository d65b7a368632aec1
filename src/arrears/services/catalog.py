"""Use cases of the price list: customers, components, plans and plan variants.

Field-level rules (types, bounds, currencies, pricing shapes) are checked before these
run; here are the rules that need the seller's stored objects.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from arrears.domain.catalog import (
    Address,
    Component,
    ComponentKind,
    Customer,
    MeteredComponent,
    Plan,
    PlanVariant,
    QuantityComponent,
)
from arrears.domain.clock import Clock
from arrears.domain.errors import Conflict, FieldError, Invalid
from arrears.domain.ids import new_id
from arrears.domain.paging import Page, PageRequest
from arrears.domain.periods import BillingPeriod
from arrears.store.catalog import CatalogRepository
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "change_component",
    "change_plan_variant",
    "component",
    "components",
    "create_component",
    "create_customer",
    "create_plan",
    "create_plan_variant",
    "customer",
    "customers",
    "plan",
    "plan_variant",
    "plan_variants",
    "plans",
]


def create_customer(
    work: UnitOfWork,
    clock: Clock,
    *,
    company_name: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
    email_address: str | None = None,
    external_customer_id: str | None = None,
    locale: str | None = None,
    tax_rate: Decimal | None = None,
    address: Address | None = None,
    vat_id: str | None = None,
    payment_terms_days: int | None = None,
) -> Customer:
    """A new customer; `ExternalCustomerId` is unique per seller (`Conflict`)."""
    customer = Customer(
        id=new_id(),
        created_at=clock.now(),
        company_name=company_name,
        first_name=first_name,
        last_name=last_name,
        email_address=email_address,
        external_customer_id=external_customer_id,
        locale=locale,
        tax_rate=tax_rate,
        address=address,
        vat_id=vat_id,
        payment_terms_days=payment_terms_days,
    )
    work.catalog.add_customer(customer)
    return customer


def create_component(
    work: UnitOfWork,
    clock: Clock,
    *,
    name: str,
    unit: str,
    item_code: str | None = None,
    description: str | None = None,
    kind: ComponentKind = ComponentKind.METERED,
) -> Component:
    """A new component; `ItemCode` is unique per seller (`Conflict`)."""
    component = Component(
        id=new_id(),
        created_at=clock.now(),
        name=name,
        unit=unit,
        item_code=item_code,
        description=description,
        kind=kind,
    )
    work.catalog.add_component(component)
    return component


def change_component(work: UnitOfWork, component_id: str, changes: dict[str, Any]) -> Component:
    """The component with `changes` applied; `Conflict` once a contract uses it."""
    component = work.catalog.component(component_id)
    if work.catalog.component_in_use(component_id):
        raise Conflict(
            f"Component {component_id} is used by a contract and can no longer change; "
            "create a new component (and a new plan variant that uses it)."
        )
    changed = replace(component, **changes)
    if changed.kind is not component.kind and work.catalog.component_priced(component_id):
        raise Conflict(
            f"Component {component_id} is priced by a plan variant as {component.kind.value}; "
            "remove it from the plan variant's list before changing its Kind."
        )
    work.catalog.replace_component(changed)
    return changed


def create_plan(
    work: UnitOfWork, clock: Clock, *, name: str, description: str | None = None
) -> Plan:
    plan = Plan(id=new_id(), created_at=clock.now(), name=name, description=description)
    work.catalog.add_plan(plan)
    return plan


def create_plan_variant(
    work: UnitOfWork,
    clock: Clock,
    *,
    plan_id: str,
    name: str,
    currency: str,
    billing_period: BillingPeriod,
    metered_components: tuple[MeteredComponent, ...],
    recurring_fee: Decimal | None = None,
    tax_rate: Decimal = Decimal(0),
    minimum_commitment: Decimal | None = None,
    quantity_components: tuple[QuantityComponent, ...] = (),
    notice_period: BillingPeriod | None = None,
) -> PlanVariant:
    """A new plan variant of one of the seller's plans, charging the seller's components."""
    variant = PlanVariant(
        id=new_id(),
        created_at=clock.now(),
        plan_id=plan_id,
        name=name,
        currency=currency,
        billing_period=billing_period,
        tax_rate=tax_rate,
        metered_components=metered_components,
        recurring_fee=recurring_fee,
        minimum_commitment=minimum_commitment,
        quantity_components=quantity_components,
        notice_period=notice_period,
    )
    _check_references(work.catalog, variant)
    work.catalog.add_plan_variant(variant)
    return variant


def change_plan_variant(work: UnitOfWork, variant_id: str, changes: dict[str, Any]) -> PlanVariant:
    """The variant with `changes` applied; `Conflict` once a contract uses it."""
    variant = work.catalog.plan_variant(variant_id)
    if work.catalog.plan_variant_in_use(variant_id):
        raise Conflict(
            f"Plan variant {variant_id} is used by a contract and can no longer change, so "
            "that its invoices stay explainable; create a new plan variant instead."
        )
    changed = replace(variant, **changes)
    _check_references(work.catalog, changed)
    work.catalog.replace_plan_variant(changed)
    return changed


def _check_references(catalog: CatalogRepository, variant: PlanVariant) -> None:
    errors: list[FieldError] = []
    if not catalog.plan_exists(variant.plan_id):
        errors.append(FieldError("PlanId", "not_found", f"There is no plan {variant.plan_id}."))
    metered = [m.component_id for m in variant.metered_components]
    priced = [q.component_id for q in variant.quantity_components]
    kinds = catalog.component_kinds([*metered, *priced])
    errors += _component_errors("MeteredComponents", metered, kinds, ComponentKind.METERED)
    errors += _component_errors("QuantityComponents", priced, kinds, ComponentKind.QUANTITY)
    if errors:
        raise Invalid(errors)


def _component_errors(
    field: str, ids: list[str], kinds: dict[str, ComponentKind], kind: ComponentKind
) -> list[FieldError]:
    """What is wrong with the component ids of one list of a plan variant: unknown,
    listed twice, or of the other `Kind` (SPEC §11: metered components are `Metered`,
    quantity components `Quantity`)."""
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, component_id in enumerate(ids):
        path = f"{field}[{index}].ComponentId"
        if component_id not in kinds:
            errors.append(
                FieldError(path, "not_found", f"There is no component {component_id}.", index)
            )
        elif component_id in seen:
            errors.append(
                FieldError(
                    path, "duplicate", "Each component may appear once per plan variant.", index
                )
            )
        elif kinds[component_id] is not kind:
            errors.append(
                FieldError(
                    path, "wrong_kind", f"{field} lists components of Kind {kind.value}.", index
                )
            )
        seen.add(component_id)
    return errors


# -- reads: the seller's objects by id (a foreign id is `NotFound`) and in pages -----------


def customers(work: UnitOfWork, page: PageRequest) -> Page[Customer]:
    return work.catalog.customers(page)


def customer(work: UnitOfWork, customer_id: str) -> Customer:
    return work.catalog.customer(customer_id)


def components(work: UnitOfWork, page: PageRequest) -> Page[Component]:
    return work.catalog.components(page)


def component(work: UnitOfWork, component_id: str) -> Component:
    return work.catalog.component(component_id)


def plans(work: UnitOfWork, page: PageRequest) -> Page[Plan]:
    return work.catalog.plans(page)


def plan(work: UnitOfWork, plan_id: str) -> Plan:
    return work.catalog.plan(plan_id)


def plan_variants(work: UnitOfWork, page: PageRequest) -> Page[PlanVariant]:
    return work.catalog.plan_variants(page)


def plan_variant(work: UnitOfWork, variant_id: str) -> PlanVariant:
    return work.catalog.plan_variant(variant_id)
