"""Operator endpoint: contracts that cannot be billed, across sellers
(docs/billing.md, "When a contract cannot be billed")."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import Field

from arrears.api.auth import AdminAccess
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute
from arrears.api.models import CamelModel, list_response
from arrears.api.paging import Paging
from arrears.services.billing_failures import ListedFailure, listed_failures

router = APIRouter(
    prefix="/admin", route_class=ArrearsRoute, tags=["admin"], dependencies=[AdminAccess]
)


class BillingFailureOut(CamelModel):
    seller_id: str
    seller_name: str
    contract_id: str
    code: str = Field(
        description="`amount_out_of_range`, `date_out_of_range`, `rejected` or `unexpected`."
    )
    message: str = Field(description="What the seller is shown.")
    error: str = Field(description="The exception's type; the log line has its traceback.")
    failed_at: datetime
    first_failed_at: datetime
    attempts: int


@router.get("/billing/failures", response_model=list[BillingFailureOut])
def list_billing_failures(context: Context, paging: Paging) -> Response:
    """Contracts whose last billing attempt failed, of every seller, most recently failed
    first; the total in `X-Total-Count`. A contract leaves the list once it is billed."""
    with context.database.registry_work("read") as work:
        page = listed_failures(work, paging)
    return list_response([_out(listed) for listed in page.items], page.total)


def _out(listed: ListedFailure) -> BillingFailureOut:
    failure = listed.failure
    return BillingFailureOut(
        seller_id=failure.seller_id,
        seller_name=listed.seller_name,
        contract_id=failure.contract_id,
        code=failure.reason.code.value,
        message=failure.reason.message,
        error=failure.reason.error,
        failed_at=failure.failed_at,
        first_failed_at=failure.first_failed_at,
        attempts=failure.attempts,
    )
