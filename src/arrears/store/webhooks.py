"""Webhook endpoints, the outbox of events and their deliveries, in storage, as a seller
sees them (docs/webhooks.md); the workers' view across sellers is
`store/webhook_queue.py`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, Subquery, delete, exists, func, insert, not_, or_, select, update
from sqlalchemy.orm import aliased

from arrears.domain.errors import NotFound
from arrears.domain.ids import new_id
from arrears.domain.paging import Page, PageRequest
from arrears.domain.webhooks import Delivery, DeliveryStatus, Endpoint
from arrears.store.tables import WebhookDeliveryRow, WebhookEndpointRow, WebhookEventRow
from arrears.store.tenancy import TenantRepository

__all__ = ["WebhookDeliveries", "WebhookEndpoints", "pending_row"]

_PENDING = DeliveryStatus.PENDING.value


class WebhookEndpoints(TenantRepository):
    """The seller's webhook endpoints."""

    def add(self, endpoint: Endpoint, sealed_secret: bytes) -> None:
        self._session.add(
            WebhookEndpointRow(
                id=endpoint.id,
                seller_id=self.seller_id,
                created_at=endpoint.created_at,
                url=endpoint.url,
                description=endpoint.description,
                events=",".join(endpoint.events),
                enabled=endpoint.enabled,
                disabled_reason=endpoint.disabled_reason,
                disabled_at=endpoint.disabled_at,
                secret=sealed_secret,
            )
        )
        self._session.flush()

    def get(self, endpoint_id: str, *, for_update: bool = False) -> Endpoint:
        return _endpoint(
            self._row(WebhookEndpointRow, endpoint_id, "webhook", for_update=for_update)
        )

    def page(self, page: PageRequest) -> Page[Endpoint]:
        return self._page(self._scoped(WebhookEndpointRow), WebhookEndpointRow, page, _endpoint)

    def save(self, endpoint: Endpoint) -> None:
        """Store what a seller may change, and whether the endpoint is disabled and why."""
        self._session.execute(
            update(WebhookEndpointRow)
            .where(
                WebhookEndpointRow.seller_id == self.seller_id,
                WebhookEndpointRow.id == endpoint.id,
            )
            .values(
                url=endpoint.url,
                description=endpoint.description,
                events=",".join(endpoint.events),
                enabled=endpoint.enabled,
                disabled_reason=endpoint.disabled_reason,
                disabled_at=endpoint.disabled_at,
            )
        )

    def delete(self, endpoint_id: str) -> None:
        """Forget the endpoint and its deliveries (NotFound if the seller has none such)."""
        self.get(endpoint_id)
        self._session.execute(
            delete(WebhookDeliveryRow).where(
                WebhookDeliveryRow.seller_id == self.seller_id,
                WebhookDeliveryRow.endpoint_id == endpoint_id,
            )
        )
        self._session.execute(
            delete(WebhookEndpointRow).where(
                WebhookEndpointRow.seller_id == self.seller_id,
                WebhookEndpointRow.id == endpoint_id,
            )
        )

    def replace_secret(self, endpoint_id: str, sealed: bytes, overlap_until: datetime) -> None:
        """The new secret signs from now on; the one it replaces beside it until
        `overlap_until` (a secret replaced before is forgotten)."""
        self._session.execute(
            update(WebhookEndpointRow)
            .where(
                WebhookEndpointRow.seller_id == self.seller_id,
                WebhookEndpointRow.id == endpoint_id,
            )
            # The right-hand side reads the row as it was: the old secret moves aside.
            .values(
                previous_secret=WebhookEndpointRow.secret,
                previous_secret_expires_at=overlap_until,
                secret=sealed,
            )
        )

    def subscribed(self, *event_types: str) -> dict[str, list[str]]:
        """For each of `event_types`, the ids of the seller's enabled endpoints that
        subscribe to it (one query for all)."""
        query = select(WebhookEndpointRow.id, WebhookEndpointRow.events).where(
            WebhookEndpointRow.seller_id == self.seller_id, WebhookEndpointRow.enabled
        )
        found: dict[str, list[str]] = {event_type: [] for event_type in event_types}
        for endpoint_id, events in self._session.execute(query):
            named = events.split(",")
            for event_type in event_types:
                if event_type in named or "*" in named:
                    found[event_type].append(endpoint_id)
        return found

    def failing(self) -> list[tuple[Endpoint, int]]:
        """The endpoints that are disabled or have failing events, newest first, each with
        how many events it fails (`failing_counts`)."""
        counts = _failing_counts(self.seller_id)
        failing = func.coalesce(counts.c.failing, 0)
        query = (
            select(WebhookEndpointRow, failing)
            .outerjoin(counts, counts.c.endpoint_id == WebhookEndpointRow.id)
            .where(
                WebhookEndpointRow.seller_id == self.seller_id,
                or_(not_(WebhookEndpointRow.enabled), failing > 0),
            )
            .order_by(WebhookEndpointRow.created_at.desc(), WebhookEndpointRow.id.desc())
        )
        return [(_endpoint(row), count) for row, count in self._session.execute(query)]

    def failing_counts(self) -> dict[str, int]:
        """For each endpoint with any, how many events it fails: events with a failed
        attempt and no attempt that succeeded."""
        counts = _failing_counts(self.seller_id)
        rows = self._session.execute(select(counts.c.endpoint_id, counts.c.failing))
        return {str(endpoint_id): int(count) for endpoint_id, count in rows}


def _failing_counts(seller_id: str) -> Subquery:
    later = aliased(WebhookDeliveryRow)
    succeeded = exists().where(
        later.seller_id == seller_id,
        later.endpoint_id == WebhookDeliveryRow.endpoint_id,
        later.event_id == WebhookDeliveryRow.event_id,
        later.status == DeliveryStatus.SUCCEEDED.value,
    )
    return (
        select(
            WebhookDeliveryRow.endpoint_id,
            func.count(func.distinct(WebhookDeliveryRow.event_id)).label("failing"),
        )
        .where(
            WebhookDeliveryRow.seller_id == seller_id,
            WebhookDeliveryRow.status == DeliveryStatus.FAILED.value,
            ~succeeded,
        )
        .group_by(WebhookDeliveryRow.endpoint_id)
        .subquery()
    )


class WebhookDeliveries(TenantRepository):
    """The seller's events and their deliveries."""

    def add_event(
        self,
        *,
        event_id: str,
        event_type: str,
        body: bytes,
        created_at: datetime,
        endpoint_ids: Sequence[str],
    ) -> None:
        """Write the event and a first delivery, due at once, to each endpoint."""
        self._session.execute(
            insert(WebhookEventRow).values(
                id=event_id,
                seller_id=self.seller_id,
                type=event_type,
                body=body,
                created_at=created_at,
            )
        )
        self._session.execute(
            insert(WebhookDeliveryRow),
            [
                pending_row(self.seller_id, endpoint_id, event_id, 1, created_at, created_at)
                for endpoint_id in endpoint_ids
            ],
        )

    def page(
        self,
        endpoint_id: str,
        status: DeliveryStatus | None,
        page: PageRequest,
        *,
        oldest_first: bool = False,
    ) -> Page[Delivery]:
        """The endpoint's deliveries, latest first (or oldest first)."""
        query = self._deliveries().where(WebhookDeliveryRow.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(WebhookDeliveryRow.status == status.value)
        total = self._session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        order = (WebhookDeliveryRow.due_at, WebhookDeliveryRow.attempt, WebhookDeliveryRow.id)
        rows = self._session.execute(
            query.order_by(*(c.asc() if oldest_first else c.desc() for c in order))
            .offset(page.skip)
            .limit(page.take)
        )
        return Page(items=[_delivery(row, event_type) for row, event_type in rows], total=total)

    def get(self, endpoint_id: str, delivery_id: str) -> Delivery:
        query = self._deliveries().where(
            WebhookDeliveryRow.endpoint_id == endpoint_id, WebhookDeliveryRow.id == delivery_id
        )
        found = self._session.execute(query).one_or_none()
        if found is None:
            raise NotFound(f"There is no delivery {delivery_id} of webhook {endpoint_id}.")
        return _delivery(found[0], found[1])

    def first(self, endpoint_id: str, event_id: str) -> Delivery:
        """The first attempt at the event's delivery to the endpoint."""
        query = self._deliveries().where(
            WebhookDeliveryRow.endpoint_id == endpoint_id,
            WebhookDeliveryRow.event_id == event_id,
            WebhookDeliveryRow.attempt == 1,
        )
        row, event_type = self._session.execute(query).one()
        return _delivery(row, event_type)

    def retry(self, endpoint_id: str, delivery_id: str, now: datetime) -> Delivery:
        """An attempt at the delivery's event, due now, made once: the one already
        pending is brought forward, else a new one is added after the last."""
        earlier = self.get(endpoint_id, delivery_id)
        of_event = (
            WebhookDeliveryRow.seller_id == self.seller_id,
            WebhookDeliveryRow.endpoint_id == endpoint_id,
            WebhookDeliveryRow.event_id == earlier.event_id,
        )
        pending = self._session.execute(
            select(WebhookDeliveryRow.id).where(*of_event, WebhookDeliveryRow.status == _PENDING)
        ).scalar_one_or_none()
        if pending is not None:
            self._session.execute(
                update(WebhookDeliveryRow)
                .where(
                    WebhookDeliveryRow.seller_id == self.seller_id,
                    WebhookDeliveryRow.id == pending,
                )
                .values(due_at=now, schedule_from=None)
            )
            return self.get(endpoint_id, pending)
        last = self._session.execute(
            select(func.max(WebhookDeliveryRow.attempt)).where(*of_event)
        ).scalar_one()
        row = pending_row(self.seller_id, endpoint_id, earlier.event_id, last + 1, now, None)
        self._session.execute(insert(WebhookDeliveryRow).values(**row))
        return self.get(endpoint_id, str(row["id"]))

    def _deliveries(self) -> Select[tuple[WebhookDeliveryRow, str]]:
        return (
            select(WebhookDeliveryRow, WebhookEventRow.type)
            .join(WebhookEventRow, WebhookEventRow.id == WebhookDeliveryRow.event_id)
            .where(WebhookDeliveryRow.seller_id == self.seller_id)
        )


def pending_row(  # noqa: PLR0917 (one row's columns, in order)
    seller_id: str,
    endpoint_id: str,
    event_id: str,
    attempt: int,
    due_at: datetime,
    schedule_from: datetime | None,
) -> dict[str, object]:
    return {
        "id": new_id(),
        "seller_id": seller_id,
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "attempt": attempt,
        "status": _PENDING,
        "due_at": due_at,
        "schedule_from": schedule_from,
    }


def _endpoint(row: WebhookEndpointRow) -> Endpoint:
    return Endpoint(
        id=row.id,
        seller_id=row.seller_id,
        url=row.url,
        events=tuple(row.events.split(",")),
        description=row.description,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
    )


def _delivery(row: WebhookDeliveryRow, event_type: str) -> Delivery:
    return Delivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=event_type,
        attempt=row.attempt,
        status=DeliveryStatus(row.status),
        due_at=row.due_at,
        attempted_at=row.attempted_at,
        status_code=row.status_code,
        latency_ms=row.latency_ms,
        error=row.error,
        response_body=row.response_body,
        next_attempt_at=row.next_attempt_at,
    )
