"""Use cases of contracts (SPEC §4)."""

from __future__ import annotations

from datetime import datetime

from arrears.domain.clock import Clock
from arrears.domain.contracts import Contract
from arrears.domain.errors import FieldError, Invalid, NotFound
from arrears.domain.ids import new_id
from arrears.store.catalog import CatalogRepository
from arrears.store.contracts import ContractRepository

__all__ = ["create_contract", "end_contract"]


def create_contract(
    catalog: CatalogRepository,
    contracts: ContractRepository,
    clock: Clock,
    *,
    customer_id: str,
    plan_variant_id: str,
    start_date: datetime,
) -> Contract:
    """A contract of one of the seller's customers on one of the seller's plan variants;
    its first billing period starts at `start_date`."""
    errors: list[FieldError] = []
    try:
        catalog.customer(customer_id)
    except NotFound as missing:
        errors.append(FieldError("CustomerId", "not_found", missing.detail))
    try:
        variant = catalog.plan_variant(plan_variant_id)
    except NotFound as missing:
        errors.append(FieldError("PlanVariantId", "not_found", missing.detail))
    if errors:
        raise Invalid(errors)
    contract = Contract(
        id=new_id(),
        created_at=clock.now(),
        customer_id=customer_id,
        plan_variant_id=plan_variant_id,
        billing_period=variant.billing_period,
        start_date=start_date,
    )
    contracts.add(contract)
    return contract


def end_contract(contracts: ContractRepository, contract_id: str, end_date: datetime) -> Contract:
    """The contract, ended at `end_date`; its final invoice follows when the clock passes it."""
    # The row lock orders this against a concurrent billing run moving the periods on.
    ended = contracts.get(contract_id, for_update=True).ended(end_date)
    contracts.save_end(ended)
    return ended
