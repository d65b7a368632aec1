"""Base classes of the wire models: one per naming style of the two surfaces."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_pascal
from pydantic.errors import PydanticInvalidForJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError

from arrears.api.encoding import ArrearsJSONResponse
from arrears.domain.clock import in_range, require_utc
from arrears.domain.errors import Invalid
from arrears.domain.grammar import NotInGrammar, parse_decimal, parse_instant
from arrears.domain.limits import (
    DECIMAL_PRECISION,
    EARLIEST,
    LATEST,
    MAX_TAX_RATE,
    PRICE_PLACES,
    QUANTITY_PLACES,
    TAX_RATE_PLACES,
)
from arrears.domain.money import currency, currency_codes, decimal_places
from arrears.domain.usage import check_decimal

__all__ = [
    "DECIMAL_NUMBER",
    "DECIMAL_STRING",
    "AnyDecimal",
    "CamelModel",
    "CurrencyCode",
    "DecimalIn",
    "ExactDecimal",
    "Instant",
    "PascalModel",
    "Percent",
    "PlainDecimal",
    "Price",
    "Quantity",
    "declared_as",
    "domain_rule",
    "list_response",
]

T = TypeVar("T")
R = TypeVar("R")


class _WireModel(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL cannot store U+0000 in text; refuse it here, naming the field,
        # instead of failing in the database. Nested models check their own fields.
        if isinstance(data, dict):
            bad = [
                (key, index)
                for key, value in data.items()
                for index, text in _strings(value)
                if "\x00" in text
            ]
            if bad:
                raise ValidationError.from_exception_data(
                    "nul character",
                    [
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "nul_character", "Text must not contain the character U+0000."
                            ),
                            loc=(key,) if index is None else (key, index),
                            input=data[key],
                        )
                        for key, index in bad
                    ],
                )
        return data


def _strings(value: Any) -> list[tuple[int | None, str]]:
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, list):
        return [(i, item) for i, item in enumerate(value) if isinstance(item, str)]
    return []


class PascalModel(_WireModel):
    """Contract usage API: PascalCase JSON, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="forbid", frozen=True
    )


class CamelModel(_WireModel):
    """Seller consumption and admin APIs: camelCase JSON, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _plain(value: Decimal) -> Decimal:
    # 12.500000 is stored; 12.5 was sent. Same number, but answer in the sender's form,
    # and never in exponent form (1E+3) that some JSON readers mishandle, nor as -0.
    if value.is_zero():
        return Decimal(0)
    # In a context wide enough for every amount (the default 28 digits would round a
    # tier's exact amount, or fail on a period's sum of large quantities).
    normal = value.normalize(_WIDE)
    if normal.as_tuple().exponent > 0:  # type: ignore[operator]
        return normal.quantize(Decimal(1), context=_WIDE)
    return normal


_WIDE = Context(prec=DECIMAL_PRECISION, traps=[InvalidOperation, Inexact])


class _DecimalSchema:
    """Declares a decimal as OpenAPI's `decimal` format, so that generators do not take it
    for a float: in requests a JSON number or a string (pydantic's own branches, with
    their bounds), in responses a JSON number (see `encoding`), never the string that
    pydantic would document. docs/api-conventions.md says what a client does with it."""

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if handler.mode == "serialization":
            return dict(DECIMAL_NUMBER)
        try:
            schema = handler(core)
        except PydanticInvalidForJsonSchema:  # validated by a function of our own
            schema = {}
        branches = [b for b in schema.get("anyOf", ()) if b.get("type") in ("number", "string")]
        if not branches:  # pydantic knows no branches: declare both
            return {"anyOf": [dict(DECIMAL_NUMBER), dict(DECIMAL_STRING)]}
        for branch in branches:
            branch["format"] = "decimal"
        return schema


DECIMAL_NUMBER = {"type": "number", "format": "decimal"}
DECIMAL_STRING = {"type": "string", "format": "decimal"}

ExactDecimal = Annotated[Decimal, _DecimalSchema()]
"""A decimal in responses, exactly as it is (3.00 EUR keeps its zeros)."""

PlainDecimal = Annotated[Decimal, PlainSerializer(_plain, return_type=Decimal), _DecimalSchema()]
"""A decimal in responses: exact, without trailing zeros or exponent."""


def _decimal_grammar(value: object) -> Decimal:
    try:
        return parse_decimal(value)
    except NotInGrammar as fault:
        raise PydanticCustomError(fault.code, "{message}", {"message": fault.message}) from None


DecimalIn = BeforeValidator(_decimal_grammar)
"""What makes a field a decimal of a request: a JSON number or a JSON string of the one
decimal grammar (`domain.grammar.parse_decimal`), nothing else. Every decimal request
field is built on it, so that the grammar (and its schema) is declared once."""


def _within(places: int) -> AfterValidator:
    # The domain's own rule (≥ 0, below 10^12, at most `places` places), with its codes.
    def check(value: Decimal) -> Decimal:
        error = check_decimal(value, "The value", places)
        if error is not None:
            raise PydanticCustomError(error.code, "{message}", {"message": error.message})
        return value

    return AfterValidator(check)


def _percent(value: Decimal) -> Decimal:
    if value < 0:
        raise PydanticCustomError("negative", "A percentage must not be negative.")
    if value > MAX_TAX_RATE:
        raise PydanticCustomError("too_large", f"A percentage is at most {MAX_TAX_RATE}.")
    if decimal_places(value) > TAX_RATE_PLACES:
        raise PydanticCustomError(
            "too_many_decimals", f"A percentage has at most {TAX_RATE_PLACES} decimal places."
        )
    return value


class _Bounds:
    """Declares in the OpenAPI the bounds that the domain's rules check (the checking is
    theirs, so that a fault has the domain's code): a generator then sends values within
    them, and a client learns them from the schema."""

    def __init__(self, minimum: int = 0, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core)
        if handler.mode == "validation":
            for branch in schema.get("anyOf", ()):
                if branch.get("type") == "number":
                    branch["minimum"] = self.minimum
                    if self.maximum is not None:
                        branch["maximum"] = self.maximum
        return schema


Quantity = Annotated[PlainDecimal, DecimalIn, _within(QUANTITY_PLACES), _Bounds()]
"""A quantity ≥ 0 below 10^12 with at most 6 decimal places (JSON number or string)."""

AnyDecimal = Annotated[PlainDecimal, DecimalIn]
"""A decimal whose rules (sign, places, size) the domain checks, together with the
other rules of the same record, so that every broken rule is named at once."""

Price = Annotated[PlainDecimal, DecimalIn, _within(PRICE_PLACES), _Bounds()]
"""A price or fee ≥ 0 below 10^12 with at most 6 decimal places."""

Percent = Annotated[PlainDecimal, DecimalIn, AfterValidator(_percent), _Bounds(0, MAX_TAX_RATE)]
"""A tax rate in percent (19 means 19 %), from 0 to 100 with at most 4 decimal places."""


def _iso_8601(value: object) -> object:
    # The one timestamp grammar (domain.grammar.parse_instant); pydantic's own would
    # also take Unix times ("1700000000") and offsets with seconds.
    if isinstance(value, datetime):
        return value
    try:
        return parse_instant(value)
    except NotInGrammar as fault:
        raise PydanticCustomError(fault.code, "{message}", {"message": fault.message}) from None


def _within_bounds(value: datetime) -> datetime:
    instant = require_utc(value)
    if not in_range(instant):
        raise PydanticCustomError(
            "out_of_range",
            f"An instant must lie between the years {EARLIEST.year} and {LATEST.year - 1}.",
        )
    return instant


Instant = Annotated[datetime, BeforeValidator(_iso_8601), AfterValidator(_within_bounds)]
"""An ISO 8601 timestamp between 1900 and 7999; without an offset it is UTC. Held in UTC."""


def list_response(items: Sequence[BaseModel], total: int) -> ArrearsJSONResponse:
    """A page of a collection: a JSON array, and the collection's size in `X-Total-Count`."""
    return ArrearsJSONResponse(
        [item.model_dump(mode="python", by_alias=True) for item in items],
        headers={"X-Total-Count": str(total)},
    )


def domain_rule(check: Callable[[T], R]) -> AfterValidator:
    """Run a domain validation inside the wire model, so its errors are reported
    together with pydantic's own (every bad field at once, not one layer at a time).

    `check` returns the validated value or raises `Invalid`. Error paths are taken as
    relative to the field being validated; a scalar has no sub-fields, so for a scalar
    the error is the field's own."""

    def validate(value: T) -> R:
        try:
            return check(value)
        except Invalid as invalid:
            nested = isinstance(value, dict | list)
            raise ValidationError.from_exception_data(
                "domain rule",
                [
                    InitErrorDetails(
                        type=PydanticCustomError(e.code, "{message}", {"message": e.message}),
                        loc=_loc(e.field) if nested else (),
                        input=value,
                    )
                    for e in invalid.errors
                ],
            ) from None

    return AfterValidator(validate)


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _loc(path: str) -> tuple[Any, ...]:
    # "Tiers[1].UpTo" -> ("Tiers", 1, "UpTo")
    return tuple(int(index) if index else name for name, index in _PATH_PART.findall(path))


def declared_as(shape: Any) -> BeforeValidator:
    """A validator that changes nothing and declares the field in the OpenAPI as `shape`
    (a model, a union of models, an enum): for a field that a domain rule after it
    checks, naming every bad part at once, where `shape` would stop at the first."""
    return BeforeValidator(_unchanged, json_schema_input_type=shape)


def _unchanged(value: Any) -> Any:
    return value


CurrencyName = enum.StrEnum(  # type: ignore[misc]
    "Currency", {code: code for code in currency_codes()}, module=__name__
)
"""The ISO 4217 codes that `currency` accepts, as the OpenAPI's `Currency` enum."""

CurrencyCode = Annotated[
    str,
    declared_as(CurrencyName),
    domain_rule(lambda code: currency(code).code),
]
"""An active ISO 4217 code with a minor unit, e.g. EUR (declared as an enum)."""
