"""What an order sells beyond usage (SPEC §11): a plan change (`Cart.PlanVariantId`),
quantities of quantity components (`Cart.ComponentSubscriptions`) and discounts
(`Cart.DiscountSubscriptions`), each from the order's `ChangeDate` (default now).

The caller holds the contract's row lock and owns the transaction: every check runs
before anything is written, and one `Invalid` names every bad field of the three; a
spent or expired coupon is a `Conflict` after them, and rolls back the order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

from arrears.domain import wire
from arrears.domain.catalog import PlanVariant
from arrears.domain.contracts import Contract
from arrears.domain.errors import FieldError, Invalid, NotFound
from arrears.domain.periods import period_index_at
from arrears.domain.phases import check_plan_change
from arrears.domain.quantities import ComponentSubscription, check_component_subscriptions
from arrears.services.discounts import subscribe_discounts
from arrears.store.catalog import CatalogRepository
from arrears.store.contract_plans import ContractPlanRepository, StoredPhase
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "NOTHING_MORE",
    "CartTerms",
    "OrderedQuantity",
    "StoredPhase",
    "component_subscriptions",
    "phases",
    "sell_cart_terms",
]


@dataclass(frozen=True, slots=True)
class OrderedQuantity:
    """The quantity of a quantity component the contract holds from `ChangeDate` on."""

    component_id: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class CartTerms:
    """An order's SPEC §11 fields, parsed: nothing set sells nothing."""

    plan_variant_id: str | None = None
    change_date: datetime | None = None
    quantities: Sequence[OrderedQuantity] = ()
    discounts: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    """Each `{"DiscountId": ...}` or `{"CouponCode": ...}`."""

    @property
    def empty(self) -> bool:
        return self.plan_variant_id is None and not self.quantities and not self.discounts


NOTHING_MORE: Final = CartTerms()
"""An order that sells nothing but usage and rated items."""


def sell_cart_terms(
    work: UnitOfWork, contract: Contract, terms: CartTerms, *, now: datetime
) -> None:
    """Move `contract` to the ordered plan variant, set the ordered quantities and give
    it the ordered discounts, all from `terms.change_date` (default `now`). Raises
    `Invalid` naming every reason at once: an unknown plan variant, another currency or
    billing period, a `ChangeDate` before `LastBillingDate`, a component that is not a
    quantity component priced by the variant the contract is on from `ChangeDate`, an
    unknown discount or coupon; `Conflict` for a spent or expired coupon."""
    if terms.empty:
        return
    catalog, plans = work.catalog, work.contract_plans
    change_date = terms.change_date or now
    held = [
        ComponentSubscription(q.component_id, q.quantity, change_date) for q in terms.quantities
    ]
    errors: list[FieldError] = []
    if change_date < contract.last_billing_date:
        errors.append(
            FieldError(
                wire.CHANGE_DATE,
                "before_last_billing_date",
                "ChangeDate must not be before LastBillingDate "
                f"({contract.last_billing_date.isoformat()}): a billed period never changes.",
            )
        )
    current = _variant_at(catalog, plans, contract, change_date)
    after: PlanVariant | None = current
    if terms.plan_variant_id is not None:
        after = _new_variant(catalog, terms.plan_variant_id, errors)
        if after is not None:
            errors += _refusals(
                check_plan_change, current, after, change_date, contract.last_billing_date
            )
            errors += _stranded_usage(plans, contract, after, change_date)
    if held and after is not None:
        kinds = catalog.component_kinds(q.component_id for q in held)
        errors += _refusals(check_component_subscriptions, held, after, kinds)
    if errors:
        raise Invalid(_unique(errors))
    plans.mark_sold(contract.id)
    if after is not None and terms.plan_variant_id is not None:
        plans.change_plan(contract, after.id, change_date)
    plans.add_component_subscriptions(contract.id, held, now)
    first_period = period_index_at(contract.start_date, contract.billing_period, change_date)
    subscribe_discounts(
        work.discounts, contract.id, terms.discounts, first_period=first_period, now=now
    )


def _variant_at(
    catalog: CatalogRepository,
    plans: ContractPlanRepository,
    contract: Contract,
    instant: datetime,
) -> PlanVariant:
    """The plan variant of the contract's phase at `instant`."""
    phases = plans.phases([contract])[contract.id]
    chosen = phases[0]
    for phase in phases:
        if phase.starts <= instant:
            chosen = phase
    return catalog.plan_variant(chosen.plan_variant_id)


def _new_variant(
    catalog: CatalogRepository, variant_id: str, errors: list[FieldError]
) -> PlanVariant | None:
    try:
        return catalog.plan_variant(variant_id)
    except NotFound:
        errors.append(
            FieldError(
                wire.ORDER_PLAN_VARIANT_ID, "not_found", f"There is no plan variant {variant_id}."
            )
        )
        return None


def _stranded_usage(
    plans: ContractPlanRepository, contract: Contract, new: PlanVariant, change_date: datetime
) -> list[FieldError]:
    """Unbilled usage due from `change_date` on is rated by `new`: it must meter each of
    its components (else that usage could never be billed)."""
    metered = {m.component_id for m in new.metered_components}
    stranded = plans.unbilled_components_from(contract.id, change_date) - metered
    if not stranded:
        return []
    return [
        FieldError(
            wire.ORDER_PLAN_VARIANT_ID,
            "usage_not_in_plan_variant",
            "Unbilled usage due from ChangeDate on meters components the plan variant does "
            f"not: {', '.join(sorted(stranded))}.",
        )
    ]


def _refusals(check: Callable[..., None], *args: object) -> list[FieldError]:
    """The errors `check(*args)` raises as `Invalid`, so that they join the others."""
    try:
        check(*args)
    except Invalid as invalid:
        return list(invalid.errors)
    return []


def _unique(errors: list[FieldError]) -> list[FieldError]:
    # check_plan_change names a ChangeDate before LastBillingDate too: say it once.
    return list({(e.field, e.code): e for e in errors}.values())


def component_subscriptions(work: UnitOfWork, contract_id: str) -> list[ComponentSubscription]:
    """The quantities the contract holds, in the order its orders set them (`NotFound`
    for a contract that is not the seller's)."""
    work.contracts.get(contract_id)
    return work.contract_plans.component_subscriptions([contract_id]).get(contract_id, [])


def phases(work: UnitOfWork, contracts: Sequence[Contract]) -> dict[str, list[StoredPhase]]:
    """Each contract's plan phases, ascending (one query for all)."""
    return work.contract_plans.phases(contracts)
