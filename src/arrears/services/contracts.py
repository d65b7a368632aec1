"""Use cases of contracts (SPEC §4)."""

from __future__ import annotations

from datetime import datetime

from arrears.domain.billing_failures import BillingFailure
from arrears.domain.clock import Clock
from arrears.domain.contracts import Contract
from arrears.domain.errors import FieldError, Invalid, NotFound
from arrears.domain.ids import new_id
from arrears.domain.notice import check_end_date, notice_end_date
from arrears.domain.paging import Page, PageRequest
from arrears.services import webhooks
from arrears.store.unit_of_work import UnitOfWork

__all__ = ["ContractView", "contract", "contracts", "create_contract", "end_contract"]

ContractView = tuple[Contract, BillingFailure | None]
"""A contract and why it cannot be billed (None while its billing is healthy)."""


def create_contract(
    work: UnitOfWork,
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
        work.catalog.customer(customer_id)
    except NotFound as missing:
        errors.append(FieldError("CustomerId", "not_found", missing.detail))
    try:
        variant = work.catalog.plan_variant(plan_variant_id)
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
    work.contracts.add(contract)
    return contract


def end_contract(
    work: UnitOfWork,
    clock: Clock,
    contract_id: str,
    end_date: datetime | None,
    *,
    ignore_notice_period: bool = False,
) -> ContractView:
    """The contract, ended at `end_date`; its final invoice follows when the clock passes
    it. Without `end_date` it ends at the end of the first billing period that ends at
    least its plan variant's notice period from now (SPEC §11); an `end_date` sooner
    than the notice allows is `Invalid` unless `ignore_notice_period`. Its `contract.ended`
    event is written with it (docs/webhooks.md)."""
    # The row lock orders this against a concurrent billing run moving the periods on.
    contract = work.contracts.get(contract_id, for_update=True)
    if contract.end_date is None:  # an ended contract is a Conflict below, notice or not
        notice = work.catalog.plan_variant(contract.plan_variant_id).notice_period
        now = clock.now()
        if end_date is None:
            end_date = notice_end_date(contract.start_date, contract.billing_period, notice, now)
        else:
            check_end_date(end_date, notice, now, ignore_notice_period=ignore_notice_period)
    ended = contract.ended(end_date or contract.start_date)
    work.contracts.save_end(ended)
    failure = work.billing_failures.of([contract_id]).get(contract_id)
    webhooks.contract_ended(work, clock.now(), ended, failure)
    return ended, failure


def contracts(
    work: UnitOfWork, page: PageRequest, *, customer_id: str | None
) -> Page[ContractView]:
    """The seller's contracts, newest first (optionally of one customer), each with its
    billing failure."""
    found = work.contracts.page(page, customer_id=customer_id)
    failures = work.billing_failures.of([c.id for c in found.items])
    return Page(items=[(c, failures.get(c.id)) for c in found.items], total=found.total)


def contract(work: UnitOfWork, contract_id: str) -> ContractView:
    """The contract (`NotFound` for a foreign id) with its billing failure."""
    found = work.contracts.get(contract_id)
    return found, work.billing_failures.of([contract_id]).get(contract_id)
