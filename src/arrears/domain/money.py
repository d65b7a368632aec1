"""Currencies and the one rounding rule of Arrears (the limits are `domain.limits`).

Money and quantities are `Decimal` from the request to the invoice. Rating is exact;
an amount is rounded exactly once, per invoice line, by `round_amount`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

from iso4217 import Currency as Iso4217

from arrears.domain.errors import FieldError, Invalid
from arrears.domain.limits import (
    DECIMAL_PRECISION,
    MAX_AMOUNT_DIGITS,
    MAX_INTEGER_DIGITS,
    PRICE_PLACES,
    QUANTITY_PLACES,
)

__all__ = [
    "MAX_INTEGER_DIGITS",
    "PRICE_PLACES",
    "QUANTITY_PLACES",
    "Currency",
    "currency",
    "currency_codes",
    "decimal_places",
    "round_amount",
]

# Rounding drops digits by design, so only invalid operations trap; the precision is
# far above the default 28 digits so that quantize never fails on a large amount.
_ROUNDING = Context(prec=DECIMAL_PRECISION, rounding=ROUND_HALF_UP, traps=[InvalidOperation])


@dataclass(frozen=True, slots=True)
class Currency:
    """An active ISO 4217 currency; build it with `currency()`, which validates."""

    code: str
    minor_unit: int

    @property
    def quantum(self) -> Decimal:
        """The smallest amount of the currency: 0.01 for EUR, 1 for JPY, 0.001 for KWD."""
        return Decimal(1).scaleb(-self.minor_unit)


@functools.cache
def _minor_units() -> dict[str, int]:
    # ISO 4217's own published table (the `iso4217` package ships it). Codes without a
    # minor unit are metals, SDRs, test and "no currency" codes (XAU, XDR, XTS, XXX):
    # nothing an invoice can be issued in.
    return {c.code: c.exponent for c in Iso4217 if c.exponent is not None}


def currency_codes() -> tuple[str, ...]:
    """Every code that `currency` accepts, in alphabetical order."""
    return tuple(sorted(_minor_units()))


def currency(code: str, *, field: str = "Currency") -> Currency:
    """The ISO 4217 currency `code`, with its minor unit (EUR 2, JPY 0, KWD 3).

    `code` must be exactly three upper-case letters naming a current ISO 4217
    currency with a minor unit. Lower-case codes are rejected rather than normalized,
    so that a stored code is always the one the caller sent. Anything else raises
    `Invalid` with one `unknown_currency` error on `field`.
    """
    if not isinstance(code, str) or code not in _minor_units():
        raise Invalid.one(field, "unknown_currency", _unknown_currency_message(code))
    return Currency(code=code, minor_unit=_minor_units()[code])


def _unknown_currency_message(code: object) -> str:
    rule = "a currency is an active ISO 4217 code of three upper-case letters, e.g. EUR"
    if not isinstance(code, str):
        return f"{rule}; got a {type(code).__name__}."
    if code.upper() in _minor_units():
        return f"{rule}; did you mean {code.upper()!r}?"
    # Echo only a short prefix: the code is caller input of any length.
    shown = repr(code) if len(code) <= 16 else repr(code[:16]) + "..."
    return f"{rule}; {shown} is not one."


def round_amount(amount: Decimal, currency: Currency) -> Decimal:
    """`amount` rounded half-up to `currency`'s minor unit: the one rounding of Arrears.

    Half-up is symmetric about zero (EUR 2.345 -> 2.35, -2.345 -> -2.35). The result
    always carries exactly the minor unit's number of places (EUR 2 -> 2.00), which
    keeps stored and rendered amounts uniform, and is never a negative zero. Raises
    `ValueError` for NaN or infinity.
    """
    if not amount.is_finite():
        raise ValueError(f"cannot round a non-finite amount: {amount}")
    rounded = amount.quantize(currency.quantum, rounding=ROUND_HALF_UP, context=_ROUNDING)
    # -0.001 EUR quantizes to Decimal("-0.00"), which would render as "-0.00" on an invoice.
    return rounded.copy_abs() if rounded.is_zero() else rounded


def decimal_places(value: Decimal) -> int:
    """How many decimal places `value` really needs: trailing zeros do not count.

    `Decimal("1.2500")` needs 2, `Decimal("100")` and `Decimal("1E+2")` need 0.
    Exact for any finite decimal (no context rounding is involved). Raises
    `ValueError` for NaN or infinity.
    """
    if not value.is_finite():
        raise ValueError(f"a non-finite decimal has no decimal places: {value}")
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0 or not any(digits):
        return 0
    trailing_zeros = 0
    for digit in reversed(digits):
        if digit:
            break
        trailing_zeros += 1
    return max(0, -exponent - trailing_zeros)


def amount_errors(field: str, amount: Decimal, currency: Currency) -> list[FieldError]:
    """What is wrong with an amount a seller credits or receives: it is above 0, in the
    currency's minor unit, and below 10**MAX_AMOUNT_DIGITS, the most any invoice total
    can be (`domain.limits`); beyond that no invoice could take it, and comparing it
    with one would need more digits than the exact context holds."""
    if not amount.is_finite() or amount <= 0:
        return [FieldError(field, "not_positive", "An amount is above 0.")]
    if amount >= Decimal(10) ** MAX_AMOUNT_DIGITS:
        return [FieldError(field, "too_large", f"An amount is less than 10^{MAX_AMOUNT_DIGITS}.")]
    if decimal_places(amount) > currency.minor_unit:
        return [
            FieldError(
                field,
                "too_many_decimals",
                f"An amount in {currency.code} has at most {currency.minor_unit} decimal places.",
            )
        ]
    return []
