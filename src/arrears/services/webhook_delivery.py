"""Delivering webhooks (SPEC §13, docs/webhooks.md): claim what is due, send it signed,
record what the receiver answered, schedule the next attempt or give up.

A worker claims a few due deliveries in one short transaction (a lease of
`DeliveryTerms.lease`, real time, longer than an attempt can take), sends them at once
(one thread each) with no transaction open, and records their outcomes in another, which writes
nothing for an attempt whose lease is no longer its own. So several workers, in one
process or many, never send one attempt twice; a worker that dies after sending and
before recording leaves the attempt to be sent again once its lease lapses (at least
once, never lost).

Business time (the injected clock) decides when an attempt is due, when it was made
and when the next one is; real time (`DeliveryTerms.wall`) the leases and the
`webhook-timestamp` header, which receivers compare with their own clocks.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from arrears import metrics
from arrears.domain.clock import Clock, SystemClock, utc_text
from arrears.domain.webhooks import (
    ATTEMPT_TIMEOUT,
    RESPONSE_BODY_LIMIT,
    RETRY_WINDOW,
    address_is_public,
    kept_response,
    next_attempt,
    signature_header,
    succeeded,
)
from arrears.services.webhook_secrets import SecretBox
from arrears.store.unit_of_work import Database
from arrears.store.webhook_queue import AttemptOutcome, ClaimedDelivery, DeliveryQueue

__all__ = [
    "Answer",
    "DeliveryTerms",
    "HttpSender",
    "SendFailed",
    "Sender",
    "deliver_due",
    "measure_pending",
]

log = logging.getLogger("arrears.webhooks")


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: bytes
    """At most `RESPONSE_BODY_LIMIT` bytes of what the receiver answered."""


class SendFailed(Exception):
    """The attempt got no answer: refused target, unreachable, timed out."""


class Sender(Protocol):
    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """POST `body`; the answer, or `SendFailed`."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryTerms:
    """How a worker delivers: how many attempts it claims at once, how long its claim
    lasts (real time, longer than those attempts can take), and the real clock."""

    batch: int = 16
    lease: timedelta = timedelta(seconds=60)
    wall: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        # The attempts of a claim are sent side by side: each takes at most the timeout,
        # and resolving the host's name before it a few seconds more.
        if self.lease <= 2 * ATTEMPT_TIMEOUT:
            raise ValueError("a delivery lease must outlast the attempts it covers")


def deliver_due(
    database: Database,
    clock: Clock,
    box: SecretBox,
    sender: Sender,
    *,
    owner: str,
    pool: Executor,
    terms: DeliveryTerms | None = None,
) -> int:
    """Claim up to `terms.batch` due deliveries, send them side by side on `pool` (which
    must have a thread for each) and record the outcomes; how many were claimed (0:
    nothing is due)."""
    terms = terms or DeliveryTerms()
    with database.registry_work("read") as registry:
        if not registry.webhook_queue.any_due(due_by=clock.now(), now=terms.wall.now()):
            return 0
    with database.registry_work() as registry:
        claimed = registry.webhook_queue.claim(
            owner,
            due_by=clock.now(),
            now=terms.wall.now(),
            lease=terms.lease,
            limit=terms.batch,
        )
    if not claimed:
        return 0
    outcomes = list(
        pool.map(lambda delivery: _attempt(delivery, clock, box, sender, terms.wall), claimed)
    )
    with database.registry_work() as registry:
        queue = registry.webhook_queue
        recorded = queue.record(owner, outcomes)
        for outcome in recorded:
            _give_up_if_exhausted(queue, outcome)
    for outcome in outcomes:
        if outcome not in recorded:
            metrics.WEBHOOK_DELIVERIES.labels("lease_lost").inc()
            log.warning("delivery %s: lease lost; not recorded", outcome.delivery.id)
            continue
        metrics.WEBHOOK_DELIVERIES.labels("succeeded" if outcome.succeeded else "failed").inc()
        metrics.WEBHOOK_DELIVERY_SECONDS.observe(outcome.latency_ms / 1000)
    return len(claimed)


def measure_pending(database: Database, clock: Clock) -> float:
    """Seconds the longest-waiting due delivery has waited (business time); also what
    the `arrears_webhook_pending_age_seconds` gauge shows from now on."""
    now = clock.now()
    with database.registry_work("read") as registry:
        oldest = registry.webhook_queue.oldest_due(now)
    age = 0.0 if oldest is None else max((now - oldest).total_seconds(), 0.0)
    metrics.WEBHOOK_PENDING_AGE_SECONDS.set(age)
    return age


def _attempt(
    delivery: ClaimedDelivery, clock: Clock, box: SecretBox, sender: Sender, wall: Clock
) -> AttemptOutcome:
    now = clock.now()
    signing = [box.open(delivery.secrets.secret)]
    previous, expires = delivery.secrets.previous, delivery.secrets.previous_expires_at
    if previous is not None and expires is not None and now < expires:
        signing.append(box.open(previous))
    timestamp = int(wall.now().timestamp())
    headers = {
        "content-type": "application/json",
        "user-agent": "Arrears-Webhooks/1",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing, delivery.event_id, timestamp, delivery.body),
    }
    started = time.perf_counter()  # a duration, not an instant
    status_code: int | None = None
    response: str | None = None
    try:
        answer = sender.post(delivery.url, headers, delivery.body)
        status_code, response = answer.status_code, kept_response(answer.body)
        error = None if succeeded(status_code) else f"The receiver answered {status_code}."
    except SendFailed as failed:
        error = str(failed)
    except Exception as unexpected:  # e.g. a URL httpx cannot send to: this attempt fails,
        # recorded like any other, instead of holding up the others of its claim forever
        log.exception("delivery %s to %s could not be sent", delivery.id, delivery.url)
        error = f"The attempt could not be sent ({type(unexpected).__name__})."
    latency = time.perf_counter() - started
    if error is None and latency > ATTEMPT_TIMEOUT.total_seconds():
        error = f"The receiver answered after {latency:.1f} s, more than 15 s."
    attempted_at = clock.now()
    retry_at = None
    if error is not None and delivery.schedule_from is not None:
        retry_at = next_attempt(delivery.attempt, delivery.schedule_from, attempted_at)
    return AttemptOutcome(
        delivery=delivery,
        attempted_at=attempted_at,
        status_code=status_code,
        latency_ms=round(latency * 1000),
        error=error,
        response_body=response,
        succeeded=error is None,
        next_attempt_at=retry_at,
    )


def _give_up_if_exhausted(queue: DeliveryQueue, outcome: AttemptOutcome) -> None:
    """After the last scheduled attempt of an event failed: an endpoint that has not
    taken a single delivery in all that time is disabled, saying why."""
    started = outcome.delivery.schedule_from
    if outcome.succeeded or outcome.next_attempt_at is not None or started is None:
        return
    endpoint_id = outcome.delivery.endpoint_id
    if queue.succeeded_since(endpoint_id, started):
        return  # it takes other events: only this one is given up
    days = RETRY_WINDOW.days
    reason = (
        f"Every delivery from {utc_text(started)} to {utc_text(outcome.attempted_at)} "
        f"({days} days) failed; the last: {outcome.error}"
    )
    queue.disable(endpoint_id, reason[:1000], outcome.attempted_at)
    metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)


class HttpSender:
    """Sends with httpx: 15 s per attempt, no redirects followed, only to public
    addresses unless `allow_private` (a host name is resolved and checked first)."""

    def __init__(self, *, allow_private: bool = False, client: httpx.Client | None = None) -> None:
        self._allow_private = allow_private
        self._client = client or httpx.Client(
            timeout=ATTEMPT_TIMEOUT.total_seconds(),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if not self._allow_private:
            self._refuse_private(url)
        try:
            with self._client.stream("POST", url, headers=dict(headers), content=body) as answer:
                kept = b""
                for chunk in answer.iter_bytes():
                    kept += chunk
                    if len(kept) >= RESPONSE_BODY_LIMIT:
                        break  # the rest is not read: a receiver cannot make us download
                return Answer(answer.status_code, kept[:RESPONSE_BODY_LIMIT])
        except httpx.TimeoutException:
            raise SendFailed("No answer within 15 s.") from None
        except httpx.HTTPError as error:
            reason = type(error).__name__
            raise SendFailed(f"The receiver could not be reached ({reason}).") from None

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def _refuse_private(url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise SendFailed(f"The host {host} could not be resolved.") from None
        for *_, address in found:
            if not address_is_public(ipaddress.ip_address(str(address[0]).split("%")[0])):
                raise SendFailed(
                    f"The host {host} resolves to a loopback or private address; refused "
                    "(ARREARS_WEBHOOKS_ALLOW_PRIVATE=1 allows it)."
                )
