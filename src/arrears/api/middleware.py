"""ASGI middleware: request ids, access logs, HTTP metrics and the request size limit."""

from __future__ import annotations

import logging
import random
import re
import time
import weakref
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arrears import metrics
from arrears.api.problems import problem_response
from arrears.api.routers.metrics import METRICS_PATH
from arrears.logs import ACCESS_LOGGER, request_id_var

__all__ = ["BodyLimitMiddleware", "RequestContextMiddleware"]

log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER = REQUEST_ID_HEADER.encode()
# A client-chosen id is kept only if it is short and harmless in a log line.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class RequestContextMiddleware:
    """Gives every request an id (the client's `X-Request-ID` if sane), echoes it in the
    response header, puts it on every log line, logs one access line per request and,
    with `measure`, counts it in the HTTP metrics.

    Scrapes of `/metrics` are logged at DEBUG: a scraper calls every few seconds, and
    its lines would drown the ones that matter."""

    def __init__(self, app: ASGIApp, *, measure: bool = True) -> None:
        self.app = app
        self.measure = measure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        if self.measure:
            metrics.HTTP_REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method, path = scope["method"], scope["path"]
            if self.measure:
                metrics.HTTP_REQUESTS_IN_PROGRESS.dec()
                _count(scope, method, status, seconds)
            _log_access(method, path, status, seconds)
            request_id_var.reset(token)


def _log_access(method: str, path: str, status: int, seconds: float) -> None:
    level = logging.DEBUG if path == METRICS_PATH else logging.INFO
    if not log.isEnabledFor(level):
        return
    # `log.log` would first walk the stack for the caller's file and line, which no
    # line shows: a fifth of the line's cost. The record is otherwise the same.
    extra = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
    }
    log.handle(
        log.makeRecord(
            log.name, level, "", 0, "%s %s %s", (method, path, status), None, extra=extra
        )
    )


# Any other method (clients may send anything) is one label value, to bound the series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"
"""The route label of a request that matched no route (a 404 for an unknown path)."""


def _count(scope: Scope, method: str, status: int, seconds: float) -> None:
    key = (method if method in _METHODS else "OTHER", _route_template(scope), status)
    series = _SERIES.get(key)
    if series is None:
        # `labels()` validates and locks on every call; the children it returns are
        # kept, one pair per series (bounded, like the series themselves).
        series = _SERIES[key] = (
            metrics.HTTP_REQUESTS.labels(key[0], key[1], str(status)),
            metrics.HTTP_REQUEST_SECONDS.labels(key[0], key[1]),
        )
    series[0].inc()
    series[1].observe(seconds)


_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _route_template(scope: Scope) -> str:
    """The path template of the route that answered (`/api/v1/contracts/{contractId}`),
    never the raw path: ids in labels would make a series per contract."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    # Answered before routing (a body refused with 413), or by no route (404).
    return _match_template(scope.get("app"), scope["path"]) or UNMATCHED_ROUTE


_TEMPLATES: weakref.WeakKeyDictionary[Any, list[tuple[re.Pattern[str], str]]] = (
    weakref.WeakKeyDictionary()
)
"""Per app: the documented path templates, compiled as the router compiles them."""


def _match_template(app: Any, path: str) -> str | None:
    """The documented template `path` matches, in route order. The OpenAPI document is
    the public list of the app's templates (FastAPI nests included routers in private
    types). Only responses sent before routing and 404s come here: rare enough."""
    if not isinstance(app, FastAPI):
        return None
    templates = _TEMPLATES.get(app)
    if templates is None:
        templates = _TEMPLATES[app] = [
            (compile_path(template)[0], template) for template in app.openapi()["paths"]
        ]
    for pattern, template in templates:
        if pattern.match(path):
            return template
    return None


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == _REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(candidate):
                return candidate
    # 128 random bits, as uuid4's hex: unique, and a sixth of uuid4's cost (which reads
    # the OS's random source for each). An id names a request, it guards nothing.
    return f"{random.getrandbits(128):032x}"


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class BodyLimitMiddleware:
    """Refuses request bodies over the limit with a 413 problem: at once when
    `Content-Length` says so, otherwise as soon as the bytes read pass the limit.

    `overrides` maps a path pattern to its own limit (bulk submissions are larger)."""

    def __init__(
        self, app: ASGIApp, limit: int, overrides: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        self.overrides = [(re.compile(pattern), size) for pattern, size in overrides]

    def _limit_for(self, path: str) -> int:
        for pattern, size in self.overrides:
            if pattern.fullmatch(path):
                return size
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = problem_response(413, BodyTooLarge(limit).detail)
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPExceptions from body reading as they are,
                    # so the problem handler renders this one.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, receive_within_limit, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
