"""JSON in and out without binary floating point.

Request bodies are decoded with every JSON number that has a fraction or exponent read
straight into `Decimal` (never `float`), and NaN/Infinity rejected as malformed JSON.
Responses are encoded with decimals written as exact JSON numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

import msgspec
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from arrears.domain.errors import Invalid, NotFound

__all__ = ["ArrearsJSONResponse", "ArrearsRoute", "decode_json", "json_response"]

_decoder = msgspec.json.Decoder(float_hook=Decimal)
_encoder = msgspec.json.Encoder(decimal_format="number")


def decode_json(body: bytes) -> Any:
    """Decode JSON with Decimal numbers; raises `json.JSONDecodeError` when malformed."""
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as error:
        raise json.JSONDecodeError(str(error), body.decode("utf-8", "replace"), 0) from None


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
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = decode_json(await self.body())
        return self._json


class ArrearsRoute(APIRoute):
    """A route whose JSON body is parsed by `decode_json` instead of `json.loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            _refuse_nul_characters(request)
            return await handler(_DecimalJSONRequest(request.scope, request.receive))

        return route


def _refuse_nul_characters(request: Request) -> None:
    # No stored id or filter value holds U+0000, and PostgreSQL cannot even compare
    # text with it: answer as for any id that does not exist, or a bad parameter.
    if "\x00" in request.scope["path"]:
        raise NotFound("There is no such object.")
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise Invalid.one(name, "nul_character", "Text must not contain the character U+0000.")
