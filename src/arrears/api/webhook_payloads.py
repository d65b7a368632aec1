"""The body of each webhook event: the same JSON the API answers for its object
(SPEC §13), rendered by the routers' own wire models and installed into
`services.webhooks` when the app or a worker starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from arrears.api.routers.consumption import _task_out
from arrears.api.routers.contracts import _out as _contract_out
from arrears.api.routers.corrections import credit_note_out
from arrears.api.routers.invoices import invoice_out
from arrears.domain.billing_failures import BillingFailure
from arrears.domain.contracts import Contract
from arrears.domain.credit_notes import CreditNote
from arrears.domain.invoices import Invoice
from arrears.domain.payments import Balance
from arrears.domain.tasks import Task
from arrears.domain.webhooks import TASK_ERRORS_LIMIT
from arrears.services import webhooks
from arrears.services.contract_plans import StoredPhase

__all__ = ["ApiPayloads", "install"]


@dataclass(frozen=True, slots=True)
class _Instant:
    """A clock standing at the instant the event happened."""

    instant: datetime

    def now(self) -> datetime:
        return self.instant


@dataclass(frozen=True, slots=True)
class _At:
    clock: _Instant


class ApiPayloads:
    """Each object as its `GET` answers it (a task with at most 100 of its errors)."""

    def task(self, task: Task) -> object:
        shown = replace(task, errors=task.errors[:TASK_ERRORS_LIMIT])
        return _task_out(shown).model_dump(mode="python", by_alias=True)

    def invoice(self, invoice: Invoice, standing: Balance | None = None) -> object:
        return invoice_out(invoice, standing).model_dump(mode="python", by_alias=True)

    def credit_note(self, note: CreditNote) -> object:
        return credit_note_out(note).model_dump(mode="python", by_alias=True)

    def contract(
        self,
        contract: Contract,
        failure: BillingFailure | None,
        phases: Sequence[StoredPhase],
        now: datetime,
    ) -> object:
        context: Any = _At(_Instant(now))  # the router reads only the clock
        out = _contract_out(contract, context, failure, list(phases))
        return out.model_dump(mode="python", by_alias=True)


def install() -> None:
    webhooks.use_payloads(ApiPayloads())
