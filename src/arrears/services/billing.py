"""Use cases of billing (SPEC §7): regular, final and interim invoices, and previews.

Each invoice is issued in one transaction that holds the contract's row (or SQLite's
write lock): it rates the unbilled usage, numbers and stores the invoice, links every
billed entry to it and moves the contract's billing dates on. If anything fails, none
of it happened. The database's unique (contract, period) constraint is the last word
on "one regular invoice per period", whatever runs billing and however often.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from sqlalchemy.orm import Session

from arrears import metrics
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
from arrears.domain.periods import BillingPeriod, PeriodUnit, period_boundary
from arrears.domain.rating import (
    InvoiceUsage,
    PeriodCharges,
    prorated_fee_line,
    rate_totals,
    rated_item_line,
    recurring_fee_line,
    sum_usage,
)
from arrears.services import billing_failures
from arrears.store.billing import (
    BatchBillingRepository,
    BillingQueue,
    BillingRepository,
    LockedContract,
    PendingRatedItem,
    UsageWindow,
)
from arrears.store.billing_failures import BillingFailures
from arrears.store.catalog import CatalogRepository
from arrears.store.contracts import ContractRepository
from arrears.store.database import Database
from arrears.store.sellers import SellerRegistry

__all__ = [
    "BillingDue",
    "BillingRun",
    "after_billing_due",
    "bill_due",
    "interim_invoice",
    "issue_next_due",
    "preview_period",
    "run_billing",
]

log = logging.getLogger("arrears.billing")


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
    action: Callable[[Session], T],
) -> T:
    """Issue what the contract is due, then run `action` in a write transaction (an
    interim invoice, an order that bills interim); again if the clock crossed a billing
    date in between. An unknown contract is left for `action` to report."""
    for _ in range(3):
        with suppress(NotFound):
            bill_due(database, clock, seller_id, contract_id)
        try:
            with database.write() as session:
                return action(session)
        except BillingDue:
            continue
    raise BillingDue(contract_id)


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
    period_start: datetime
    """The contract's `last_billing_date` and `next_billing_date`, computed once."""
    period_end: datetime


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
    start, end = terms.period_start, terms.period_end
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
    return _draft(
        terms,
        kind,
        cutoff=cutoff,
        fee=fee,
        usage=sum_usage(billing.unbilled_usage(contract.id, cutoff), terms.period_start),
        items=billing.unbilled_rated_items(contract.id),
        earlier=billing.period_lines(contract.id, contract.billed_periods),
    )


def _draft(
    terms: _Terms,
    kind: InvoiceKind,
    *,
    cutoff: datetime,
    fee: tuple[InvoiceLine, ...],
    usage: InvoiceUsage,
    items: Sequence[PendingRatedItem],
    earlier: Iterable[InvoiceLine],
) -> _Pending:
    """The invoice of `kind` for `usage` (unbilled, due by `cutoff`), `items` and `fee`,
    after the period's `earlier` invoice lines. Pure: both billing paths rate with it."""
    start = terms.period_start
    usage_lines = rate_totals(
        components=terms.variant.metered_components,
        currency=terms.currency,
        period_start=start,
        earlier=PeriodCharges.of_lines(earlier),
        usage=usage,
        descriptions=terms.descriptions,
    )
    item_lines = tuple(
        rated_item_line(item.description, item.quantity, item.price_per_unit, terms.currency)
        for item in items
    )
    period_end = cutoff if kind is InvoiceKind.FINAL else terms.period_end
    draft = draft_invoice(
        kind=kind,
        currency=terms.currency,
        period_start=start,
        period_end=max(period_end, start),
        lines=(*usage_lines, *fee, *item_lines),
        tax_rate=terms.tax_rate,
    )
    return _Pending(draft, usage.usage_ids, [item.id for item in items])


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
    metrics.invoices_issued(session, (invoice,))
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
        period_start=contract.last_billing_date,
        period_end=contract.next_billing_date,
    )


@dataclass(frozen=True, slots=True)
class BillingRun:
    contracts: int
    invoices: int
    failed: int


def run_billing(database: Database, clock: Clock, *, batch: int = 500) -> BillingRun:
    """Bill every contract that is due at the clock's now, in batches, until none is.

    Regular invoices are issued a batch of one seller's contracts at a time, in one
    transaction (`_bill_batch`): an interrupted run loses at most that batch, and the
    next run issues it again, identically. Final invoices, and contracts another worker
    holds, take the per-contract path (`bill_due`). A run numbers its invoices in the
    order of the due contracts, each contract's periods in turn, as the per-contract
    path alone would.

    Batches hold at most `batch` contracts. They start small and grow while a batch
    takes well under `_BATCH_SECONDS` (and shrink when one takes much longer): the
    first invoices commit at once, and no transaction holds SQLite's write lock (which
    usage submissions wait for) for long, whatever the contracts' usage.

    A contract whose billing fails is billed on its own, logged and left for the next
    run; it never blocks the others, and a failure of its own is recorded against it
    (`services.billing_failures`)."""
    contracts = invoices = failed = 0
    skip: set[tuple[str, str]] = set()
    size = min(batch, _FIRST_BATCH)
    while True:
        with database.read() as session:
            due = [
                c for c in BillingQueue(session).due(clock.now(), size + len(skip)) if c not in skip
            ][:size]
        if not due:
            billing_failures.failing_contracts(database)  # the gauge, as of this run's end
            return BillingRun(contracts, invoices, failed)
        seller_id = due[0][0]
        # The leading run of one seller's contracts: one batch, one numbering sequence.
        batch_ids = [contract_id for _, contract_id in _leading(due, seller_id)]
        started = time.perf_counter()  # the batch's duration, not a business instant
        try:
            with database.write() as session:
                billed = _bill_batch(session, clock, seller_id, batch_ids)
                BillingFailures(session, seller_id).clear(billed.contracts)
        except Exception:  # e.g. usage changed meanwhile: each contract on its own path
            log.warning("billing a batch failed; billing its contracts one by one", exc_info=True)
            billed = _Batch(contracts=(), invoices=0, rest=tuple(batch_ids))
        size = _next_size(size, len(batch_ids), time.perf_counter() - started, batch)
        contracts += len(billed.contracts)
        invoices += billed.invoices
        for contract_id in billed.rest:
            try:
                with billing_failures.attempt(database, clock, seller_id, contract_id):
                    invoices += len(bill_due(database, clock, seller_id, contract_id))
                contracts += 1
            except Exception:  # logged, and recorded if the contract's own; not the others'
                failed += 1
                skip.add((seller_id, contract_id))


def _leading(due: list[tuple[str, str]], seller_id: str) -> Iterator[tuple[str, str]]:
    return itertools.takewhile(lambda c: c[0] == seller_id, due)


_FIRST_BATCH = 50
_BATCH_SECONDS = 0.5


def _next_size(size: int, used: int, seconds: float, most: int) -> int:
    """The next batch's size: doubled after a full batch that took under half of
    `_BATCH_SECONDS`, halved after one that took over twice as long."""
    if used >= size and seconds < _BATCH_SECONDS / 2:
        return min(most, size * 2)
    if seconds > _BATCH_SECONDS * 2:
        return max(1, size // 2)
    return size


@dataclass(frozen=True, slots=True)
class _Batch:
    contracts: tuple[str, ...]
    """Contracts the batch billed completely."""
    invoices: int
    rest: tuple[str, ...]
    """Contracts left to the per-contract path, in due order (at most the first is
    billed before them by the batch: its regular invoices, when a final one follows)."""


def _bill_batch(session: Session, clock: Clock, seller_id: str, contract_ids: list[str]) -> _Batch:
    """Issue the regular invoices of the leading contracts of `contract_ids` (due order)
    in this transaction, set-based; the rest are left for `bill_due`.

    The batch ends before the first contract that owes only a final invoice, and after
    the first that owes one after its regular ones, so that a single run numbers its
    invoices in due order exactly as `bill_due` one by one would. Contracts another run
    holds (PostgreSQL) are left out of the batch."""
    now = clock.now()
    store = BatchBillingRepository(session, seller_id)
    bounds = _Boundaries()
    chosen, rest = _choose(store.lock_contracts(contract_ids), contract_ids, now, bounds)
    if not chosen:
        return _Batch((), 0, tuple(rest))
    seller = SellerRegistry(session).get(seller_id)
    if seller is None:  # pragma: no cover (a contract's seller always exists)
        raise NotFound(f"There is no seller {seller_id}.")
    drafts, moved = _rate_batch(session, store, seller.invoice_prefix, chosen, bounds)

    numbers = store.reserve_invoice_numbers(seller.invoice_prefix, now.year, len(drafts))
    issued = [
        Invoice(
            id=drafted.invoice_id,
            invoice_number=number,
            contract_id=drafted.contract.id,
            customer_id=drafted.contract.customer_id,
            document_date=now,
            period_index=drafted.contract.billed_periods,
            draft=drafted.pending.draft,
        )
        for drafted, number in zip(drafts, numbers, strict=True)
    ]
    store.add_invoices(issued)
    metrics.invoices_issued(session, issued)
    billing = BillingRepository(session, seller_id)
    for drafted in drafts:
        billing.mark_rated_items_billed(drafted.invoice_id, drafted.pending.item_ids)
    store.save_billed_periods(moved)
    done = tuple(c.id for c, _ in chosen if c.id not in rest)
    return _Batch(done, len(issued), tuple(rest))


def _choose(
    locked: dict[str, LockedContract],
    contract_ids: list[str],
    now: datetime,
    bounds: _Boundaries,
) -> tuple[list[tuple[Contract, int]], list[str]]:
    """(contract, regular periods due) for the batch, and the contracts left to
    `bill_due`, both in due order (see `_bill_batch`)."""
    chosen: list[tuple[Contract, int]] = []
    rest: list[str] = []
    periods: dict[str, BillingPeriod] = {}
    ended = False
    for contract_id in contract_ids:
        row = locked.get(contract_id)
        if row is None or ended:
            # Held by another run (PostgreSQL): `bill_due` waits for it, and finds it
            # billed or not. After the batch's end: left in due order.
            rest.append(contract_id)
            continue
        contract = _contract(row, periods)
        count = 0
        ahead = contract
        while not ahead.closed and not _in_final_period(ahead, bounds) and now >= bounds(ahead, 1):
            ahead = ahead.advanced()
            count += 1
        if count == 0:
            if not contract.closed and _in_final_period(contract, bounds):
                rest.append(contract_id)  # only a final invoice is due: bill_due issues it
                ended = True
            continue  # billed meanwhile by another run: nothing left
        chosen.append((contract, count))
        if _in_final_period(ahead, bounds) and ahead.end_date is not None and now >= ahead.end_date:
            rest.append(contract_id)  # its final invoice follows its regular ones
            ended = True
    return chosen, rest


@dataclass(frozen=True, slots=True)
class _Drafted:
    """A regular invoice of a batch, rated, before it is numbered."""

    contract: Contract
    """The contract as it stands before this invoice."""
    invoice_id: str
    pending: _Pending


def _rate_batch(
    session: Session,
    store: BatchBillingRepository,
    prefix: str,
    chosen: list[tuple[Contract, int]],
    bounds: _Boundaries,
) -> tuple[list[_Drafted], list[tuple[str, int, datetime, datetime]]]:
    """The regular invoices of the chosen contracts, rated with a few queries for the
    whole batch, their usage linked to them; and each contract's billing state after."""
    catalog = CatalogRepository(session, store.seller_id)
    variants: dict[str, PlanVariant] = {}
    names: dict[str, dict[str, str]] = {}
    for contract, _ in chosen:
        if contract.plan_variant_id not in variants:
            variant = catalog.plan_variant(contract.plan_variant_id)
            variants[variant.id] = variant
            names[variant.id] = catalog.component_names(
                m.component_id for m in variant.metered_components
            )
    tax_rates = store.customer_tax_rates(contract.customer_id for contract, _ in chosen)
    ids = [contract.id for contract, _ in chosen]
    items = store.unbilled_rated_items_of(ids)
    earlier = store.period_lines_of({c.id: c.billed_periods for c, _ in chosen})

    # Each invoice's id comes first, so that the database links each period's usage
    # to it while summing it. A contract's first period of the batch takes all its
    # unbilled usage due by its end (older entries are late); each later one, what is
    # due after the period before it.
    periods: list[tuple[Contract, UsageWindow]] = []
    moved: list[tuple[str, int, datetime, datetime]] = []
    for first, count in chosen:
        contract = first
        for k in range(count):
            start, end = bounds(contract, 0), bounds(contract, 1)
            window = UsageWindow(new_id(), contract.id, start if k else None, end, start)
            periods.append((contract, window))
            contract = contract.advanced()
        moved.append(
            (contract.id, contract.billed_periods, bounds(contract, 0), bounds(contract, 1))
        )
    usage = store.link_unbilled_usage([window for _, window in periods])

    drafts: list[_Drafted] = []
    for contract, window in periods:
        variant = variants[contract.plan_variant_id]
        terms = _Terms(
            seller_id=store.seller_id,
            contract=contract,
            variant=variant,
            currency=currency(variant.currency),
            tax_rate=effective_tax_rate(tax_rates[contract.customer_id], variant.tax_rate),
            descriptions=names[variant.id],
            invoice_prefix=prefix,
            period_start=window.period_start,
            period_end=window.cutoff,
        )
        opening = window.after is None  # a later period has no earlier invoices, no items
        pending = _draft(
            terms,
            InvoiceKind.REGULAR,
            cutoff=window.cutoff,
            fee=_fee_lines(terms, final=False),
            usage=usage[window.invoice_id],
            items=items[contract.id] if opening else (),
            earlier=earlier[contract.id] if opening else (),
        )
        drafts.append(_Drafted(contract, window.invoice_id, pending))
    return drafts, moved


class _Boundaries:
    """`bounds(contract, k)`: the contract's billing boundary `billed_periods + k`
    (0: `last_billing_date`, 1: `next_billing_date`), computed once per anchor, period
    and index: a batch's contracts mostly share them, and each costs a `relativedelta`."""

    def __init__(self) -> None:
        self._seen: dict[tuple[datetime, BillingPeriod, int], datetime] = {}

    def __call__(self, contract: Contract, k: int) -> datetime:
        key = (contract.start_date, contract.billing_period, contract.billed_periods + k)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = period_boundary(*key)
        return found


def _in_final_period(contract: Contract, bounds: _Boundaries) -> bool:
    """`contract.in_final_period`, with the boundary from `bounds`."""
    return contract.end_date is not None and contract.end_date <= bounds(contract, 1)


def _contract(row: LockedContract, periods: dict[str, BillingPeriod]) -> Contract:
    key = f"{row.period_unit}/{row.period_quantity}"
    period = periods.get(key)
    if period is None:
        period = periods[key] = BillingPeriod(PeriodUnit(row.period_unit), row.period_quantity)
    return Contract(
        id=row.id,
        created_at=row.created_at,
        customer_id=row.customer_id,
        plan_variant_id=row.plan_variant_id,
        billing_period=period,
        start_date=row.start_date,
        end_date=row.end_date,
        billed_periods=row.billed_periods,
        final_invoice_id=row.final_invoice_id,
    )
