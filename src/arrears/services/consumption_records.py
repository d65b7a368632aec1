"""Reading consumption records: a bulk body, or one record of the older endpoints.

The records of a bulk body are decoded in one msgspec pass when they are well-typed and
repeat no key; otherwise each record is decoded on its own, and a bad one examined field
by field so that all its errors are named. Decimals and due dates are held as sent and
read by their grammars (`domain.grammar`) when the records are validated (`ingest`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from itertools import repeat
from operator import attrgetter, countOf
from typing import Any

import msgspec

from arrears.domain.errors import BadRequest, Invalid, TooLarge
from arrears.domain.grammar import NotInGrammar, parse_decimal, parse_instant, read_number
from arrears.domain.tasks import RecordError
from arrears.services.json_bodies import TooDeep, read_json

__all__ = [
    "SubmittedRecord",
    "Unconfirmed",
    "confirmed",
    "count_records",
    "decode_records",
    "decode_unconfirmed",
    "read_record",
]


# Records are not tracked by the cycle collector (`gc=False`): they hold texts, numbers
# and instants, and a body's records are decoded while the collector runs (in the thread
# of `task_handover`), which would traverse 100,000 of them several times for nothing.
class SubmittedRecord(msgspec.Struct, forbid_unknown_fields=True, rename="camel", gc=False):
    """One consumption record of the seller consumption API, its texts type-checked.

    Decimals and the due date are held as sent, and read by the one grammar of each
    (`domain.grammar`) while the record is checked: msgspec's own readers would take
    `"1_000"`, Arabic-Indic digits, `"NaN"` and lower-case or space-separated instants.
    A JSON number arrives as an `int` or an exact `Decimal`, a string as a `str`."""

    subscription_id: str
    quantity: Any
    product_id: str | None = None
    item_code: str | None = None
    due_date: Any = None  # a str as sent (a datetime in `_CanonicalRecord`)
    key: str | None = None
    description: str | None = None
    price: Any = None


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    consumptions: list[SubmittedRecord]


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    # Records stay raw: the envelope is read to count and check shape, cheaply.
    consumptions: list[msgspec.Raw]


# Numbers in `Any` fields with a fraction or exponent become exact Decimals.
_body_decoder = msgspec.json.Decoder(_Body, float_hook=read_number)


class _CanonicalRecord(SubmittedRecord, forbid_unknown_fields=True, rename="camel", gc=False):
    """A record whose due date msgspec reads: only for bodies whose every `dueDate` is of
    the canonical form below, on which msgspec's reader and `parse_instant` agree (the
    grammar's other forms, and every fault, are read by `parse_instant`)."""

    due_date: datetime | None = None


class _CanonicalBody(msgspec.Struct, forbid_unknown_fields=True):
    consumptions: list[_CanonicalRecord]


_canonical_body_decoder = msgspec.json.Decoder(_CanonicalBody, float_hook=read_number)
# A `dueDate` that is not `2026-01-20T09:30:00[.fff[fff]](Z|±hh:mm)`: found at the C
# speed of a search for the literal `"dueDate"`, then read by the grammar, record by record.
_NOT_CANONICAL_DUE_DATE = re.compile(
    rb'"dueDate"\s*:\s*"(?![0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}'
    rb'(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})")'
)
_envelope_decoder = msgspec.json.Decoder(_Envelope)
_record_decoder = msgspec.json.Decoder(SubmittedRecord, float_hook=read_number)


def count_records(body: bytes, max_records: int) -> int:
    """How many records a bulk body holds, checking only its outer shape.

    A body nested too deep for the decoder is `json_bodies.TooDeep` (400); a record
    nested deeper than `json_bodies.MAX_DEPTH` but within the decoder's reach is that
    record's own error (`too_deep`), found when the records are read."""
    try:
        envelope = _envelope_decoder.decode(body)
    except RecursionError:
        raise TooDeep() from None
    except msgspec.ValidationError as error:
        raise Invalid.one("consumptions", "invalid_body", _plain(error)) from None
    except msgspec.DecodeError as error:
        raise BadRequest(f"The body is not valid JSON: {error}.") from None
    if len(envelope.consumptions) > max_records:
        raise TooLarge(f"A submission holds at most {max_records} records.")
    _refuse_repeated_envelope_keys(body)
    return len(envelope.consumptions)


def _refuse_repeated_envelope_keys(body: bytes) -> None:
    # The envelope has one key; a second "consumptions" would silently win. (A search for
    # a second one stops there, where a count would read the whole body.)
    first = body.find(b'"consumptions"')
    if body.find(b'"consumptions"', first + 1) >= 0 and _repeats_an_envelope_key(body):
        raise Invalid.one(
            "consumptions",
            "duplicate_key",
            "The key 'consumptions' appears more than once in one object.",
        )


def decode_records(body: bytes) -> list[SubmittedRecord | list[RecordError]]:
    """Every record of a bulk body, or for a record that cannot be read, its errors.

    Well-typed bodies that repeat no key decode in one pass; otherwise each record is
    decoded on its own, and a bad one examined field by field so that all its errors
    are named (a repeated key among them)."""
    # A U+0000 in any string (which PostgreSQL cannot store) sends the body down the
    # per-record path, whose field-by-field check names it. A backslash is looked for
    # first: one byte is found at memchr's speed, a 6-byte text costs 20 times as much.
    escaped = b"\\" in body
    if not escaped or b"\\u0000" not in body:
        # A backslash could spell `dueDate` in escapes, which the search cannot see.
        canonical = not escaped and not _NOT_CANONICAL_DUE_DATE.search(body)
        decoder = _canonical_body_decoder if canonical else _body_decoder
        try:
            records = decoder.decode(body).consumptions
        except (msgspec.ValidationError, RecursionError):
            pass
        else:
            if _counted_keys_match(body, records) or not _repeats_a_key(body):
                return list(records)
    return [_decode_record(bytes(raw), index) for index, raw in enumerate(_raw_records(body))]


class Unconfirmed(list[SubmittedRecord | list[RecordError]]):
    """A bulk body's records read on trust (`decode_unconfirmed`): as `decode_records`
    reads them, unless `confirm` finds otherwise."""

    def __init__(self, records: Sequence[SubmittedRecord], body: bytes) -> None:
        super().__init__(records)
        self._read: Sequence[SubmittedRecord] = records
        self._body: bytes | None = body

    @property
    def pending(self) -> bool:
        """Not confirmed yet: every item is a record, none an error."""
        return self._body is not None

    def confirm(self) -> bool:
        """Whether the records are those `decode_records` reads from the body. If not,
        they become those (read again the sure way) and the answer is False: whatever
        was done with them before must be undone. Checked once; True from then on."""
        body, self._body = self._body, None
        read, self._read = self._read, []
        if body is None:
            return True
        if not _NOT_CANONICAL_DUE_DATE.search(body) and (
            _counted_keys_match(body, read) or not _repeats_a_key(body)
        ):
            return True
        self[:] = decode_records(body)
        return False


def decode_unconfirmed(body: bytes) -> list[SubmittedRecord | list[RecordError]]:
    """A bulk body's records as `decode_records` reads nearly every body, with the checks
    that tell whether it may be read so (a due date in a form other than the canonical
    one, a repeated key: about half of the read's cost) left for `confirmed`.

    For a worker that can overlap those checks with its inserts: it must call
    `confirmed(records)` before it commits anything it did with them, and undo it all
    when that answers False (the records are then the sure ones)."""
    if b"\\" in body:  # escapes: the sure way decides at once
        return decode_records(body)
    try:
        records = _canonical_body_decoder.decode(body).consumptions
    except (msgspec.ValidationError, RecursionError):
        # A due date msgspec does not read, or any other fault: named the sure way.
        return decode_records(body)
    return Unconfirmed(records, body)


def confirmed(records: Sequence[SubmittedRecord | list[RecordError]]) -> bool:
    """False when `records` came from `decode_unconfirmed` and were not what
    `decode_records` reads: they have just become that. True for any other sequence."""
    return records.confirm() if isinstance(records, Unconfirmed) else True


_OPTIONAL_FIELDS = ("product_id", "item_code", "due_date", "key", "description", "price")
_optional_values = attrgetter(*_OPTIONAL_FIELDS)
# A key in the body's text is `"name":` unless a backslash (an escaped name, or `\"`
# in a string) or whitespace before its colon hides it: bodies with either are scanned
# instead. Single bytes are searched first: a two-byte search of 17 MB costs as much as
# decoding it.
_SPACE = (b" ", b"\n", b"\t", b"\r")
_SPACED_KEY = re.compile(rb'"[ \t\n\r]+:')


def _counted_keys_match(body: bytes, records: Sequence[SubmittedRecord]) -> bool:
    """True when the body's text holds exactly one key per field the records were read
    with (and `consumptions`): no key can be repeated. Counting costs a few passes of
    `bytes.count` and C-level maps, a third of `_repeats_a_key`'s scan; False sends the
    body to that scan, which decides.

    The text can only hold more keys than counted, never fewer: a repeated key adds one
    that msgspec's record does not hold, and so does a `null` (msgspec reads it as an
    absent field), which is why nulls need no search of their own: they are scanned."""
    if b"\\" in body:
        return False
    if any(space in body for space in _SPACE) and _SPACED_KEY.search(body):
        return False
    # One pass over the records (the optional values of each as one tuple), in C; both
    # counts in pieces of about a millisecond, between which another thread may take
    # the GIL: a worker confirms records read on trust beside its inserting thread
    # (`Unconfirmed`), which needs it for a moment between two statements.
    absent = sum(
        sum(map(countOf, map(_optional_values, records[start : start + _PIECE]), repeat(None)))
        for start in range(0, len(records), _PIECE)
    )
    present = len(records) * (2 + len(_OPTIONAL_FIELDS)) - absent
    # Each piece counts the keys that start in it (its end reaches one byte beyond).
    keys = sum(
        body.count(b'":', start, start + _PIECE_BYTES + 1)
        for start in range(0, len(body), _PIECE_BYTES)
    )
    return keys == 1 + present


_PIECE = 5_000
_PIECE_BYTES = 1 << 20


def _raw_records(body: bytes) -> list[msgspec.Raw]:
    return _envelope_decoder.decode(body).consumptions


def _decode_record(raw: bytes, index: int) -> SubmittedRecord | list[RecordError]:
    if b"\\u0000" not in raw:
        try:
            record = _record_decoder.decode(raw)
        except (msgspec.ValidationError, RecursionError):
            pass
        else:
            if not _record_repeats_a_key(raw):
                return record
    try:
        read = read_json(raw)
    except TooDeep as too_deep:
        error = too_deep.errors[0]
        return [RecordError(index, None, "", error.code, error.message)]
    return read_record(read.value, index, repeated=tuple(str(p[-1]) for p in read.repeated))


# Objects read as lists of their (key, value) pairs, at the C scanner's speed: only to
# count keys, so that a record that repeats one is found before msgspec (which keeps the
# last value silently) reads it. Measured: see docs/ingestion-performance.md.
_pairs_reader = json.JSONDecoder(object_pairs_hook=list)


def _repeats_a_key(body: bytes) -> bool:
    """Whether the body's envelope or one of its records repeats a key (True also when
    the body is not of the expected shape: the per-record path then judges it)."""
    try:
        envelope = _pairs_reader.decode(body.decode("utf-8"))
        if len(envelope) != len(dict(envelope)):
            return True
        records = [pairs for _, records in envelope for pairs in records]
        # Every count in C: the pairs of each record, and the keys they leave in a dict.
        return sum(map(len, records)) != sum(map(len, map(dict, records)))
    except (ValueError, TypeError, RecursionError):
        return True


def _record_repeats_a_key(raw: bytes) -> bool:
    try:
        pairs = _pairs_reader.decode(raw.decode("utf-8"))
        return len(pairs) != len(dict(pairs))
    except (ValueError, TypeError, RecursionError):
        return True


def _repeats_an_envelope_key(body: bytes) -> bool:
    outermost: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> None:
        outermost.append(len({key for key, _ in items}) != len(items))

    try:
        json.JSONDecoder(object_pairs_hook=pairs).decode(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return bool(outermost) and outermost[-1]  # the outermost object is read last


def read_record(
    value: Any, index: int, *, repeated: tuple[str, ...] = ()
) -> SubmittedRecord | list[RecordError]:
    """A record from already-parsed JSON: every field error it has, or the record.

    Bulk bodies come here only for records the strict decoder refused; `repeated` are
    the keys the record's JSON object repeats (each is an error). Decimals and the due
    date are checked by their grammar when the record is validated, with its rules."""
    if not isinstance(value, dict):
        return [RecordError(index, None, "", "not_an_object", "A record must be a JSON object.")]
    subscription = value.get("subscriptionId")
    subscription = subscription if isinstance(subscription, str) else None

    def error(field: str, code: str, message: str) -> RecordError:
        return RecordError(index, subscription, field, code, message)

    errors = [
        error(name, "duplicate_key", f"The key {name!r} appears more than once in the record.")
        for name in repeated
    ]
    errors += [
        error(name, "unknown_field", f"{name} is not a field of a consumption record.")
        for name in value
        if name not in _RECORD_FIELDS
    ]
    for name, kind in _RECORD_FIELDS.items():
        present = name in value and value[name] is not None
        if not present:
            if name in ("subscriptionId", "quantity"):
                errors.append(error(name, "required", f"{name} is required."))
            continue
        problem = _type_problem(value[name], kind)
        if problem is not None:
            errors.append(error(name, *problem))
    if not value.get("productId") and value.get("itemCode") is None:
        errors.append(error("productId", "required", "Name the product by productId or itemCode."))
    if errors:
        return errors
    return SubmittedRecord(
        subscription_id=value["subscriptionId"],
        quantity=value["quantity"],
        product_id=value.get("productId"),
        item_code=value.get("itemCode"),
        due_date=value.get("dueDate"),
        key=value.get("key"),
        description=value.get("description"),
        price=value.get("price"),
    )


_RECORD_FIELDS = {
    "subscriptionId": "string",
    "productId": "string",
    "itemCode": "string",
    "quantity": "decimal",
    "dueDate": "datetime",
    "key": "string",
    "description": "string",
    "price": "decimal",
}


def _type_problem(value: Any, kind: str) -> tuple[str, str] | None:
    return _TYPE_CHECKS[kind](value)


def _string_problem(value: Any) -> tuple[str, str] | None:
    if not isinstance(value, str):
        return ("not_a_string", "Expected a string.")
    if "\x00" in value:
        return ("nul_character", "Text must not contain the character U+0000.")
    return None


def _decimal_problem(value: Any) -> tuple[str, str] | None:
    try:
        parse_decimal(value)
    except NotInGrammar as fault:
        return (fault.code, fault.message)
    return None


def _datetime_problem(value: Any) -> tuple[str, str] | None:
    try:
        parse_instant(value)
    except NotInGrammar as fault:
        return (fault.code, fault.message)
    return None


_TYPE_CHECKS = {
    "string": _string_problem,
    "decimal": _decimal_problem,
    "datetime": _datetime_problem,
}


def _plain(error: msgspec.ValidationError) -> str:
    return str(error).replace("`", "")
