"""The two grammars of request values that are text on the wire: decimals and instants.

Every surface (the contract usage API, bulk records, the older consumption endpoints,
orders, the catalog, the operator endpoints) reads its decimals with `parse_decimal`
and its instants with `parse_instant`, so that one input means one thing everywhere
and is refused everywhere with the same code.

Python's own readers are far more lenient than an API should be: `Decimal()` takes
`"1_000"`, Arabic-Indic digits, surrounding whitespace and `"NaN"`;
`datetime.fromisoformat()` takes week dates, basic formats and offsets with seconds
(`+05:30:99`). Each grammar is a regular expression checked first; only text that
matches it reaches Python's reader.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

__all__ = [
    "DECIMAL_GRAMMAR",
    "INSTANT_GRAMMAR",
    "NotInGrammar",
    "parse_decimal",
    "parse_instant",
    "read_number",
]

DECIMAL_GRAMMAR: Final = r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,9})?"
"""A decimal, as a JSON number or in a JSON string: ASCII digits, an optional sign, an
optional point with digits on both sides, an optional exponent of at most 9 digits.
Nothing else: no `_`, no other digits, no whitespace, no NaN or Infinity. (Python's
`Decimal` cannot even hold some exponents of 19 digits; none of 9 is near a value any
field takes, and each field's rules then refuse it by name.)"""

INSTANT_GRAMMAR: Final = (
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
"""ISO 8601 / RFC 3339: `2026-01-20`, `2026-01-20T09:30:00`, with an optional
fraction of up to 9 digits (kept to the microsecond, the rest dropped) and an optional
offset `Z` or `+hh:mm`/`-hh:mm`. Without an offset (and for a date alone, midnight)
the instant is UTC (SPEC §5)."""

_DECIMAL: Final = re.compile(DECIMAL_GRAMMAR, re.ASCII)
_INSTANT: Final = re.compile(INSTANT_GRAMMAR, re.ASCII)
_SHOWN = 40  # characters of a refused value echoed in a message: input is of any length


class NotInGrammar(ValueError):
    """A value outside its grammar; `code` names the fault in the API's vocabulary."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_decimal(value: object) -> Decimal:
    """The decimal a JSON number (`int` or `Decimal`, as the JSON readers of Arrears
    produce them) or a JSON string of `DECIMAL_GRAMMAR` stands for, exactly.

    Raises `NotInGrammar` with code `not_a_decimal` for anything else: a string outside
    the grammar, a boolean, a float (binary floating point cannot carry money), null,
    a list or an object. The sign, size and places are the caller's rules."""
    if isinstance(value, Decimal):
        # JSON numbers come here already exact; a NaN or infinity can only come from
        # a reader other than ours, and is refused all the same.
        if value.is_finite():
            return value
        raise NotInGrammar("not_a_decimal", f"{value} is not a decimal number.")
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        if _DECIMAL.fullmatch(value):
            return Decimal(value)
        raise NotInGrammar(
            "not_a_decimal",
            f"{_shown(value)} is not a decimal: write ASCII digits with an optional sign, "
            'point and exponent, as a JSON number or string (12.5 or "12.5").',
        )
    raise NotInGrammar(
        "not_a_decimal",
        f'Expected a decimal (a JSON number or a string such as "12.5"), not {_kind(value)}.',
    )


def read_number(text: str) -> Decimal | str:
    """A JSON number's text with a fraction or exponent, as the JSON readers of Arrears
    hand it over: its exact `Decimal`, or, for an exponent outside the grammar, the text
    itself, which `parse_decimal` then refuses by name (a JSON reader must not fail on
    it, nor answer a number sent as such differently from the same number as a string)."""
    if ("e" in text or "E" in text) and not _DECIMAL.fullmatch(text):
        return text
    return Decimal(text)


def parse_instant(value: object) -> datetime:
    """The UTC instant a JSON string of `INSTANT_GRAMMAR` stands for.

    Raises `NotInGrammar` with code `invalid_datetime` for anything else, including a
    string of the grammar that names no instant (`2026-02-30`, `24:00:00`, `+24:00`)."""
    if isinstance(value, datetime):
        # Read already from a text of the grammar (by msgspec, for a bulk body): only
        # its conversion to UTC may fail.
        return _utc(value, value.isoformat())
    if not isinstance(value, str):
        raise NotInGrammar(
            "invalid_datetime",
            "Expected an ISO 8601 timestamp string such as 2026-01-20T09:30:00Z, "
            f"not {_kind(value)}.",
        )
    if (
        value[4:17:3] == "--T::"
        and value[-1:] == "Z"
        and (len(value) == 20 or (len(value) in (24, 27) and value[19] == "."))
        and value.isascii()
    ):
        # The common shape (2026-01-20T09:30:00Z, with 3 or 6 places), as clients and the
        # bulk path send it: Python's reader alone is exact for it, twice as fast as the
        # grammar's expression (one per bulk record). Digits are still checked by it.
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the grammar below names the fault
    match = _INSTANT.fullmatch(value)
    if match is None:
        raise NotInGrammar(
            "invalid_datetime",
            f"{_shown(value)} is not an ISO 8601 timestamp such as 2026-01-20T09:30:00Z "
            "(offset Z or ±hh:mm).",
        )
    date, time, fraction, offset = match.group("date", "time", "fraction", "offset")
    text = date if time is None else f"{date}T{time}"
    if fraction is not None:
        text += "." + fraction[:6].ljust(6, "0")
    if offset is not None and offset != "Z":
        text += offset
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        instant = None
    if instant is not None:
        return _utc(instant, value)
    raise NotInGrammar(
        "invalid_datetime",
        f"{_shown(value)} names no instant (a day, hour or offset is out of range).",
    )


def _utc(instant: datetime, shown: str) -> datetime:
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        raise NotInGrammar(
            "invalid_datetime",
            f"{_shown(shown)} names no instant in the years 1 to 9999 in UTC.",
        ) from None


def _shown(value: object) -> str:
    text = str(value)
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a binary floating-point number"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
