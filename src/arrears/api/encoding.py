"""JSON in and out without binary floating point.

Request bodies are read by `services.json_bodies`: nesting limited before decoding,
every JSON number that has a fraction or exponent read straight into `Decimal` (never
`float`), NaN/Infinity rejected as malformed JSON, and repeated keys found. A body with
a repeated key is refused with `422` naming the key, together with every other fault
of the body. Responses are encoded with decimals written as exact JSON numbers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import msgspec
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from arrears.domain.errors import FieldError, Invalid, NotFound
from arrears.services.json_bodies import JsonBody, read_json

__all__ = [
    "ArrearsJSONResponse",
    "ArrearsRoute",
    "OnInvalidBody",
    "decode_json",
    "encode_json",
    "json_response",
    "on_invalid_body",
]

_encoder = msgspec.json.Encoder(decimal_format="number")


def decode_json(body: bytes) -> Any:
    """Decode JSON with Decimal numbers; raises `json.JSONDecodeError` when malformed and
    `json_bodies.TooDeep` when nested too deep. Repeated keys keep their last value."""
    return read_json(body).value


def encode_json(content: Any) -> bytes:
    """`content` (plain data: dicts, lists, strings, decimals, datetimes) as the JSON every
    response body is: decimals as exact numbers, aware datetimes in RFC 3339."""
    return _encoder.encode(content)


class ArrearsJSONResponse(JSONResponse):
    # A JSONResponse, so that FastAPI documents each route's response model in the
    # OpenAPI (for any other response class it documents the body as a plain string).
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="python", by_alias=True)
        return _encoder.encode(content)


def json_response(model: BaseModel, status_code: int = 200, **kwargs: Any) -> ArrearsJSONResponse:
    """Render a response model exactly (decimals as numbers, instants in UTC with `Z`)."""
    return ArrearsJSONResponse(model, status_code=status_code, **kwargs)


class _DecimalJSONRequest(Request):
    _read: JsonBody

    async def json(self) -> Any:
        if not hasattr(self, "_read"):
            self._read = read_json(await self.body())
            self._json = self._read.value
        return self._json

    @property
    def repeated_keys(self) -> tuple[tuple[str | int, ...], ...]:
        read = getattr(self, "_read", None)
        return read.repeated if read is not None else ()


OnInvalidBody = Callable[[Request, Any], Awaitable[list[FieldError]]]
"""A route's own checks of a body that failed validation: the business rules that can
still be judged on its valid parts (e.g. a due date against the contract), so that one
`422` names them together with the body's other faults (SPEC §2)."""

E = TypeVar("E", bound=Callable[..., Any])


def on_invalid_body(check: OnInvalidBody) -> Callable[[E], E]:
    """Mark an endpoint: when its body fails validation, `check` adds its errors."""

    def mark(endpoint: E) -> E:
        endpoint.__arrears_on_invalid_body__ = check  # type: ignore[attr-defined]
        return endpoint

    return mark


class ArrearsRoute(APIRoute):
    """A route whose JSON body is read by `json_bodies.read_json` instead of
    `json.loads`, and refused with every fault at once when it repeats a key."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        on_invalid: OnInvalidBody | None = getattr(
            self.endpoint, "__arrears_on_invalid_body__", None
        )

        async def route(request: Request) -> Response:
            _refuse_nul_characters(request)
            request = _DecimalJSONRequest(request.scope, request.receive)
            if self.body_field is not None:
                await self._refuse_repeated_keys(request)
            try:
                return await handler(request)
            except RequestValidationError as invalid:
                if on_invalid is None or not hasattr(request, "_json"):
                    raise
                extra = await on_invalid(request, request._json)
                if not extra:
                    raise
                raise RequestValidationError(
                    [*invalid.errors(), *(_as_pydantic(error) for error in extra)]
                ) from None

        return route

    async def _refuse_repeated_keys(self, request: _DecimalJSONRequest) -> None:
        # Read here, before FastAPI validates and calls the endpoint: a body that repeats
        # a key must not reach it, yet its other faults are named in the same answer.
        if not await request.body():
            return
        try:
            value = await request.json()
        except json.JSONDecodeError:
            return  # FastAPI reads it again and answers it as malformed
        repeated = request.repeated_keys
        if not repeated or self.body_field is None:
            return
        _, errors = self.body_field.validate(value, {}, loc=("body",))
        raise RequestValidationError(
            [
                *errors,
                *(
                    {
                        "type": "duplicate_key",
                        "loc": ("body", *path),
                        "msg": f"The key {path[-1]!r} appears more than once in one object.",
                        "input": None,
                    }
                    for path in repeated
                ),
            ]
        )


def _refuse_nul_characters(request: Request) -> None:
    # No stored id or filter value holds U+0000, and PostgreSQL cannot even compare
    # text with it: answer as for any id that does not exist, or a bad parameter.
    if "\x00" in request.scope["path"]:
        raise NotFound("There is no such object.")
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise Invalid.one(name, "nul_character", "Text must not contain the character U+0000.")


def _as_pydantic(error: FieldError) -> dict[str, Any]:
    # `problems.field_errors_from_pydantic` renders it back: the path is already ours.
    return {"type": error.code, "loc": ("body", error.field), "msg": error.message, "input": None}
