"""The fast lane: the two requests that come by the thousand, a single usage post and
`GET /healthz`, answered without FastAPI's routing and dependency solving.

Routing tries the app's routes one by one and solving a post's dependencies (the key,
the context, the path, the body) runs generic machinery for each: together several
times what the post itself costs (docs/load.md, "Where a request's CPU goes"). Here
a request of the lane's shape is matched by one regular expression and calls the very
function its route calls (`usage.store_usage`, `health.healthz`), with the same
decoding and validation of its body, the same key check and the same answer.

Only a request that is certainly valid takes the lane: a good API key (checked as the
route checks it, through the same cache), a JSON body that decodes without a repeated
key and validates, no query string. Anything else (a bad
body, an unknown or uncached key, another content type) goes down the app's usual road
with its body replayed, so every error is the one the route gives, found at once with
the others (SPEC §2).
Errors raised on the lane (an unknown contract, a `Key` reused, an outage) are
answered by the app's own exception handlers. The routes stay where they are: they
document both requests in the OpenAPI and answer whatever the lane leaves them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arrears.api import auth
from arrears.api.context import AppContext
from arrears.api.encoding import json_response
from arrears.api.routers import health, usage
from arrears.domain.errors import Invalid, Unauthorized
from arrears.services.json_bodies import read_json

__all__ = ["FastLane"]

_USAGE_PATH = re.compile(r"/api/v1/contracts/([^/]+)/usage")
_HEALTHZ_PATH = "/healthz"
_JSON = b"application/json"


class FastLane:
    """ASGI middleware, innermost: inside the request context (request id, access line,
    metrics) and the body limit, so that lane requests get all of them."""

    def __init__(self, app: ASGIApp, *, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi
        self._usage_route = _route(usage.router, usage.create_usage)
        self._healthz_route = _route(health.router, health.healthz)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("root_path") or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        if method == "GET" and path == _HEALTHZ_PATH:
            scope["route"] = self._healthz_route  # for the metrics' route label
            await json_response(health.healthz())(scope, receive, send)
            return
        matched = _USAGE_PATH.fullmatch(path) if method == "POST" else None
        if matched is None or "\x00" in path:
            await self.app(scope, receive, send)
            return
        await self._post_usage(scope, receive, send, matched.group(1))

    async def _post_usage(
        self, scope: Scope, receive: Receive, send: Send, contract_id: str
    ) -> None:
        context: AppContext = self.fastapi.state.context
        try:
            seller_id = await _seller(scope, context)
        except Exception as error:  # the key's lookup met an outage: the route's 503
            await (await self._handled(scope, receive, error))(scope, receive, send)
            return
        if seller_id is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except Exception as error:  # too large, or the client went away
            await (await self._handled(scope, receive, error))(scope, receive, send)
            return
        new_usage = _valid_body(body)
        if new_usage is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        scope["route"] = self._usage_route
        try:
            response = await usage.store_usage(context, seller_id, contract_id, new_usage)
        except Exception as error:  # answered as the route's errors are
            response = await self._handled(scope, receive, error)
        await response(scope, receive, send)

    async def _handled(self, scope: Scope, receive: Receive, error: Exception) -> Response:
        """The app's own answer to `error`: its handler, found as Starlette's exception
        middleware finds it (by status, then by class); errors with no handler but the
        last resort's go on to it, as from any route."""
        handlers = self.fastapi.exception_handlers
        handler = None
        if isinstance(error, HTTPException):
            handler = handlers.get(error.status_code)
        for kind in type(error).__mro__:
            if handler is not None or kind is Exception:
                break
            handler = handlers.get(kind)
        if handler is None:
            raise error
        answer: Response = await handler(Request(scope, receive), error)
        return answer


def _route(router: APIRouter, endpoint: Any) -> APIRoute:
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


async def _seller(scope: Scope, context: AppContext) -> str | None:
    """The seller of the request's API key, if the key is good and the body JSON;
    otherwise None, for the route to answer (a bad key with the route's 401)."""
    authorization = content_type = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"content-type":
            content_type = value
    if content_type != _JSON or authorization is None:
        return None
    scheme, _, key = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not key or " " in key:
        return None
    try:
        return await auth.seller_of_key(context.database, key)
    except Unauthorized:
        return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _valid_body(body: bytes) -> usage.NewUsage | None:
    """The body as the route would validate it, or None if it has any fault at all."""
    try:
        read = read_json(body)
        if read.repeated or not isinstance(read.value, dict):
            return None
        return usage.NewUsage.model_validate(read.value)
    except (ValueError, ValidationError, Invalid):  # not JSON, or too deep
        return None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` as if the body had not been read yet."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
