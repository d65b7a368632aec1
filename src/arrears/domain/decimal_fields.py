"""Reading the decimal fields of a catalog JSON object (pricing, plan variants,
discounts), every broken rule one `FieldError`, so that a request learns all its
mistakes at once (SPEC §2).

Numbers must already be `Decimal` or `int`, or strings of the decimal grammar
(`grammar.parse_decimal`); a `float` or `bool` is refused, so that binary floating
point never reaches money. Prices and amounts have at most `PRICE_PLACES` decimal
places, quantities `QUANTITY_PLACES`; both stay below 10^`MAX_INTEGER_DIGITS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from arrears.domain.errors import FieldError
from arrears.domain.grammar import NotInGrammar, parse_decimal
from arrears.domain.money import MAX_INTEGER_DIGITS, PRICE_PLACES, QUANTITY_PLACES, decimal_places

__all__ = ["decimal_field", "join", "price_field", "quantity_field"]

_UPPER_BOUND: Final = Decimal(10) ** MAX_INTEGER_DIGITS


def join(at: str, name: str) -> str:
    """The path of field `name` inside the object at path `at` (`Tiers[0]`, `UpTo`)."""
    return f"{at}.{name}" if at else name


def price_field(
    data: Mapping[str, object], name: str, at: str, errors: list[FieldError]
) -> Decimal | None:
    """`data[name]` as a price or amount (>= 0, at most `PRICE_PLACES` places); None
    when absent or bad (then with its errors appended)."""
    if name not in data:
        return None
    return decimal_field(data[name], join(at, name), errors, places=PRICE_PLACES, positive=False)


def quantity_field(
    data: Mapping[str, object], name: str, at: str, errors: list[FieldError], *, positive: bool
) -> Decimal | None:
    """`data[name]` as a quantity (>= 0, or > 0 when `positive`; at most
    `QUANTITY_PLACES` places); None when absent or bad (then with its errors appended)."""
    if name not in data:
        return None
    return decimal_field(
        data[name], join(at, name), errors, places=QUANTITY_PLACES, positive=positive
    )


def decimal_field(
    value: object, field: str, errors: list[FieldError], *, places: int, positive: bool
) -> Decimal | None:
    """`value` as a Decimal if it passes every rule; each broken rule is one error."""
    name = field.rsplit(".", 1)[-1]
    number = _as_decimal(value)
    if isinstance(number, str):
        errors.append(FieldError(field, "not_a_decimal", f"{name}: {number}"))
        return None
    found: list[FieldError] = []
    if positive and number <= 0:
        found.append(FieldError(field, "not_positive", f"{name} must be greater than 0."))
    elif number < 0:
        found.append(FieldError(field, "negative", f"{name} must not be negative."))
    if abs(number) >= _UPPER_BOUND:
        found.append(
            FieldError(field, "too_large", f"{name} must be less than 10^{MAX_INTEGER_DIGITS}.")
        )
    if decimal_places(number) > places:
        found.append(
            FieldError(
                field,
                "too_many_decimals",
                f"{name} must have at most {places} decimal places.",
            )
        )
    errors.extend(found)
    return None if found else number


def _as_decimal(value: object) -> Decimal | str:
    """The Decimal `value` stands for (`grammar.parse_decimal`: a JSON number or a
    string of the decimal grammar), or why it is not one."""
    try:
        return parse_decimal(value)
    except NotInGrammar as fault:
        return fault.message
