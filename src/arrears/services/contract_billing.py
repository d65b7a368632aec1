"""Billing one contract (SPEC §7): its regular and final invoices when due, an interim
invoice on request, a preview of its current period.

Each is a batch of one on the road every invoice takes (`services.invoicing`): the
contract's row is locked, a window says what the invoice bills, `rate` and `issue` make
it. Each invoice is issued in one transaction: if anything fails, none of it happened.
The database's unique (contract, period) constraint is the last word on "one regular
invoice per period", whatever runs billing and however often.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from typing import TypeVar

from arrears.domain.clock import Clock
from arrears.domain.errors import Conflict, NotFound
from arrears.domain.invoices import Invoice, InvoiceDraft
from arrears.services.billing_failures import on_request
from arrears.services.invoicing import (
    final_window,
    interim_window,
    issue,
    rate,
    regular_window,
)
from arrears.store.unit_of_work import Database, UnitOfWork

__all__ = [
    "BillingDue",
    "after_billing_due",
    "bill_due",
    "bill_interim",
    "catch_up",
    "interim_invoice",
    "issue_next_due",
    "preview",
    "preview_period",
]

T = TypeVar("T")


class BillingDue(Conflict):
    """The contract has a regular or final invoice due; issue it before an interim one.

    `after_billing_due` handles it; should the clock keep crossing billing dates, it
    reaches the client as a 409 to retry, never as a 500."""

    def __init__(self, contract_id: str) -> None:
        super().__init__(f"Contract {contract_id} has an invoice due; retry the request.")


def after_billing_due(
    database: Database,
    clock: Clock,
    seller_id: str,
    contract_id: str,
    action: Callable[[UnitOfWork], T],
) -> T:
    """Issue what the contract is due, then run `action` in a write transaction (an
    interim invoice, an order that bills interim); again if the clock crossed a billing
    date in between. An unknown contract is left for `action` to report."""
    for _ in range(3):
        with suppress(NotFound):
            bill_due(database, clock, seller_id, contract_id)
        try:
            with database.unit_of_work(seller_id) as work:
                return action(work)
        except BillingDue:
            continue
    raise BillingDue(contract_id)


def bill_due(database: Database, clock: Clock, seller_id: str, contract_id: str) -> list[Invoice]:
    """Issue every invoice the contract is due at the clock's now, oldest period first,
    each in its own transaction (so an interrupted run resumes where it stopped)."""
    issued: list[Invoice] = []
    while True:
        with database.unit_of_work(seller_id) as work:
            invoice = issue_next_due(work, clock, contract_id)
        if invoice is None:
            return issued
        issued.append(invoice)


def issue_next_due(work: UnitOfWork, clock: Clock, contract_id: str) -> Invoice | None:
    """The contract's next due regular or final invoice, issued; None when none is due."""
    contracts = work.contracts
    contract = contracts.get(contract_id, for_update=True)
    now = clock.now()
    if contract.closed:
        return None
    end = contract.end_date
    if end is not None and contract.in_final_period:
        if now < end:
            return None
        window = final_window(contract, end)
        (invoice,) = issue(work, now, rate(work, [window]))
        contracts.save_billing_state(replace(contract, final_invoice_id=invoice.id))
        return invoice
    if now < contract.next_billing_date:
        return None
    window = regular_window(contract, contract.last_billing_date, contract.next_billing_date)
    (invoice,) = issue(work, now, rate(work, [window]))
    contracts.save_billing_state(contract.advanced())
    return invoice


def catch_up(work: UnitOfWork, clock: Clock, contract_id: str) -> None:
    """Issue every invoice the contract is due, in `work`'s one transaction: what a
    preview (in a rehearsal) bills first, as `bill_due` would have."""
    while issue_next_due(work, clock, contract_id):
        pass


def interim_invoice(work: UnitOfWork, clock: Clock, contract_id: str) -> Invoice | None:
    """An interim invoice of every unbilled entry due by now (and pending rated items);
    None when there is nothing to bill. It does not move the billing dates.

    Raises `BillingDue` while a regular or final invoice is due (issue those first,
    with `bill_due`), and `Conflict` for a contract that is closed."""
    contract = work.contracts.get(contract_id, for_update=True)
    now = clock.now()
    if contract.closed:
        raise Conflict(f"Contract {contract_id} has its final invoice; nothing more is billed.")
    due_at = contract.end_date if contract.in_final_period else contract.next_billing_date
    if due_at is not None and now >= due_at:
        raise BillingDue(contract_id)
    (rated,) = rate(work, [interim_window(contract, now)])
    if rated.bills_nothing:  # nothing was linked either: the transaction wrote nothing
        return None
    (invoice,) = issue(work, now, [rated])
    return invoice


def bill_interim(
    database: Database, clock: Clock, seller_id: str, contract_id: str
) -> Invoice | None:
    """The request for an interim invoice: what the contract is due issued first, then
    the interim invoice (None when there is nothing to bill), each committed here; a
    failure of the contract's own is recorded (`billing_failures.on_request`)."""
    with on_request(database, clock, seller_id, contract_id):
        return after_billing_due(
            database,
            clock,
            seller_id,
            contract_id,
            lambda work: interim_invoice(work, clock, contract_id),
        )


def preview(
    database: Database, clock: Clock, seller_id: str, contract_id: str
) -> tuple[InvoiceDraft, str]:
    """The contract's preview (`preview_period`) and its customer's id, in a rehearsal
    that bills what is due first and saves nothing."""
    with (
        on_request(database, clock, seller_id, contract_id, bills=False),
        database.unit_of_work(seller_id, "rehearsal") as work,
    ):
        catch_up(work, clock, contract_id)
        draft = preview_period(work, clock, contract_id)
        return draft, work.contracts.get(contract_id).customer_id


def preview_period(work: UnitOfWork, clock: Clock, contract_id: str) -> InvoiceDraft:
    """The invoice the contract would get if its current period closed now: usage due
    by now with the free quota left, the period's fee, pending rated items. It rates as
    `issue_next_due` would, sums the usage without linking it and saves nothing; call
    it in a rehearsal unit of work after `catch_up`.
    A closed contract (final invoice issued) has nothing to preview: `Conflict`."""
    contract = work.contracts.get(contract_id)
    if contract.closed:
        raise Conflict(f"Contract {contract_id} has its final invoice; nothing more is billed.")
    now = clock.now()
    if contract.in_final_period:
        window = final_window(contract, now)
    else:
        window = replace(
            regular_window(contract, contract.last_billing_date, contract.next_billing_date),
            cutoff=now,
        )
    (rated,) = rate(work, [window], link=False)
    return rated.draft
