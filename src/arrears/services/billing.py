"""Use cases of billing (SPEC §7): regular, final and interim invoices, and previews.

Each invoice is issued in one transaction that holds the contract's row (or SQLite's
write lock): it rates the unbilled usage, numbers and stores the invoice, links every
billed entry to it and moves the contract's billing dates on. If anything fails, none
of it happened. The database's unique (contract, period) constraint is the last word
on "one regular invoice per period", whatever runs billing and however often.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from arrears.domain.catalog import PlanVariant
from arrears.domain.clock import Clock
from arrears.domain.contracts import Contract
from arrears.domain.errors import Conflict, NotFound
from arrears.domain.ids import new_id
from arrears.domain.invoices import (
    Invoice,
    InvoiceDraft,
    InvoiceKind,
    InvoiceLine,
    draft_invoice,
    effective_tax_rate,
)
from arrears.domain.money import Currency, currency
from arrears.domain.rating import (
    PeriodCharges,
    prorated_fee_line,
    rate_usage,
    rated_item_line,
    recurring_fee_line,
)
from arrears.store.billing import BillingQueue, BillingRepository
from arrears.store.catalog import CatalogRepository
from arrears.store.contracts import ContractRepository
from arrears.store.database import Database
from arrears.store.sellers import SellerRegistry

__all__ = [
    "BillingDue",
    "BillingRun",
    "bill_due",
    "interim_invoice",
    "issue_next_due",
    "preview_period",
    "run_billing",
]

log = logging.getLogger("arrears.billing")


class BillingDue(Exception):
    """The contract has a regular or final invoice due; issue it before an interim one."""


@dataclass(frozen=True, slots=True)
class _Terms:
    """Everything about a contract that rating needs, read once per invoice."""

    seller_id: str
    contract: Contract
    variant: PlanVariant
    currency: Currency
    tax_rate: Decimal
    descriptions: dict[str, str]
    invoice_prefix: str


def bill_due(database: Database, clock: Clock, seller_id: str, contract_id: str) -> list[Invoice]:
    """Issue every invoice the contract is due at the clock's now, oldest period first,
    each in its own transaction (so an interrupted run resumes where it stopped)."""
    issued: list[Invoice] = []
    while True:
        with database.write() as session:
            invoice = issue_next_due(session, clock, seller_id, contract_id)
        if invoice is None:
            return issued
        issued.append(invoice)


def issue_next_due(
    session: Session, clock: Clock, seller_id: str, contract_id: str
) -> Invoice | None:
    """The contract's next due regular or final invoice, issued; None when none is due."""
    contracts = ContractRepository(session, seller_id)
    contract = contracts.get(contract_id, for_update=True)
    now = clock.now()
    if contract.closed:
        return None
    end = contract.end_date
    if end is not None and contract.in_final_period:
        if now < end:
            return None
        terms = _terms(session, seller_id, contract)
        fee = _fee_lines(terms, final=True)
        invoice = _issue(session, clock, terms, InvoiceKind.FINAL, cutoff=end, fee=fee)
        contracts.save_billing_state(replace(contract, final_invoice_id=invoice.id))
        return invoice
    if now < contract.next_billing_date:
        return None
    terms = _terms(session, seller_id, contract)
    fee = _fee_lines(terms, final=False)
    invoice = _issue(
        session, clock, terms, InvoiceKind.REGULAR, cutoff=contract.next_billing_date, fee=fee
    )
    contracts.save_billing_state(contract.advanced())
    return invoice


def interim_invoice(
    session: Session, clock: Clock, seller_id: str, contract_id: str
) -> Invoice | None:
    """An interim invoice of every unbilled entry due by now (and pending rated items);
    None when there is nothing to bill. It does not move the billing dates.

    Raises `BillingDue` while a regular or final invoice is due (issue those first,
    with `bill_due`), and `Conflict` for a contract that is closed."""
    contract = ContractRepository(session, seller_id).get(contract_id, for_update=True)
    now = clock.now()
    if contract.closed:
        raise Conflict(f"Contract {contract_id} has its final invoice; nothing more is billed.")
    due_at = contract.end_date if contract.in_final_period else contract.next_billing_date
    if due_at is not None and now >= due_at:
        raise BillingDue(contract_id)
    terms = _terms(session, seller_id, contract)
    pending = _rate(session, terms, InvoiceKind.INTERIM, cutoff=now, fee=())
    if not (pending.usage_ids or pending.item_ids):
        return None
    return _store(session, clock, terms, pending)


def preview_period(
    session: Session, clock: Clock, seller_id: str, contract_id: str
) -> InvoiceDraft:
    """The invoice the contract would get if its current period closed now: usage due
    by now with the free quota left, the period's fee, pending rated items. Call it in
    a `Database.rehearsal()` after `issue_next_due` has caught up; it saves nothing.
    A closed contract (final invoice issued) has nothing to preview: `Conflict`."""
    contract = ContractRepository(session, seller_id).get(contract_id)
    if contract.closed:
        raise Conflict(f"Contract {contract_id} has its final invoice; nothing more is billed.")
    terms = _terms(session, seller_id, contract)
    kind = InvoiceKind.FINAL if contract.in_final_period else InvoiceKind.REGULAR
    fee = _fee_lines(terms, final=contract.in_final_period)
    return _rate(session, terms, kind, cutoff=clock.now(), fee=fee).draft


# -- rating and storing an invoice -------------------------------------------------------


def _issue(
    session: Session,
    clock: Clock,
    terms: _Terms,
    kind: InvoiceKind,
    *,
    cutoff: datetime,
    fee: tuple[InvoiceLine, ...],
) -> Invoice:
    return _store(session, clock, terms, _rate(session, terms, kind, cutoff=cutoff, fee=fee))


def _fee_lines(terms: _Terms, *, final: bool) -> tuple[InvoiceLine, ...]:
    fee = terms.variant.recurring_fee
    contract = terms.contract
    start, end = contract.last_billing_date, contract.next_billing_date
    if fee is None:
        return ()
    if not final:
        return (recurring_fee_line(fee, start, end, terms.currency),)
    ended = contract.end_date
    if ended is None or ended <= start:
        return ()  # ended on its last billing date: no part of a period is left to charge
    return (prorated_fee_line(fee, start, end, ended, terms.currency),)


@dataclass(frozen=True, slots=True)
class _Pending:
    draft: InvoiceDraft
    usage_ids: list[int]
    item_ids: list[str]


def _rate(
    session: Session,
    terms: _Terms,
    kind: InvoiceKind,
    *,
    cutoff: datetime,
    fee: tuple[InvoiceLine, ...],
) -> _Pending:
    """Rate what the contract has unbilled up to `cutoff` into an invoice of `kind`."""
    contract = terms.contract
    billing = BillingRepository(session, terms.seller_id)
    entries = billing.unbilled_usage(contract.id, cutoff)
    items = billing.unbilled_rated_items(contract.id)
    usage_lines = rate_usage(
        components=terms.variant.metered_components,
        currency=terms.currency,
        period_start=contract.last_billing_date,
        period_end=max(cutoff, contract.last_billing_date),
        earlier=PeriodCharges.of_lines(billing.period_lines(contract.id, contract.billed_periods)),
        entries=entries,
        descriptions=terms.descriptions,
    )
    item_lines = tuple(
        rated_item_line(item.description, item.quantity, item.price_per_unit, terms.currency)
        for item in items
    )
    period_end = cutoff if kind is InvoiceKind.FINAL else contract.next_billing_date
    draft = draft_invoice(
        kind=kind,
        currency=terms.currency,
        period_start=contract.last_billing_date,
        period_end=max(period_end, contract.last_billing_date),
        lines=(*usage_lines, *fee, *item_lines),
        tax_rate=terms.tax_rate,
    )
    return _Pending(draft, [e.id for e in entries], [item.id for item in items])


def _store(session: Session, clock: Clock, terms: _Terms, pending: _Pending) -> Invoice:
    contract = terms.contract
    billing = BillingRepository(session, terms.seller_id)
    now = clock.now()
    invoice = Invoice(
        id=new_id(),
        invoice_number=billing.next_invoice_number(terms.invoice_prefix, now.year),
        contract_id=contract.id,
        customer_id=contract.customer_id,
        document_date=now,
        period_index=contract.billed_periods,
        draft=pending.draft,
    )
    billing.add_invoice(invoice)
    billing.mark_usage_billed(invoice.id, pending.usage_ids)
    billing.mark_rated_items_billed(invoice.id, pending.item_ids)
    return invoice


def _terms(session: Session, seller_id: str, contract: Contract) -> _Terms:
    catalog = CatalogRepository(session, seller_id)
    variant = catalog.plan_variant(contract.plan_variant_id)
    customer = catalog.customer(contract.customer_id)
    seller = SellerRegistry(session).get(seller_id)
    if seller is None:  # pragma: no cover (a contract's seller always exists)
        raise NotFound(f"There is no seller {seller_id}.")
    return _Terms(
        seller_id=seller_id,
        contract=contract,
        variant=variant,
        currency=currency(variant.currency),
        tax_rate=effective_tax_rate(customer.tax_rate, variant.tax_rate),
        descriptions=catalog.component_names(m.component_id for m in variant.metered_components),
        invoice_prefix=seller.invoice_prefix,
    )


@dataclass(frozen=True, slots=True)
class BillingRun:
    contracts: int
    invoices: int
    failed: int


def run_billing(database: Database, clock: Clock, *, batch: int = 500) -> BillingRun:
    """Bill every contract that is due at the clock's now, in batches, until none is.

    A contract whose billing fails (e.g. its usage changed under it) is logged and left
    for the next run; it never blocks the others."""
    contracts = invoices = failed = 0
    skip: set[tuple[str, str]] = set()
    while True:
        with database.read() as session:
            due = [
                c
                for c in BillingQueue(session).due(clock.now(), batch + len(skip))
                if c not in skip
            ]
        if not due:
            return BillingRun(contracts, invoices, failed)
        for seller_id, contract_id in due[:batch]:
            try:
                invoices += len(bill_due(database, clock, seller_id, contract_id))
                contracts += 1
            except Exception:  # one contract's failure must not stop the others
                log.exception(
                    "billing contract %s failed; it is retried on the next run", contract_id
                )
                failed += 1
                skip.add((seller_id, contract_id))
