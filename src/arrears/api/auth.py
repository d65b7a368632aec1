"""Who is calling: a seller by API key, or the operator by the admin token.

A checked API key is remembered for `KEY_CACHE_SECONDS`, so that a busy client's
requests do not each read the key from the database. Revoking a key through this
process's admin API takes effect at once (the process forgets the seller's keys); a key
revoked elsewhere (another `serve --workers` process, `arrears keys revoke`) stops
working within `KEY_CACHE_SECONDS`.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated
from weakref import WeakKeyDictionary

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from arrears.api.context import Context
from arrears.domain.errors import Forbidden, NotFound, Unauthorized
from arrears.services.sellers import authenticate
from arrears.store.unit_of_work import Database

__all__ = [
    "KEY_CACHE_SECONDS",
    "AdminAccess",
    "SellerId",
    "SellerInPath",
    "forget_keys_of",
    "seller_of_key",
]

KEY_CACHE_SECONDS = 2.0
# Keys of this many clients at once; past it the cache starts afresh (no key is ever
# trusted longer, only looked up again sooner).
_KEY_CACHE_SIZE = 10_000
# Real elapsed time, whatever the business clock says (a test clock may stand still).
_monotonic = time.monotonic

_bearer = HTTPBearer(auto_error=False, description="A seller's API key.")
_admin_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminToken", description="ARREARS_ADMIN_TOKEN."
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)]


@dataclass(frozen=True, slots=True)
class _Checked:
    seller_id: str
    until: float  # _monotonic()


class _KeyCache:
    """API keys the database accepted lately, by the SHA-256 of the whole key (the
    secret itself is not kept)."""

    def __init__(self) -> None:
        self._checked: dict[bytes, _Checked] = {}
        self.generation = 0
        """Counts `forget` calls: a lookup that began before one is not remembered."""

    def seller_of(self, digest: bytes) -> str | None:
        checked = self._checked.get(digest)
        if checked is None or checked.until <= _monotonic():
            return None
        return checked.seller_id

    def remember(self, digest: bytes, seller_id: str, generation: int) -> None:
        if generation != self.generation:  # a key was revoked while it was looked up
            return
        if len(self._checked) >= _KEY_CACHE_SIZE:
            self._checked.clear()
        self._checked[digest] = _Checked(seller_id, _monotonic() + KEY_CACHE_SECONDS)

    def forget(self, seller_id: str) -> None:
        self.generation += 1
        for digest in [d for d, c in self._checked.items() if c.seller_id == seller_id]:
            del self._checked[digest]


# One cache per database, so that apps on different databases (tests) never share keys.
_caches: WeakKeyDictionary[Database, _KeyCache] = WeakKeyDictionary()


def _cache(database: Database) -> _KeyCache:
    cache = _caches.get(database)
    if cache is None:
        cache = _caches[database] = _KeyCache()
    return cache


def forget_keys_of(database: Database, seller_id: str) -> None:
    """Make this process check every key of `seller_id` against the database again (call
    after revoking one)."""
    _cache(database).forget(seller_id)


async def _seller_id(request: Request, context: Context, credentials: Credentials) -> str:
    seller_id = await _authenticated(context, credentials)
    # For a route's checks of a body that failed validation (encoding.on_invalid_body),
    # which run after FastAPI has given up on the endpoint but not on the seller.
    request.state.seller_id = seller_id
    return seller_id


async def _authenticated(context: Context, credentials: Credentials) -> str:
    if credentials is None:
        raise Unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    return await seller_of_key(context.database, credentials.credentials)


async def seller_of_key(database: Database, api_key: str) -> str:
    """The seller whose key `api_key` is: from this process's cache if checked within
    `KEY_CACHE_SECONDS`, otherwise from the database (then cached). Raises
    `Unauthorized` for a key that is unknown or revoked."""
    cache = _cache(database)
    digest = hashlib.sha256(api_key.encode()).digest()
    seller_id = cache.seller_of(digest)
    if seller_id is None:
        generation = cache.generation
        seller_id = await run_in_threadpool(_authenticate, database, api_key)
        cache.remember(digest, seller_id, generation)
    return seller_id


def _authenticate(database: Database, api_key: str) -> str:
    with database.registry_work("read") as work:
        return authenticate(work, api_key)


SellerId = Annotated[str, Depends(_seller_id)]
"""The id of the seller whose API key authenticated the request."""


async def _seller_in_path(
    seller_id: SellerId, path_seller_id: Annotated[str, Path(alias="sellerId")]
) -> str:
    # Same answer for another seller's id and an id that does not exist: nothing leaks.
    if path_seller_id != seller_id:
        raise Forbidden("This API key belongs to another seller.")
    return seller_id


SellerInPath = Annotated[str, Depends(_seller_in_path)]
"""The seller of `/api/sellers/{sellerId}/...`, checked against the API key (403)."""


async def _admin(context: Context, credentials: AdminCredentials) -> None:
    token = context.settings.admin_token
    if token is None:
        raise NotFound("Admin endpoints are disabled: ARREARS_ADMIN_TOKEN is unset.")
    if credentials is None or not hmac.compare_digest(
        credentials.credentials.encode(), token.encode()
    ):
        raise Unauthorized("Send the admin token as `Authorization: Bearer <token>`.")


AdminAccess = Depends(_admin)
