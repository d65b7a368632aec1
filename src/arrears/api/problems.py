"""Every error as `application/problem+json` (RFC 9457), rendered in one place."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from arrears.domain.errors import ArrearsError, FieldError, Invalid
from arrears.store.unit_of_work import Outage, outage_of

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "field_errors_from_pydantic",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

log = logging.getLogger("arrears.api")

PROBLEM_TYPE = "https://arrears.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# pydantic's error types, in the vocabulary of our own validation codes: one fault has
# one code on every surface (docs/api-conventions.md lists them).
_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "json_invalid": "malformed_json",
    "decimal_parsing": "not_a_decimal",
    "decimal_type": "not_a_decimal",
    "decimal_max_places": "too_many_decimals",
    "decimal_max_digits": "too_large",
    "decimal_whole_digits": "too_large",
    "finite_number": "not_a_decimal",
    "string_type": "not_a_string",
    "int_type": "not_an_integer",
    "int_parsing": "not_an_integer",
    "int_from_float": "not_an_integer",
    "bool_type": "not_a_boolean",
    "bool_parsing": "not_a_boolean",
    "list_type": "not_a_list",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "dict_type": "not_an_object",
    "datetime_type": "invalid_datetime",
    "datetime_parsing": "invalid_datetime",
    "datetime_from_date_parsing": "invalid_datetime",
    "string_too_short": "too_short",
    "string_too_long": "too_long",
    "too_short": "too_short",
    "too_long": "too_long",
    "string_pattern_mismatch": "invalid_format",
    "greater_than_equal": "too_small",
    "greater_than": "too_small",
    "less_than_equal": "too_large",
    "less_than": "too_large",
    "literal_error": "not_allowed",
    "enum": "not_allowed",
    "value_error": "invalid_value",
}

_encoder = msgspec.json.Encoder(decimal_format="number")


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    slug: str | None = None,
) -> Response:
    """A problem+json response; its `type` ends in `slug` (by default the status's
    phrase, e.g. `not-found`)."""
    slug = slug or HTTPStatus(status).phrase.lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [_field_error_json(error) for error in errors]
    return Response(
        _encoder.encode(body),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _field_error_json(error: FieldError) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if error.index is not None:
        out["index"] = error.index
    out.update(field=error.field, code=error.code, message=error.message)
    return out


def field_errors_from_pydantic(errors: Iterable[Any]) -> list[FieldError]:
    """Our field errors from pydantic's; paths become `A.B[2].C` in the caller's names."""
    out = []
    for error in errors:
        loc = list(error.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        index = next((part for part in loc if isinstance(part, int)), None)
        out.append(
            FieldError(
                field=_path(loc) or "body",
                code=_CODES.get(error["type"], error["type"]),
                message=_message(error),
                index=index,
            )
        )
    return out


def _path(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = str(part)
        else:
            text += f".{part}"
    return text


def _message(error: Any) -> str:
    if error["type"] == "json_invalid":
        return f"The body is not valid JSON: {error.get('ctx', {}).get('error', '')}".strip()
    if error["type"] == "string_pattern_mismatch":
        # pydantic's message shows the regular expression: no help to a caller.
        return "The text does not have the form this field takes; see the API reference."
    return str(error["msg"])


# Starlette types every handler as taking `Exception`; each is registered for one class.


async def _on_arrears_error(_request: Request, exc: Exception) -> Response:
    exc = cast(ArrearsError, exc)
    errors = exc.errors if isinstance(exc, Invalid) else ()
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(
        exc.status, exc.detail, title=exc.title, errors=errors, headers=headers, slug=exc.slug
    )


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    errors = field_errors_from_pydantic(cast(RequestValidationError, exc).errors())
    if any(error.code == "malformed_json" for error in errors):
        return problem_response(400, "The body is not valid JSON.", errors=errors)
    return problem_response(
        422, "The request has invalid fields; see errors.", title=Invalid.title, errors=errors
    )


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return problem_response(exc.status_code, detail, headers=headers)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names only the methods of the first route whose path matched;
    # `Allow` must name every method of the resource (RFC 9110 §10.2.1), and here
    # each method of a path is a route of its own.
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))


async def _on_client_disconnect(request: Request, _exc: Exception) -> Response:
    # The client went away while sending its body (a cancelled upload): nothing was
    # stored, nobody reads the answer, and it is no fault of the service.
    log.info(
        "client disconnected before sending its whole body: %s %s", request.method, request.url.path
    )
    return Response(status_code=400)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # A 500 is a bug to fix; the client learns nothing of the internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "An internal error occurred; it has been logged with this request's id."
    )


# A storage outage is no fault of the request and ends without anything changing here:
# 503 (the status every HTTP client and proxy knows as "try again later") with a type
# naming the cause and a Retry-After. A restart takes seconds, an operator freeing disk
# space or making the database writable takes longer (docs/faults.md).
_OUTAGES = {
    Outage.UNAVAILABLE: (
        "database-unavailable",
        "Database unavailable",
        "The database is unavailable; retry the request (with its Key or "
        "Idempotency-Key, so that it is stored once).",
        1,
    ),
    Outage.READ_ONLY: (
        "database-read-only",
        "Database read-only",
        "The database is read-only; nothing of this request was saved. Retry it once "
        "the operator has made the database writable.",
        30,
    ),
    Outage.FULL: (
        "storage-full",
        "Storage full",
        "The database's storage is full; nothing of this request was saved. Retry it "
        "once the operator has freed space.",
        30,
    ),
}


async def _on_database_error(request: Request, exc: Exception) -> Response:
    outage = outage_of(exc)
    if outage is None:  # a constraint or a bug, not the storage: that is a 500 to fix
        return await _on_unexpected(request, exc)
    slug, title, detail, retry_after = _OUTAGES[outage]
    cause = getattr(exc, "orig", None) or exc
    # One line, not the statement: a failed bulk insert would log every parameter.
    reason = str(cause).splitlines()[0] if str(cause) else ""
    log.warning(
        "database %s on %s %s: %s: %s",
        outage.value,
        request.method,
        request.url.path,
        type(cause).__name__,
        reason,
    )
    return problem_response(
        503, detail, title=title, slug=slug, headers={"Retry-After": str(retry_after)}
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error as a problem, and document the problems in the app's OpenAPI
    (see `document_problems`)."""
    _document_problems_in(app)
    app.add_exception_handler(ArrearsError, _on_arrears_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(SQLAlchemyError, _on_database_error)
    app.add_exception_handler(ClientDisconnect, _on_client_disconnect)
    app.add_exception_handler(Exception, _on_unexpected)


# -- the problems in the OpenAPI -----------------------------------------------------------

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_PROBLEM_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "title": "Problem",
        "description": "An error, as RFC 9457 problem details.",
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string", "description": "A URI naming the kind of problem."},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Every bad field of the request (validation errors only).",
                "items": {"$ref": "#/components/schemas/ProblemFieldError"},
            },
        },
    },
    "ProblemFieldError": {
        "title": "ProblemFieldError",
        "type": "object",
        "required": ["field", "code", "message"],
        "properties": {
            "index": {"type": "integer", "description": "The record's index in a list."},
            "field": {"type": "string", "description": "e.g. `MeteredComponents[0].Pricing`."},
            "code": {"type": "string", "description": "e.g. `required`, `unknown_field`."},
            "message": {"type": "string"},
        },
    },
}

# What FastAPI documents for its own validation errors, which this app never answers.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

_GENERIC_PROBLEMS = {
    400: "The body is not valid JSON.",
    401: "The key is missing, malformed, unknown or revoked.",
    403: "The key belongs to another seller.",
    404: "There is no such object for this seller (another seller's ids are not found either).",
    413: "The body is larger than the configured limit.",
    422: "The request has invalid fields; `errors` names every one of them.",
    503: "The database is unavailable, read-only or full; retry after `Retry-After` seconds.",
}


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` of a route: the problems it answers beyond those every route of its
    kind answers (see `document_problems`), each status with when it is answered."""
    return {status: _problem(description) for status, description in descriptions.items()}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Declare on every operation of `openapi` the problems that the request handling
    around the route answers, whatever the route does: 401 and 403 from the
    authentication, 404 for an id in the path, 400, 413 and 422 for a body, 422 for any
    parameter, and 503 when the database cannot take the request (every operation that
    needs a key reads the database). Routes declare their own other problems (e.g. 409)
    with `problem_responses`. FastAPI's own validation error schema, which the app
    never answers, is replaced by the problem's."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(_PROBLEM_SCHEMAS)
    for path, operations in openapi.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in _generic_problems(path, operation):
                declared = responses.get(str(status), {}).get("content", {})
                if PROBLEM_MEDIA_TYPE not in declared:
                    responses[str(status)] = _problem(_GENERIC_PROBLEMS[status])
    return openapi


def _generic_problems(path: str, operation: Mapping[str, Any]) -> list[int]:
    statuses = []
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if schemes:
        statuses += [401, 503]
    if "HTTPBearer" in schemes and "{sellerId}" in path:
        statuses.append(403)
    parameters = operation.get("parameters", [])
    if any(parameter["in"] == "path" for parameter in parameters):
        statuses.append(404)
    if "requestBody" in operation:
        statuses += [400, 413, 422]
    elif parameters:
        statuses.append(422)
    return statuses


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}}


def _document_problems_in(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
