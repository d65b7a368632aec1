"""The seller's own profile on the seller consumption API (an Arrears extension)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response

from arrears.api.auth import SellerInPath
from arrears.api.context import Context
from arrears.api.encoding import ArrearsRoute, json_response
from arrears.api.models import CamelModel
from arrears.services import sellers

router = APIRouter(prefix="/api/sellers", route_class=ArrearsRoute, tags=["seller"])


class SellerProfile(CamelModel):
    seller_id: str
    name: str
    currency: str
    invoice_prefix: str
    created_at: datetime


@router.get("/{sellerId}", response_model=SellerProfile, operation_id="getSellerProfile")
def get_profile(seller_id: SellerInPath, context: Context) -> Response:
    """Who this API key belongs to: lets an integration check its configuration."""
    with context.database.registry_work("read") as work:
        seller = sellers.seller(work, seller_id)
    return json_response(
        SellerProfile(
            seller_id=seller.id,
            name=seller.name,
            currency=seller.currency,
            invoice_prefix=seller.invoice_prefix,
            created_at=seller.created_at,
        )
    )
