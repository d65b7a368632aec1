"""Operator endpoints (SPEC §1, §9): sellers, API keys and the test clock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field, StringConstraints

from arrears.api.auth import AdminAccess, forget_keys_of
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import CamelModel, CurrencyCode, Instant
from arrears.api.problems import problem_responses
from arrears.domain.clock import TestClock
from arrears.services import sellers
from arrears.worker.runner import Worker

SellerIdPath = Annotated[str, Path(alias="sellerId")]
KeyIdPath = Annotated[str, Path(alias="keyId")]

router = APIRouter(
    prefix="/admin", route_class=ArrearsRoute, tags=["admin"], dependencies=[AdminAccess]
)


class NewSeller(CamelModel):
    name: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True,
            min_length=sellers.SELLER_NAME_LENGTH[0],
            max_length=sellers.SELLER_NAME_LENGTH[1],
        ),
    ]
    currency: CurrencyCode = "EUR"
    invoice_prefix: Annotated[str, StringConstraints(pattern=sellers.INVOICE_PREFIX_PATTERN)] = (
        "INV"
    )


class IssuedKey(CamelModel):
    seller_id: str
    key_id: str
    api_key: str


@router.post("/sellers", status_code=201, response_model=IssuedKey)
def create_seller(body: NewSeller, context: Context) -> Response:
    """Register a seller. The answer holds its API key: the only time it is shown."""
    with context.database.registry_work() as work:
        issued = sellers.create_seller(
            work,
            context.clock,
            name=body.name,
            currency_code=body.currency,
            invoice_prefix=body.invoice_prefix,
        )
    return json_response(IssuedKey.model_validate(issued, from_attributes=True), 201)


@router.post(
    "/sellers/{sellerId}/keys",
    status_code=201,
    response_model=IssuedKey,
    operation_id="createSellerKey",
)
def create_key(seller_id: SellerIdPath, context: Context) -> Response:
    """Issue another API key (e.g. to rotate keys without downtime)."""
    with context.database.registry_work() as work:
        issued = sellers.issue_key(work, context.clock, seller_id)
    return json_response(IssuedKey.model_validate(issued, from_attributes=True), 201)


@router.delete("/sellers/{sellerId}/keys/{keyId}", status_code=204, operation_id="revokeSellerKey")
def revoke_key(seller_id: SellerIdPath, key_id: KeyIdPath, context: Context) -> Response:
    """Revoke a key; it answers 401 from the next request on."""
    with context.database.registry_work() as work:
        sellers.revoke_key(work, context.clock, seller_id, key_id)
    forget_keys_of(context.database, seller_id)  # this process's key cache (api/auth.py)
    return Response(status_code=204)


class ClockState(CamelModel):
    # ISO 8601 only: a number would be read as Unix seconds (1 is 1970, a 409).
    now: Instant


class ClockMove(CamelModel):
    now: Instant = Field(description="ISO 8601; without an offset it is UTC.")


def test_clock_router(clock: TestClock) -> APIRouter:
    """`GET`/`PUT /admin/clock`: they exist only when the app runs on a test clock."""
    router = APIRouter(
        prefix="/admin", route_class=ArrearsRoute, tags=["test clock"], dependencies=[AdminAccess]
    )

    @router.get("/clock", response_model=ClockState)
    def get_clock() -> Response:
        """The test clock's current instant."""
        return json_response(ClockState(now=clock.now()))

    @router.put(
        "/clock",
        response_model=ClockState,
        responses=problem_responses({409: "The instant is before the clock's now."}),
    )
    def move_clock(body: ClockMove) -> Response:
        """Move the test clock forward (backwards answers 409)."""
        # Like every instant, the clock stays before 8000 (`domain.limits`): beyond, the
        # test clock refuses the move with 422.
        return json_response(ClockState(now=clock.move_to(body.now)))

    @router.post("/billing/run", response_model=BillingRunOut, operation_id="runBilling")
    def run_billing_now(context: Context) -> Response:
        """Apply every waiting task and bill everything due at the clock's now; answers
        when it is done."""
        worker = Worker(context.database, clock)  # so that the run is counted in the metrics
        tasks = worker.run_tasks()
        run = worker.run_billing()
        return json_response(
            BillingRunOut(
                tasks=tasks, contracts=run.contracts, invoices=run.invoices, failed=run.failed
            )
        )

    return router


class BillingRunOut(CamelModel):
    tasks: int
    contracts: int
    invoices: int
    failed: int
