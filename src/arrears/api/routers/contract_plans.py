"""Contract usage API, what a contract was sold beyond usage (SPEC §11): the quantities
of quantity components it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import Field

from arrears.api.auth import SellerId
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute
from arrears.api.models import PascalModel, PlainDecimal, list_response
from arrears.services import contract_plans as service

router = APIRouter(prefix="/api/v1", route_class=ArrearsRoute, tags=["contracts"])


class ComponentSubscriptionOut(PascalModel):
    """The contract holds `Quantity` of the component from `From` until its next one."""

    component_id: str
    quantity: PlainDecimal
    from_: datetime = Field(alias="From")


@router.get(
    "/contracts/{contractId}/componentsubscriptions",
    response_model=list[ComponentSubscriptionOut],
)
def list_component_subscriptions(
    contract_id: Annotated[str, Path(alias="contractId")], seller_id: SellerId, context: Context
) -> Response:
    """The quantities the contract holds, in the order its orders set them."""
    with context.database.unit_of_work(seller_id, "read") as work:
        held = service.component_subscriptions(work, contract_id)
    return list_response(
        [
            ComponentSubscriptionOut(
                component_id=s.component_id, quantity=s.quantity, from_=s.starts
            )
            for s in held
        ],
        len(held),
    )
