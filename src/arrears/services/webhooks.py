"""Use cases of webhooks (SPEC §13, docs/webhooks.md): a seller's endpoints and their
deliveries, and the events written to the outbox in the transaction of the change they
report.

An event's body is the same JSON the API answers for its object. Rendering that JSON
is the API's business (its wire models), so the API installs its renderers here at
start (`use_payloads`); services only ask for them. An event is written only for a
seller with an enabled endpoint that subscribes to it: a change no one listens to
costs one small query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

import msgspec
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from arrears.domain.billing_failures import BillingFailure
from arrears.domain.clock import Clock
from arrears.domain.contracts import Contract
from arrears.domain.credit_notes import CreditNote
from arrears.domain.errors import FieldError, Invalid
from arrears.domain.ids import new_id
from arrears.domain.invoices import Invoice
from arrears.domain.paging import Page, PageRequest
from arrears.domain.payments import Balance
from arrears.domain.tasks import Task, TaskStatus
from arrears.domain.webhooks import (
    SECRET_OVERLAP,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventType,
    check_events,
    check_url,
    new_secret,
)
from arrears.services.webhook_secrets import SecretBox
from arrears.store.contract_plans import StoredPhase
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "DELIVERIES_WAITING",
    "EndpointChange",
    "Payloads",
    "Webhooks",
    "contract_ended",
    "credit_note_issued",
    "invoice_settled",
    "invoices_finalized",
    "task_finished",
    "use_payloads",
]

DELIVERIES_WAITING = threading.Event()
"""Set when a transaction that wrote deliveries commits in this process: the delivery
workers look at once instead of at their next poll."""

_encoder = msgspec.json.Encoder(decimal_format="number")


class Payloads(Protocol):
    """The API's answer for each object an event reports, as plain JSON values."""

    def task(self, task: Task) -> object: ...

    def invoice(self, invoice: Invoice, standing: Balance | None = None) -> object:
        """The invoice as `GET /invoices/{id}` answers it while it stands at `standing`
        (None: as just issued)."""
        ...

    def credit_note(self, note: CreditNote) -> object: ...

    def contract(
        self,
        contract: Contract,
        failure: BillingFailure | None,
        phases: Sequence[StoredPhase],
        now: datetime,
    ) -> object:
        """The contract as `GET /contracts/{id}` answers it at `now`."""
        ...


_payloads: list[Payloads] = []


def use_payloads(payloads: Payloads) -> None:
    """Install the renderers of event bodies (the API does, at start)."""
    _payloads[:] = [payloads]


def _rendered() -> Payloads:
    if not _payloads:
        raise RuntimeError("no webhook payloads installed: call webhooks.use_payloads first")
    return _payloads[0]


# -- events: written in the transaction of the change -----------------------------------


def task_finished(work: UnitOfWork, now: datetime, task_id: str) -> None:
    """`bulkconsumption.succeeded` or `.failed`, for a task whose outcome is being
    recorded in `work`'s transaction (read back only if someone listens)."""
    succeeded, failed = EventType.BULK_CONSUMPTION_SUCCEEDED, EventType.BULK_CONSUMPTION_FAILED
    listening = work.webhook_endpoints.subscribed(succeeded, failed)
    if not any(listening.values()):
        return
    task = work.tasks.get(task_id)
    event_type = succeeded if task.status is TaskStatus.SUCCESSFUL else failed
    renders = [lambda p: p.task(task)]
    _emit(work, now, event_type, renders, endpoint_ids=listening[event_type])


def invoices_finalized(work: UnitOfWork, now: datetime, invoices: Sequence[Invoice]) -> None:
    """`invoice.finalized` for each invoice being issued in `work`'s transaction."""
    if invoices:
        renders = [_invoice_render(invoice) for invoice in invoices]
        _emit(work, now, EventType.INVOICE_FINALIZED, renders)


def invoice_settled(
    work: UnitOfWork, now: datetime, event_type: EventType, invoice: Invoice, standing: Balance
) -> None:
    """`invoice.paid` or `invoice.voided` for an invoice whose `standing` is being saved in
    `work`'s transaction."""
    _emit(work, now, event_type, [lambda p: p.invoice(invoice, standing)])


def credit_note_issued(work: UnitOfWork, now: datetime, note: CreditNote) -> None:
    """`creditnote.issued` for a credit note being stored in `work`'s transaction."""
    _emit(work, now, EventType.CREDIT_NOTE_ISSUED, [lambda p: p.credit_note(note)])


def contract_ended(
    work: UnitOfWork, now: datetime, contract: Contract, failure: BillingFailure | None
) -> None:
    """`contract.ended` for a contract given its end in `work`'s transaction (`failure`:
    why it cannot be billed, as its `GET` shows)."""
    listening = work.webhook_endpoints.subscribed(EventType.CONTRACT_ENDED)
    if not listening[EventType.CONTRACT_ENDED]:
        return
    phases = work.contract_plans.phases([contract])[contract.id]
    renders = [lambda p: p.contract(contract, failure, phases, now)]
    _emit(work, now, EventType.CONTRACT_ENDED, renders)


def _invoice_render(invoice: Invoice) -> Callable[[Payloads], object]:
    return lambda payloads: payloads.invoice(invoice)


def _emit(
    work: UnitOfWork,
    now: datetime,
    event_type: EventType,
    renders: Sequence[Callable[[Payloads], object]],
    *,
    endpoint_ids: Sequence[str] | None = None,
) -> list[str]:
    """Write one event per render, each due at once to every subscribed endpoint (or to
    `endpoint_ids`); their ids."""
    if endpoint_ids is None:
        endpoint_ids = work.webhook_endpoints.subscribed(event_type)[event_type]
    if not endpoint_ids:
        return []
    ids = []
    for render in renders:
        event_id = new_id()
        body = {"type": event_type.value, "timestamp": now, "data": render(_rendered())}
        work.webhook_deliveries.add_event(
            event_id=event_id,
            event_type=event_type.value,
            body=_encoder.encode(body),
            created_at=now,
            endpoint_ids=endpoint_ids,
        )
        ids.append(event_id)
    _wake_after_commit(work.session)
    return ids


_WAKES = "arrears.webhooks.wakes"


def _wake_after_commit(session: Session) -> None:
    if not session.info.get(_WAKES):
        session.info[_WAKES] = True
        orm_event.listen(session, "after_commit", _wake, once=True)


def _wake(session: Session) -> None:
    session.info.pop(_WAKES, None)
    DELIVERIES_WAITING.set()


# -- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """What `PATCH` changes; None leaves a field as it is."""

    url: str | None = None
    events: Sequence[str] | None = None
    enabled: bool | None = None
    description: str | None = None


class Webhooks:
    """A seller's webhook endpoints and deliveries, in one unit of work."""

    def __init__(
        self, work: UnitOfWork, clock: Clock, *, box: SecretBox, allow_private: bool
    ) -> None:
        self._work = work
        self._clock = clock
        self._box = box
        self._allow_private = allow_private
        self._endpoints = work.webhook_endpoints
        self._deliveries = work.webhook_deliveries

    def create(
        self, url: str, events: Sequence[str], description: str | None
    ) -> tuple[Endpoint, str]:
        """A new endpoint, enabled, and its secret (shown to the seller only now)."""
        self._check(url, events)
        endpoint = Endpoint(
            id=new_id(),
            seller_id=self._work.seller_id,
            url=url,
            events=tuple(dict.fromkeys(events)),
            description=description,
            enabled=True,
            disabled_reason=None,
            disabled_at=None,
            created_at=self._clock.now(),
        )
        secret = new_secret()
        self._endpoints.add(endpoint, self._box.seal(secret))
        return endpoint, secret

    def get(self, endpoint_id: str) -> Endpoint:
        return self._endpoints.get(endpoint_id)

    def page(self, page: PageRequest) -> Page[Endpoint]:
        return self._endpoints.page(page)

    def change(self, endpoint_id: str, change: EndpointChange) -> Endpoint:
        """Change the endpoint. Enabling it clears why it was disabled; what its
        deliveries wait for is then sent as it falls due."""
        endpoint = self._endpoints.get(endpoint_id, for_update=True)
        self._check(change.url, change.events)
        changed = endpoint
        if change.url is not None:
            changed = replace(changed, url=change.url)
        if change.events is not None:
            changed = replace(changed, events=tuple(dict.fromkeys(change.events)))
        if change.description is not None:
            changed = replace(changed, description=change.description)
        if change.enabled is True:
            changed = replace(changed, enabled=True, disabled_reason=None, disabled_at=None)
        elif change.enabled is False and endpoint.enabled:
            changed = replace(
                changed,
                enabled=False,
                disabled_reason="Disabled by the seller.",
                disabled_at=self._clock.now(),
            )
        self._endpoints.save(changed)
        return changed

    def delete(self, endpoint_id: str) -> None:
        self._endpoints.delete(endpoint_id)

    def rotate_secret(self, endpoint_id: str) -> tuple[str, datetime]:
        """A new secret for the endpoint (shown only now), and until when the old one
        signs beside it (`SECRET_OVERLAP`), so receivers can switch without losing a
        message."""
        self._endpoints.get(endpoint_id, for_update=True)
        secret = new_secret()
        overlap_until = self._clock.now() + SECRET_OVERLAP
        self._endpoints.replace_secret(endpoint_id, self._box.seal(secret), overlap_until)
        return secret, overlap_until

    def send_test(self, endpoint_id: str) -> Delivery:
        """A `webhook.test` event to this endpoint alone, due now, enabled or not (a
        disabled endpoint's deliveries wait until it is enabled)."""
        endpoint = self._endpoints.get(endpoint_id)
        render: Callable[[Payloads], object] = lambda _: {"WebhookId": endpoint.id}  # noqa: E731
        (event_id,) = _emit(
            self._work,
            self._clock.now(),
            EventType.WEBHOOK_TEST,
            [render],
            endpoint_ids=[endpoint.id],
        )
        return self._deliveries.first(endpoint.id, event_id)

    def deliveries(
        self,
        endpoint_id: str,
        status: DeliveryStatus | None,
        page: PageRequest,
        *,
        oldest_first: bool = False,
    ) -> Page[Delivery]:
        self._endpoints.get(endpoint_id)
        return self._deliveries.page(endpoint_id, status, page, oldest_first=oldest_first)

    def failing_counts(self) -> dict[str, int]:
        """How many events each endpoint fails (failed, and not since succeeded)."""
        return self._endpoints.failing_counts()

    def failing(self) -> list[tuple[Endpoint, int]]:
        """The endpoints disabled or failing events, each with how many it fails."""
        return self._endpoints.failing()

    def retry(self, endpoint_id: str, delivery_id: str) -> Delivery:
        """Send the delivery's event again now, once (the schedule is not restarted)."""
        self._endpoints.get(endpoint_id)
        delivery = self._deliveries.retry(endpoint_id, delivery_id, self._clock.now())
        _wake_after_commit(self._work.session)
        return delivery

    def _check(self, url: str | None, events: Sequence[str] | None) -> None:
        errors: list[FieldError] = []
        if url is not None:
            errors += check_url(url, allow_private=self._allow_private)
        if events is not None:
            errors += check_events(events)
        if errors:
            raise Invalid(errors)
