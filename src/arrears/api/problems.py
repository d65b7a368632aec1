"""Every error as `application/problem+json` (RFC 9457), rendered in one place."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

import msgspec
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from arrears.domain.errors import ArrearsError, FieldError, Invalid

__all__ = ["field_errors_from_pydantic", "install_problem_handlers", "problem_response"]

log = logging.getLogger("arrears.api")

PROBLEM_TYPE = "https://arrears.dev/problems/"

# pydantic's error types, in the vocabulary of our own validation codes
_CODES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "json_invalid": "malformed_json",
    "decimal_parsing": "not_a_decimal",
    "decimal_type": "not_a_decimal",
    "decimal_max_places": "too_many_decimals",
    "decimal_max_digits": "too_many_digits",
    "decimal_whole_digits": "too_many_digits",
    "finite_number": "not_finite",
}

_encoder = msgspec.json.Encoder(decimal_format="number")


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    slug = HTTPStatus(status).phrase.lower().replace(" ", "-")
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
        media_type="application/problem+json",
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
    return str(error["msg"])


# Starlette types every handler as taking `Exception`; each is registered for one class.


async def _on_arrears_error(_request: Request, exc: Exception) -> Response:
    exc = cast(ArrearsError, exc)
    errors = exc.errors if isinstance(exc, Invalid) else ()
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return problem_response(exc.status, exc.detail, title=exc.title, errors=errors, headers=headers)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    errors = field_errors_from_pydantic(cast(RequestValidationError, exc).errors())
    if any(error.code == "malformed_json" for error in errors):
        return problem_response(400, "The body is not valid JSON.", errors=errors)
    return problem_response(
        422, "The request has invalid fields; see errors.", title=Invalid.title, errors=errors
    )


async def _on_http_exception(_request: Request, exc: Exception) -> Response:
    exc = cast(HTTPException, exc)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # A 500 is a bug to fix; the client learns nothing of the internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "An internal error occurred; it has been logged with this request's id."
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ArrearsError, _on_arrears_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
