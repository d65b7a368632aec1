"""Reading JSON request bodies: nesting depth, repeated keys and exact numbers.

Every surface reads its body through this module, so that the same body means the
same thing on each of them:

- nesting is limited *before* decoding (`check_depth`): a body of 100,000 nested
  arrays is a clear `400`, never a `RecursionError` inside a decoder;
- a key repeated in one object is found and reported (`read_json`), never silently
  resolved to its last value as JSON readers do;
- numbers are read exactly: with a fraction or exponent as `Decimal`, integers as
  `int` (and, beyond 18 digits, as `Decimal`, so that a 5,001-digit quantity reaches
  the field's own rules instead of the reader's limit on integer conversion).
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import Any, Final

from arrears.domain.errors import FieldError, Invalid
from arrears.domain.grammar import read_number

__all__ = [
    "MAX_DEPTH",
    "JsonBody",
    "TooDeep",
    "check_depth",
    "read_json",
]

MAX_DEPTH: Final = 32
"""Arrays and objects nest at most this deep in a request body (the deepest body of the
API, a plan variant's tiers, nests 6 deep)."""


class TooDeep(Invalid):
    """A body nested deeper than `MAX_DEPTH`: answered `400` (code `too_deep`) before it
    is decoded, like a body that is not JSON; nothing else of it can be judged."""

    status = 400
    title = "Bad request"

    def __init__(self, field: str = "body") -> None:
        message = f"The JSON nests arrays and objects deeper than {MAX_DEPTH} levels."
        super().__init__([FieldError(field, "too_deep", message)], message)


# Only brackets and quotes matter to the depth: everything else is deleted at C speed.
_STRUCTURE: Final = b'[]{}"'
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in _STRUCTURE)
# Openers count +1 and closers -1, as signed bytes.
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def check_depth(body: bytes, limit: int = MAX_DEPTH) -> None:
    """Raise `TooDeep` when `body` nests arrays and objects deeper than `limit`.

    Brackets inside strings do not count. Exact for valid JSON; for invalid JSON the
    depth of every prefix a decoder would accept is exact, so no decoder given a body
    that passed can recurse deeper than `limit`. Linear, and at C speed: a 17 MB bulk
    body takes a few milliseconds."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return  # nearly every body: too few brackets to nest that deep
    text = body
    if b"\\" in text:
        # Escaped backslashes first, then escaped quotes: what is left of `"` delimits.
        text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    projection = text.translate(None, _NOT_STRUCTURE)
    if b'"' in projection:
        # Strings without brackets leave `""`; any other quote left means a string that
        # holds a bracket, and the strings are then cut out exactly.
        stripped = projection.replace(b'""', b"")
        if b'"' in stripped:
            stripped = b"".join(projection.split(b'"')[::2])
        projection = stripped
    steps = array("b", projection.translate(_STEPS))
    if max(accumulate(steps), default=0) > limit:
        raise TooDeep()


@dataclass(frozen=True, slots=True)
class JsonBody:
    """A decoded body, and the path of every key that its object repeats."""

    value: Any
    repeated: tuple[tuple[str | int, ...], ...]


def read_json(body: bytes | str) -> JsonBody:
    """Decode a request body exactly (see the module's notes), after `check_depth`.

    Raises `TooDeep`, or `json.JSONDecodeError` for anything that is not JSON: bytes
    that are not UTF-8, NaN or Infinity, a string holding half a surrogate pair
    (which no database can store). A repeated key is no decoding error: the value
    holds its last occurrence, and `repeated` names it (for the caller to refuse,
    together with every other fault of the body)."""
    text = _text(body)
    check_depth(text.encode() if isinstance(body, str) else body)
    marked: list[_Repeated] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(items)
        if len(value) == len(items):
            return value
        counts: dict[str, int] = {}
        for key, _ in items:
            counts[key] = counts.get(key, 0) + 1
        repeated = _Repeated(value)
        repeated.keys_repeated = tuple(key for key, count in counts.items() if count > 1)
        marked.append(repeated)
        return repeated

    decoder = json.JSONDecoder(
        object_pairs_hook=pairs,
        parse_float=read_number,
        parse_int=_integer,
        parse_constant=_no_constant,
    )
    value = decoder.decode(text)
    if _MAY_HOLD_SURROGATE.search(text):
        _refuse_surrogates(value, text)
    repeated = tuple(_repeated_paths(value, ())) if marked else ()
    return JsonBody(value, repeated)


class _Repeated(dict[str, Any]):
    """An object that repeated some of its keys (the last value of each is kept)."""

    keys_repeated: tuple[str, ...] = ()


def _text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise json.JSONDecodeError(
            f"the body is not UTF-8 ({error.reason})", body.decode("utf-8", "replace"), error.start
        ) from None


_LONGEST_INT: Final = 18  # digits that fit a 64-bit integer: the common case stays an int


def _integer(text: str) -> int | Decimal:
    # Python refuses to convert integers of more than 4,300 digits; a Decimal has no
    # such limit, and the field's rules (below 10^12) then refuse it by name.
    return int(text) if len(text) <= _LONGEST_INT else Decimal(text)


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON value", name, 0)


_MAY_HOLD_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_surrogates(value: Any, text: str) -> None:
    for string in _strings(value):
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise json.JSONDecodeError(
                "a string holds half a surrogate pair", text, text.find("\\u")
            ) from None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _repeated_paths(value: Any, at: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    if isinstance(value, dict):
        if isinstance(value, _Repeated):
            for key in value.keys_repeated:
                yield (*at, key)
        for key, item in value.items():
            yield from _repeated_paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _repeated_paths(item, (*at, index))
