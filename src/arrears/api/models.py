"""Base classes of the wire models: one per naming style of the two surfaces."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)
from pydantic.alias_generators import to_camel, to_pascal
from pydantic_core import InitErrorDetails, PydanticCustomError

from arrears.api.encoding import ArrearsJSONResponse
from arrears.domain.clock import require_utc
from arrears.domain.errors import Invalid
from arrears.domain.money import MAX_INTEGER_DIGITS, PRICE_PLACES, QUANTITY_PLACES

__all__ = [
    "CamelModel",
    "Instant",
    "PascalModel",
    "Percent",
    "PlainDecimal",
    "Price",
    "Quantity",
    "domain_rule",
    "list_response",
]

T = TypeVar("T")
R = TypeVar("R")


class PascalModel(BaseModel):
    """Contract usage API: PascalCase JSON, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_pascal, populate_by_name=True, extra="forbid", frozen=True
    )


class CamelModel(BaseModel):
    """Seller consumption and admin APIs: camelCase JSON, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def _plain(value: Decimal) -> Decimal:
    # 12.500000 is stored; 12.5 was sent. Same number, but answer in the sender's form,
    # and never in exponent form (1E+3) that some JSON readers mishandle.
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal  # type: ignore[operator]


PlainDecimal = Annotated[Decimal, PlainSerializer(_plain, return_type=Decimal)]
"""A decimal in responses: exact, without trailing zeros or exponent."""

_DIGITS = MAX_INTEGER_DIGITS + QUANTITY_PLACES

Quantity = Annotated[PlainDecimal, Field(ge=0, max_digits=_DIGITS, decimal_places=QUANTITY_PLACES)]
"""A quantity ≥ 0 with at most 6 decimal places (JSON number or string)."""

Price = Annotated[PlainDecimal, Field(ge=0, max_digits=_DIGITS, decimal_places=PRICE_PLACES)]
"""A price or fee ≥ 0 with at most 6 decimal places."""

Percent = Annotated[PlainDecimal, Field(ge=0, le=100, decimal_places=4)]
"""A tax rate in percent (19 means 19 %), with at most 4 decimal places."""


Instant = Annotated[datetime, AfterValidator(require_utc)]
"""An ISO 8601 timestamp; without an offset it is UTC. Always held in UTC."""


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
