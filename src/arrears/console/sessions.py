"""Console sessions: sign-in with an API key, a signed cookie, CSRF tokens.

The cookie holds `<key id>.<expiry>.<nonce>.<signature>` and never the key itself. The
signature is an HMAC keyed by the key's stored SHA-256 digest, which only the database
and whoever holds the key can know; so the session needs no server-side table and no
secret setting, works across `serve --workers` processes, and every request checks the
key in the key store: once the key is revoked, its sessions end at the next request.

Each form carries a CSRF token, an HMAC of the session's nonce under the same key (the
sign-in form, before there is a session, a random token also set as a cookie: a double
submit). SameSite=Strict already keeps other sites' requests cookie-less; the token is
the second lock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from arrears.api.context import AppContext
from arrears.domain.errors import ArrearsError, Unauthorized
from arrears.services.sellers import authenticate
from arrears.store.unit_of_work import Database

__all__ = [
    "COOKIE",
    "SESSION_LIFETIME",
    "SIGN_IN_COOKIE",
    "ConsoleSession",
    "CsrfRefused",
    "NoSession",
    "SessionOf",
    "check_csrf",
    "clear_session",
    "new_sign_in_token",
    "set_sign_in_token",
    "sign_in",
    "start_session",
]

COOKIE = "arrears_console"
SIGN_IN_COOKIE = "arrears_console_sign_in"
SESSION_LIFETIME = timedelta(hours=8)
"""A working day: an operator signs in once in the morning."""
PATH = "/console"


class NoSession(Exception):
    """The request has no valid session: the console answers with the sign-in page."""


class CsrfRefused(ArrearsError):
    """A form came without its CSRF token (or with another session's)."""

    status = 403


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    seller_id: str
    seller_name: str
    key_id: str
    csrf_token: str


def _mac(digest_hex: str, *parts: str) -> str:
    return hmac.new(bytes.fromhex(digest_hex), "|".join(parts).encode(), hashlib.sha256).hexdigest()


def sign_in(database: Database, api_key: str, now: datetime) -> tuple[str, datetime]:
    """The cookie value of a new session for `api_key`, and when it expires;
    `Unauthorized` for a key that is malformed, unknown or revoked."""
    if "\x00" in api_key:  # PostgreSQL refuses NUL bytes in text; no key has one
        raise Unauthorized("The API key is malformed.")
    with database.registry_work("read") as work:
        authenticate(work, api_key)
        key_id = api_key.split("_")[1]
        record = work.sellers.find_key(key_id)
    if record is None:  # revoked and removed between the two reads
        raise Unauthorized("The API key is not valid.")
    expires = now + SESSION_LIFETIME
    stamp = str(int(expires.timestamp()))
    nonce = secrets.token_hex(16)
    signature = _mac(record.secret_sha256, "session", key_id, stamp, nonce)
    return f"{key_id}.{stamp}.{nonce}.{signature}", expires


def _session(database: Database, cookie: str, now: datetime) -> ConsoleSession:
    parts = cookie.split(".")
    # Key ids are letters and digits; anything else (a NUL byte, which PostgreSQL
    # refuses to compare) cannot name a key.
    if len(parts) != 4 or not parts[1].isdigit() or not parts[0].isascii():
        raise NoSession
    key_id, stamp, nonce, signature = parts
    if not key_id.isalnum():
        raise NoSession
    if int(stamp) <= now.timestamp():
        raise NoSession
    with database.registry_work("read") as work:
        registry = work.sellers
        record = registry.find_key(key_id)
        if record is None or record.revoked_at is not None:
            raise NoSession
        expected = _mac(record.secret_sha256, "session", key_id, stamp, nonce)
        if not hmac.compare_digest(expected, signature):
            raise NoSession
        seller = registry.get(record.seller_id)
    if seller is None:
        raise NoSession
    return ConsoleSession(
        seller_id=seller.id,
        seller_name=seller.name,
        key_id=key_id,
        csrf_token=_mac(record.secret_sha256, "csrf", nonce),
    )


def _console_session(request: Request) -> ConsoleSession:
    context: AppContext = request.app.state.context
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise NoSession
    return _session(context.database, cookie, context.clock.now())


SessionOf = Annotated[ConsoleSession, Depends(_console_session)]
"""The signed-in operator's session; a request without one gets the sign-in page."""


def check_csrf(expected: str, form: dict[str, str]) -> None:
    """`CsrfRefused` unless the form's `csrf_token` is `expected`."""
    sent = form.get("csrf_token", "")
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("The form has expired or did not come from this console; try again.")


def new_sign_in_token() -> str:
    return secrets.token_hex(16)


def _secure(request: Request) -> bool:
    # Behind a TLS-terminating proxy, uvicorn's --proxy-headers sets the scheme.
    return request.url.scheme == "https"


def start_session(request: Request, response: Response, cookie: str, expires: datetime) -> None:
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        expires=expires,
        path=PATH,
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)


def set_sign_in_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SIGN_IN_COOKIE, token, path=PATH, secure=_secure(request), httponly=True, samesite="strict"
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=PATH, secure=_secure(request), httponly=True, samesite="strict"
    )
