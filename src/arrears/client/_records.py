"""Consumption records as the client sends them, their derived keys, and chunk bodies.

Quantities and prices stay `str` or `Decimal` from the caller to the wire: a string is
sent as a JSON string, a `Decimal` as the exact JSON number it holds. No float exists
anywhere on the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import msgspec

__all__ = [
    "ConsumptionRecord",
    "chunk_body",
    "derived_key",
    "idempotency_key",
    "with_key",
]

DERIVED_KEY_PREFIX = "auto-"
"""Keys the client derives start with this, so that they are recognisable."""


class ConsumptionRecord(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True):
    """One record of the seller consumption API (SPEC §6)."""

    subscription_id: str
    quantity: Decimal | str
    product_id: str | None = None
    item_code: str | None = None
    due_date: str | None = None
    key: str | None = None
    description: str | None = None
    price: Decimal | str | None = None


_encoder = msgspec.json.Encoder(decimal_format="number")


def _canonical_decimal(value: Decimal | str | None) -> str:
    if value is None:
        return ""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return str(value).strip()
    if not number.is_finite():
        return str(value).strip()
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _canonical_instant(value: str | None) -> str:
    if not value:
        return ""
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        return value.strip()
    if instant.tzinfo is None:  # the API reads an instant without offset as UTC
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC).isoformat()


def derived_key(record: ConsumptionRecord) -> str:
    """The key of a record that has none: `auto-` and the first 40 hex digits of the
    SHA-256 of its canonical content.

    The content is the JSON array `["arrears-key-v1", subscriptionId, productId,
    itemCode, quantity, dueDate, description, price]` with absent fields as `""`,
    decimals written in plain notation without trailing zeros (`12.50` → `12.5`) and
    the due date in UTC ISO 8601. Records that differ only in how a number or an instant
    is written get the same key; records whose values differ get different keys.
    """
    canonical = _encoder.encode(
        [
            "arrears-key-v1",
            record.subscription_id.strip(),
            (record.product_id or "").strip(),
            (record.item_code or "").strip(),
            _canonical_decimal(record.quantity),
            _canonical_instant(record.due_date),
            record.description or "",
            _canonical_decimal(record.price),
        ]
    )
    return DERIVED_KEY_PREFIX + hashlib.sha256(canonical).hexdigest()[:40]


def with_key(record: ConsumptionRecord) -> ConsumptionRecord:
    """The record itself if it has a key, else a copy carrying its derived key."""
    if record.key:
        return record
    return msgspec.structs.replace(record, key=derived_key(record))


def chunk_body(records: Sequence[ConsumptionRecord]) -> bytes:
    """The exact bytes of a bulk submission of `records`."""
    return _encoder.encode({"consumptions": records})


def idempotency_key(body: bytes) -> str:
    """The `Idempotency-Key` of a chunk: `sha256-` and the hex SHA-256 of its body, so a
    retry (by this process or after a restart) names the same task."""
    return "sha256-" + hashlib.sha256(body).hexdigest()
