"""Reports over stored consumption."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from arrears.store.unit_of_work import UnitOfWork

__all__ = ["ProductConsumption", "SubscriptionConsumption", "consumption_report"]


@dataclass(frozen=True, slots=True)
class ProductConsumption:
    component_id: str
    item_code: str | None
    unbilled: Decimal
    billed: Decimal


@dataclass(frozen=True, slots=True)
class SubscriptionConsumption:
    contract_id: str
    customer_id: str
    products: list[ProductConsumption]


def consumption_report(
    work: UnitOfWork,
    *,
    customer_id: str | None,
    contract_ids: list[str] | None,
    due_from: datetime | None,
    due_to: datetime | None,
) -> list[SubscriptionConsumption]:
    """Each metered contract (optionally of one customer, or only the given ones) with
    its billed and unbilled quantity per metered component, for usage due in
    `[due_from, due_to)`. Foreign or unknown contract ids are simply absent."""
    catalog = work.catalog
    matching = work.contracts.matching(customer_id=customer_id, contract_ids=contract_ids)
    variants = {v: catalog.plan_variant(v) for v in {c.plan_variant_id for c in matching}}
    metered_ids = {m.component_id for v in variants.values() for m in v.metered_components}
    item_codes = catalog.item_codes(metered_ids)
    totals: dict[tuple[str, str, bool], Decimal] = defaultdict(Decimal)
    for contract_id, component_id, billed, quantity in work.usage.quantities(
        [c.id for c in matching], due_from=due_from, due_to=due_to
    ):
        totals[(contract_id, component_id, bool(billed))] += quantity
    report = []
    for contract in matching:
        metered = variants[contract.plan_variant_id].metered_components
        if not metered:
            continue
        products = [
            ProductConsumption(
                component_id=m.component_id,
                item_code=item_codes.get(m.component_id),
                unbilled=totals[(contract.id, m.component_id, False)],
                billed=totals[(contract.id, m.component_id, True)],
            )
            for m in metered
        ]
        report.append(SubscriptionConsumption(contract.id, contract.customer_id, products))
    return report
