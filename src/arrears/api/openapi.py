"""What the OpenAPI says beyond the routes' own models: readable operation ids and the
response headers that the request handling around every route sends (SPEC §2, "OpenAPI
is fit for generators"; docs/api-conventions.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

__all__ = ["LOCATION_HEADER", "document_headers", "install_openapi", "operation_id"]


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase (`create_usage` -> `createUsage`): a verb
    and its object, which generators turn into method names. A route whose function name
    does not read so sets `operation_id=` itself."""
    head, *rest = route.name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


LOCATION_HEADER: dict[str, Any] = {
    "Location": {
        "description": "Where the created object (here: the task) can be read.",
        "schema": {"type": "string", "format": "uri-reference"},
    }
}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

_TOTAL_COUNT = {
    "X-Total-Count": {
        "description": "The number of items in the whole collection, not just this page.",
        "schema": {"type": "integer", "minimum": 0},
    }
}

# Statuses whose answers carry Retry-After wherever they are answered.
_RETRIED = ("429", "503")


def document_headers(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare the headers every route of a kind sends: `Retry-After` on the `429` and
    `503` of each operation that takes a key (the outage handler of the database behind
    it sends one; `/readyz`'s own 503 is for probes, which do not wait), `X-Total-Count`
    on each paged list (a `GET` answering an array, see `list_response`). Idempotent."""
    for operations in openapi.get("paths", {}).values():
        for method, operation in operations.items():
            responses: Mapping[str, dict[str, Any]] = operation.get("responses", {})
            for status in _RETRIED:
                if status in responses and operation.get("security"):
                    responses[status].setdefault("headers", {}).update(_RETRY_AFTER)
            ok = responses.get("200")
            if method == "get" and ok is not None and _answers_array(ok):
                ok.setdefault("headers", {}).update(_TOTAL_COUNT)
    return openapi


def _answers_array(response: Mapping[str, Any]) -> bool:
    content = response.get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("type") == "array")


def install_openapi(app: FastAPI, schemas: Mapping[str, dict[str, Any]]) -> None:
    """Make `app.openapi()` declare the headers of `document_headers` too, and hold
    `schemas` (written by hand, for bodies that routes read themselves) by name."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        return document_headers(document)

    app.openapi = openapi  # type: ignore[method-assign]
