"""Who is calling: a seller by API key, or the operator by the admin token."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Path
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from arrears.api.context import Context
from arrears.domain.errors import Forbidden, NotFound, Unauthorized
from arrears.services.sellers import authenticate

__all__ = ["AdminAccess", "SellerId", "SellerInPath"]

_bearer = HTTPBearer(auto_error=False, description="A seller's API key.")
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="ARREARS_ADMIN_TOKEN."
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)]


def _seller_id(context: Context, credentials: Credentials) -> str:
    if credentials is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    with context.database.read() as session:
        return authenticate(session, credentials.credentials)


SellerId = Annotated[str, Depends(_seller_id)]
"""The id of the seller whose API key authenticated the request."""


def _seller_in_path(
    seller_id: SellerId, path_seller_id: Annotated[str, Path(alias="sellerId")]
) -> str:
    # Same answer for another seller's id and an id that does not exist: nothing leaks.
    if path_seller_id != seller_id:
        raise Forbidden("This API key belongs to another seller.")
    return seller_id


SellerInPath = Annotated[str, Depends(_seller_in_path)]
"""The seller of `/api/sellers/{sellerId}/...`, checked against the API key (403)."""


def _admin(context: Context, credentials: AdminCredentials) -> None:
    token = context.settings.admin_token
    if token is None:
        raise NotFound("Admin endpoints are disabled: ARREARS_ADMIN_TOKEN is unset.")
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), token.encode()
    ):
        raise Unauthorized("Send the admin token as `Authorization: Bearer <token>`.")


AdminAccess = Depends(_admin)
