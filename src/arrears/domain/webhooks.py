"""Webhooks (SPEC §13): the events, the retry schedule, the signature and which targets
may receive them. Pure rules; storing, sending and the HTTP surface live elsewhere
(docs/webhooks.md)."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from arrears.domain.errors import FieldError

__all__ = [
    "ATTEMPT_TIMEOUT",
    "EVERY_EVENT",
    "MAX_URL_LENGTH",
    "RESPONSE_BODY_LIMIT",
    "RETRY_WINDOW",
    "SECRET_OVERLAP",
    "SECRET_PREFIX",
    "SUBSCRIBABLE",
    "TASK_ERRORS_LIMIT",
    "Delivery",
    "DeliveryStatus",
    "Endpoint",
    "EventType",
    "address_is_public",
    "check_events",
    "check_url",
    "kept_response",
    "new_secret",
    "next_attempt",
    "retry_delay",
    "signature",
    "signature_header",
    "succeeded",
]


class EventType(enum.StrEnum):
    BULK_CONSUMPTION_SUCCEEDED = "bulkconsumption.succeeded"
    BULK_CONSUMPTION_FAILED = "bulkconsumption.failed"
    INVOICE_FINALIZED = "invoice.finalized"
    INVOICE_VOIDED = "invoice.voided"
    INVOICE_PAID = "invoice.paid"
    CREDIT_NOTE_ISSUED = "creditnote.issued"
    CONTRACT_ENDED = "contract.ended"
    WEBHOOK_TEST = "webhook.test"
    """Sent by `POST /webhooks/{id}/test` to that endpoint alone, whatever it subscribes."""


SUBSCRIBABLE = tuple(t.value for t in EventType if t is not EventType.WEBHOOK_TEST)
EVERY_EVENT = "*"
"""An endpoint subscribed to `*` gets every event, also those added later."""

TASK_ERRORS_LIMIT = 100
"""A bulkconsumption event carries at most this many of the task's errors (SPEC §13)."""

ATTEMPT_TIMEOUT = timedelta(seconds=15)
"""An attempt that has no answer by then has failed (SPEC §13)."""
RESPONSE_BODY_LIMIT = 1024
"""Bytes of a receiver's answer kept with each attempt, for the seller to read."""
SECRET_OVERLAP = timedelta(hours=24)
"""How long a rotated-out secret still signs beside the new one."""
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix, no secret)
MAX_URL_LENGTH = 2000

# About 5 s, 1 min, 10 min, 1 h, 6 h, then every 12 h (SPEC §13): after the n-th attempt
# fails, the next one waits _DELAYS[n - 1] (the last one for every later attempt).
_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=1),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
)
RETRY_WINDOW = timedelta(days=3)
"""How long an event is retried, from its first attempt's due time; an endpoint that
failed every attempt all that time is disabled."""


class DeliveryStatus(enum.StrEnum):
    PENDING = "Pending"
    """Due at `NextAttemptAt` (or now); not yet sent."""
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A seller's receiver of events. Its secrets are not part of it: they are only
    ever shown once, and read only to sign."""

    id: str
    seller_id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime

    def subscribes(self, event_type: str) -> bool:
        return EVERY_EVENT in self.events or event_type in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt to deliver one event to one endpoint: made (Succeeded or Failed,
    with what the receiver answered) or due (Pending)."""

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    attempt: int
    status: DeliveryStatus
    due_at: datetime
    attempted_at: datetime | None
    status_code: int | None
    latency_ms: int | None
    error: str | None
    response_body: str | None
    next_attempt_at: datetime | None


def retry_delay(attempt: int) -> timedelta:
    """How long after the `attempt`-th attempt (1 is the first) failed the next is due."""
    return _DELAYS[min(attempt, len(_DELAYS)) - 1]


def next_attempt(attempt: int, first_due_at: datetime, failed_at: datetime) -> datetime | None:
    """When to try again after the `attempt`-th attempt failed at `failed_at`, for an
    event first due at `first_due_at`; None once `RETRY_WINDOW` has passed. The last
    attempt is made at the window's end, so an endpoint is given up only after failing
    for the whole three days."""
    deadline = first_due_at + RETRY_WINDOW
    if failed_at >= deadline:
        return None
    return min(failed_at + retry_delay(attempt), deadline)


def succeeded(status_code: int | None) -> bool:
    """Any 2xx is success (SPEC §13); redirects are not followed, so they fail."""
    return status_code is not None and 200 <= status_code < 300


def kept_response(body: bytes) -> str:
    """The part of a receiver's answer that is kept: its first `RESPONSE_BODY_LIMIT`
    bytes as text (a character cut in two, or bytes that are no UTF-8, are dropped, so
    the text is never longer in UTF-8 than the limit)."""
    return body[:RESPONSE_BODY_LIMIT].decode("utf-8", errors="ignore")


# -- signatures (Standard Webhooks) ---------------------------------------------------


def new_secret() -> str:
    """A new signing secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks
    libraries read it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the secret's key."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per secret that signs now (the
    current one, and a rotated-out one during its overlap), separated by spaces; a
    receiver accepts the message if any of them matches its secret."""
    return " ".join(signature(s, message_id, timestamp, body) for s in secrets_)


# -- what an endpoint may be ----------------------------------------------------------


def check_url(url: str, *, allow_private: bool, field: str = "Url") -> list[FieldError]:
    """What is wrong with `url` as a target: it must be absolute http(s) with a host,
    and (unless `allow_private`) not name a loopback, private, link-local or otherwise
    non-public address, nor `localhost`. A host name is checked again, resolved, before
    each attempt (`address_is_public`)."""
    if len(url) > MAX_URL_LENGTH:
        return [FieldError(field, "too_long", f"A URL has at most {MAX_URL_LENGTH} characters.")]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a port that is no number or out of range
    except ValueError:
        return [FieldError(field, "invalid_url", f"{url!r} is not a URL.")]
    if parts.scheme not in ("http", "https") or not host:
        message = "The URL must be absolute, http or https, with a host."
        return [FieldError(field, "invalid_url", message)]
    if allow_private or _public_host(host):
        return []
    return [
        FieldError(
            field,
            "private_target",
            f"{host} is a loopback or private address; webhooks go to public addresses "
            "(the operator may allow others with ARREARS_WEBHOOKS_ALLOW_PRIVATE=1).",
        )
    ]


def _public_host(host: str) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return True  # a name: resolved and checked before each attempt
    return address_is_public(address)


def address_is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `address` is on the public internet: not loopback, private, link-local
    (cloud metadata services live there), multicast, reserved or unspecified; an IPv6
    address that maps an IPv4 one is judged as that one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_events(events: Iterable[str], field: str = "Events") -> list[FieldError]:
    """Every event named must exist; `*` stands for all of them; at least one."""
    named = list(events)
    if not named:
        return [FieldError(field, "empty", "Name at least one event, or `*` for every event.")]
    known = {*SUBSCRIBABLE, EVERY_EVENT}
    return [
        FieldError(
            f"{field}[{index}]",
            "unknown_event",
            f"{name!r} is no event; the events are {', '.join(SUBSCRIBABLE)} (or `*`).",
            index=index,
        )
        for index, name in enumerate(named)
        if name not in known
    ]
