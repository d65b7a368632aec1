"""Due webhook deliveries of every seller, as the workers take them (docs/webhooks.md).

A worker claims what is due with a lease (real time, like task leases) and records each
attempt's outcome only while the lease is still its own, so two workers never send one
attempt twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session

from arrears.domain.webhooks import DeliveryStatus
from arrears.store.tables import WebhookDeliveryRow, WebhookEndpointRow, WebhookEventRow
from arrears.store.webhooks import pending_row

__all__ = ["AttemptOutcome", "ClaimedDelivery", "DeliveryQueue", "EndpointSecrets"]

_PENDING = DeliveryStatus.PENDING.value


@dataclass(frozen=True, slots=True)
class EndpointSecrets:
    """An endpoint's sealed secrets: the current one and, during its overlap, the one
    it replaced."""

    secret: bytes
    previous: bytes | None
    previous_expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due attempt a worker holds, with all it needs to send it."""

    id: str
    seller_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    attempt: int
    schedule_from: datetime | None
    url: str
    body: bytes
    secrets: EndpointSecrets


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What became of one attempt, as the worker records it."""

    delivery: ClaimedDelivery
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None
    succeeded: bool
    next_attempt_at: datetime | None


class DeliveryQueue:
    """Due deliveries of every seller, as the workers take them."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def any_due(self, *, due_by: datetime, now: datetime) -> bool:
        """Whether a claim would find anything: read first, so that an idle worker's polls
        take no write lock (SQLite has one for the whole database)."""
        query = select(
            exists().where(
                WebhookDeliveryRow.status == _PENDING,
                WebhookDeliveryRow.due_at <= due_by,
                (WebhookDeliveryRow.claimed_until.is_(None))
                | (WebhookDeliveryRow.claimed_until < now),
                WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id,
                WebhookEndpointRow.enabled,
            )
        )
        return bool(self._session.execute(query).scalar_one())

    def claim(
        self, owner: str, *, due_by: datetime, now: datetime, lease: timedelta, limit: int
    ) -> list[ClaimedDelivery]:
        """Hold up to `limit` Pending deliveries due by `due_by` (business time) to enabled
        endpoints, that no live lease holds (`now`: real time), soonest due first."""
        query = (
            select(WebhookDeliveryRow, WebhookEventRow, WebhookEndpointRow)
            .join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(
                WebhookDeliveryRow.status == _PENDING,
                WebhookDeliveryRow.due_at <= due_by,
                (WebhookDeliveryRow.claimed_until.is_(None))
                | (WebhookDeliveryRow.claimed_until < now),
                WebhookEndpointRow.enabled,
            )
            .order_by(WebhookDeliveryRow.due_at)
            .limit(limit)
            # Another worker's claim in flight is skipped, not waited for (PostgreSQL;
            # SQLite's write lock already orders the claims).
            .with_for_update(skip_locked=True, of=WebhookDeliveryRow)
        )
        rows = self._session.execute(query).all()
        if not rows:
            return []
        self._session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.id.in_([row[0].id for row in rows]))
            .values(claimed_by=owner, claimed_until=now + lease)
        )
        return [_claimed(delivery, event, endpoint) for delivery, event, endpoint in rows]

    def record(self, owner: str, outcomes: Sequence[AttemptOutcome]) -> list[AttemptOutcome]:
        """Record the attempts' outcomes, and the successor of each that is retried, in
        three statements whatever their number; those recorded. An attempt whose lease
        is no longer `owner`'s is left alone (whoever holds it now records it)."""
        table = WebhookDeliveryRow.__table__
        held = set(
            self._session.execute(
                update(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.id.in_([o.delivery.id for o in outcomes]),
                    WebhookDeliveryRow.claimed_by == owner,
                    WebhookDeliveryRow.status == _PENDING,
                )
                .values(claimed_until=WebhookDeliveryRow.claimed_until)
                .returning(WebhookDeliveryRow.id)
            ).scalars()
        )
        recorded = [o for o in outcomes if o.delivery.id in held]
        if not recorded:
            return []
        connection = self._session.connection()
        connection.execute(
            update(table).where(table.c.id == bindparam("delivery_id")),
            [_outcome_values(o) for o in recorded],
        )
        retried = [
            pending_row(
                o.delivery.seller_id,
                o.delivery.endpoint_id,
                o.delivery.event_id,
                o.delivery.attempt + 1,
                o.next_attempt_at,
                o.delivery.schedule_from,
            )
            for o in recorded
            if o.next_attempt_at is not None
        ]
        if retried:
            connection.execute(insert(table), retried)
        return recorded

    def succeeded_since(self, endpoint_id: str, since: datetime) -> bool:
        """Whether any attempt to the endpoint succeeded at or after `since`."""
        query = select(
            exists().where(
                WebhookDeliveryRow.endpoint_id == endpoint_id,
                WebhookDeliveryRow.status == DeliveryStatus.SUCCEEDED.value,
                WebhookDeliveryRow.attempted_at >= since,
            )
        )
        return bool(self._session.execute(query).scalar_one())

    def disable(self, endpoint_id: str, reason: str, at: datetime) -> None:
        """Stop sending to the endpoint until its seller enables it again."""
        self._session.execute(
            update(WebhookEndpointRow)
            .where(WebhookEndpointRow.id == endpoint_id, WebhookEndpointRow.enabled)
            .values(enabled=False, disabled_reason=reason, disabled_at=at)
        )

    def oldest_due(self, due_by: datetime) -> datetime | None:
        """When the longest-waiting Pending delivery to an enabled endpoint that is due by
        `due_by` fell due."""
        query = (
            select(func.min(WebhookDeliveryRow.due_at))
            .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
            .where(
                WebhookDeliveryRow.status == _PENDING,
                WebhookDeliveryRow.due_at <= due_by,
                WebhookEndpointRow.enabled,
            )
        )
        oldest: datetime | None = self._session.execute(query).scalar_one()
        return oldest


def _outcome_values(outcome: AttemptOutcome) -> dict[str, object]:
    status = DeliveryStatus.SUCCEEDED if outcome.succeeded else DeliveryStatus.FAILED
    return {
        "delivery_id": outcome.delivery.id,
        "status": status.value,
        "attempted_at": outcome.attempted_at,
        "status_code": outcome.status_code,
        "latency_ms": outcome.latency_ms,
        "error": None if outcome.error is None else outcome.error[:500],
        "response_body": outcome.response_body,
        "next_attempt_at": outcome.next_attempt_at,
        "claimed_by": None,
        "claimed_until": None,
    }


def _claimed(
    delivery: WebhookDeliveryRow, event: WebhookEventRow, endpoint: WebhookEndpointRow
) -> ClaimedDelivery:
    return ClaimedDelivery(
        id=delivery.id,
        seller_id=delivery.seller_id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=event.type,
        attempt=delivery.attempt,
        schedule_from=delivery.schedule_from,
        url=endpoint.url,
        body=event.body,
        secrets=EndpointSecrets(
            endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at
        ),
    )
