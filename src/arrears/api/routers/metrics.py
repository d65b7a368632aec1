"""`GET /metrics`: this process's Prometheus metrics (docs/operating.md, "Metrics").

Outside the OpenAPI document: it is for the operator's scraper, not for sellers. It
needs no key unless `ARREARS_METRICS_TOKEN` is set, as is usual for metrics served on
an internal network; no label names a tenant, so a scrape reveals no seller's data."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from arrears.domain.errors import Unauthorized
from arrears.metrics import exposed_registry

__all__ = ["METRICS_PATH", "metrics_router"]

METRICS_PATH = "/metrics"


def metrics_router(token: str | None) -> APIRouter:
    """The `/metrics` route; with a `token`, a scrape must send it as a bearer token."""
    router = APIRouter()
    expected = f"Bearer {token}".encode() if token is not None else None

    @router.get(METRICS_PATH, include_in_schema=False)
    def metrics(request: Request) -> Response:
        if expected is not None:
            sent = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(sent, expected):
                raise Unauthorized("Send the metrics token as `Authorization: Bearer <token>`.")
        # The text format by default, OpenMetrics when the scraper asks for it.
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(exposed_registry()), media_type=content_type)

    return router
