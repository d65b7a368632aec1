"""Contract usage API, contracts (SPEC §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field, StringConstraints

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import Instant, PascalModel, list_response
from arrears.api.paging import Paging
from arrears.api.problems import problem_responses
from arrears.domain.billing_failures import BillingFailure
from arrears.domain.contracts import Contract, ContractStatus
from arrears.services import contract_plans as plans
from arrears.services import contracts as service
from arrears.services.contract_plans import StoredPhase

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["contracts"])

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class NewContract(PascalModel):
    customer_id: Id
    plan_variant_id: Id
    start_date: Instant


class ContractEnd(PascalModel):
    end_date: Instant | None = Field(
        default=None,
        description="Default: the end of the first billing period that ends at least the "
        "plan variant's notice period from now.",
    )
    ignore_notice_period: bool = Field(
        default=False, description="Accept an EndDate sooner than the notice period allows."
    )


class PhaseOut(PascalModel):
    """The contract is on `PlanVariantId` from `From` until the next phase (SPEC §11)."""

    plan_variant_id: str
    from_: datetime = Field(alias="From")


class BillingErrorOut(PascalModel):
    """Why the contract cannot be billed; null while its billing is healthy."""

    code: str = Field(
        description="`amount_out_of_range`, `date_out_of_range`, `rejected` or `unexpected`."
    )
    message: str = Field(description="What is wrong, for the seller.")
    failed_at: datetime = Field(description="When the last attempt failed.")
    first_failed_at: datetime = Field(description="When it first failed since it was billed.")
    attempts: int = Field(description="Failed attempts since it was last billed.")


class ContractOut(PascalModel):
    id: str
    created_at: datetime
    customer_id: str
    plan_variant_id: str = Field(description="The plan variant of its last phase.")
    phases: list[PhaseOut] = Field(description="Its plan variants over time, oldest first.")
    start_date: datetime
    end_date: datetime | None
    last_billing_date: datetime
    next_billing_date: datetime | None = Field(
        description="When the contract is next invoiced: the end of its current period, "
        "or its EndDate when that comes first (the final invoice); null once the final "
        "invoice is issued."
    )
    status: ContractStatus
    billing_error: BillingErrorOut | None = Field(
        description="Set while the contract cannot be billed (its last attempt failed); "
        "cleared once an attempt bills it."
    )


ContractIdPath = Annotated[str, Path(alias="contractId")]


@router.post("/contracts", status_code=201, response_model=ContractOut)
def create_contract(body: NewContract, seller_id: SellerId, context: Context) -> Response:
    """Put a customer on a plan variant. Billing periods are anchored at `StartDate`."""
    with context.database.unit_of_work(seller_id) as work:
        contract = service.create_contract(
            work,
            context.clock,
            customer_id=body.customer_id,
            plan_variant_id=body.plan_variant_id,
            start_date=body.start_date,
        )
    first = [StoredPhase(contract.plan_variant_id, contract.start_date)]
    return json_response(_out(contract, context, None, first), 201)


@router.get("/contracts", response_model=list[ContractOut])
def list_contracts(
    seller_id: SellerId,
    context: Context,
    paging: Paging,
    customer_id: Annotated[str | None, Query(alias="customerId")] = None,
) -> Response:
    """The seller's contracts, newest first, optionally of one customer."""
    with context.database.unit_of_work(seller_id, "read") as work:
        page = service.contracts(work, paging, customer_id=customer_id)
        phases = plans.phases(work, [c for c, _ in page.items])
    return list_response(
        [_out(c, context, failure, phases[c.id]) for c, failure in page.items], page.total
    )


@router.get("/contracts/{contractId}", response_model=ContractOut)
def get_contract(contract_id: ContractIdPath, seller_id: SellerId, context: Context) -> Response:
    with context.database.unit_of_work(seller_id, "read") as work:
        contract, failure = service.contract(work, contract_id)
        phases = plans.phases(work, [contract])[contract_id]
    return json_response(_out(contract, context, failure, phases))


@router.post(
    "/contracts/{contractId}/end",
    response_model=ContractOut,
    responses=problem_responses({409: "The contract is already ended."}),
)
def end_contract(
    contract_id: ContractIdPath, body: ContractEnd, seller_id: SellerId, context: Context
) -> Response:
    """End the contract at `EndDate` (409 if it is already ended), by default at the end
    of the first billing period that ends at least the notice period from now; an
    `EndDate` sooner than the notice allows is 422 unless `IgnoreNoticePeriod`. Its final
    invoice is issued when the clock passes `EndDate`; until then it stays `Active`."""
    with context.database.unit_of_work(seller_id) as work:
        contract, failure = service.end_contract(
            work,
            context.clock,
            contract_id,
            body.end_date,
            ignore_notice_period=body.ignore_notice_period,
        )
        phases = plans.phases(work, [contract])[contract_id]
    return json_response(_out(contract, context, failure, phases))


def _out(
    contract: Contract,
    context: Context,
    failure: BillingFailure | None,
    phases: list[StoredPhase],
) -> ContractOut:
    return ContractOut(
        id=contract.id,
        created_at=contract.created_at,
        customer_id=contract.customer_id,
        plan_variant_id=contract.plan_variant_id,
        phases=[PhaseOut(plan_variant_id=p.plan_variant_id, from_=p.starts) for p in phases],
        start_date=contract.start_date,
        end_date=contract.end_date,
        last_billing_date=contract.last_billing_date,
        next_billing_date=contract.billed_next_on,
        status=contract.status(context.clock.now()),
        billing_error=None if failure is None else billing_error_out(failure),
    )


def billing_error_out(failure: BillingFailure) -> BillingErrorOut:
    return BillingErrorOut(
        code=failure.reason.code.value,
        message=failure.reason.message,
        failed_at=failure.failed_at,
        first_failed_at=failure.first_failed_at,
        attempts=failure.attempts,
    )
