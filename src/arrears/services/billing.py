"""The scheduler's billing run (SPEC §7): every contract that is due, in batches of one
seller's contracts, each batch one transaction on the road every invoice takes
(`services.invoicing`); what a batch leaves (final invoices, contracts another worker
holds, a batch that failed) is billed one contract at a time (`bill_due`).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from arrears.domain.clock import Clock
from arrears.domain.contracts import Contract
from arrears.domain.periods import BillingPeriod, PeriodUnit, period_boundary
from arrears.services import billing_failures
from arrears.services.contract_billing import bill_due
from arrears.services.invoicing import InvoiceWindow, issue, rate, regular_window
from arrears.store.billing_queue import LockedContract
from arrears.store.unit_of_work import Database, UnitOfWork

__all__ = ["BillingRun", "run_billing"]

log = logging.getLogger("arrears.billing")


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
    holds, are billed one by one (`_bill_one`). A run numbers its invoices in the order
    of the due contracts, each contract's periods in turn, as billing each contract on
    its own would.

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
        with database.registry_work("read") as queue:
            due = [
                c for c in queue.billing_queue.due(clock.now(), size + len(skip)) if c not in skip
            ][:size]
        if not due:
            billing_failures.failing_contracts(database)  # the gauge, as of this run's end
            return BillingRun(contracts, invoices, failed)
        seller_id = due[0][0]
        # The leading run of one seller's contracts: one batch, one numbering sequence.
        batch_ids = [contract_id for _, contract_id in _leading(due, seller_id)]
        started = time.perf_counter()  # the batch's duration, not a business instant
        try:
            with database.unit_of_work(seller_id) as work:
                billed = _bill_batch(work, clock, batch_ids)
                work.billing_failures.clear(billed.contracts)
        except Exception:  # e.g. usage changed meanwhile: each contract on its own
            log.warning("billing a batch failed; billing its contracts one by one", exc_info=True)
            billed = _Batch(contracts=(), invoices=0, rest=tuple(batch_ids))
        size = _next_size(size, len(batch_ids), time.perf_counter() - started, batch)
        contracts += len(billed.contracts)
        invoices += billed.invoices
        for contract_id in billed.rest:
            issued = _bill_one(database, clock, seller_id, contract_id)
            if issued is None:
                failed += 1
                skip.add((seller_id, contract_id))
            else:
                invoices += issued
                contracts += 1


def _bill_one(database: Database, clock: Clock, seller_id: str, contract_id: str) -> int | None:
    """Bill one contract on its own: the number of invoices issued, or None when its
    billing failed (logged; the next run retries it). The one place where a single
    contract's billing is run, its failure recorded (`billing_failures.attempt`) and
    kept from the others."""
    try:
        with billing_failures.attempt(database, clock, seller_id, contract_id):
            return len(bill_due(database, clock, seller_id, contract_id))
    except Exception:  # logged, and recorded if the contract's own; not the others'
        return None


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
    """Contracts left to be billed one by one, in due order (at most the first is
    billed before them by the batch: its regular invoices, when a final one follows)."""


def _bill_batch(work: UnitOfWork, clock: Clock, contract_ids: list[str]) -> _Batch:
    """Issue the regular invoices of the leading contracts of `contract_ids` (due order)
    in this transaction, set-based; the rest are left to be billed one by one.

    The batch ends before the first contract that owes only a final invoice, and after
    the first that owes one after its regular ones, so that a single run numbers its
    invoices in due order exactly as `bill_due` one by one would. Contracts another run
    holds (PostgreSQL) are left out of the batch."""
    now = clock.now()
    due = work.due_contracts
    bounds = _Boundaries()
    chosen, rest = _choose(due.lock(contract_ids), contract_ids, now, bounds)
    if not chosen:
        return _Batch((), 0, tuple(rest))
    windows, moved = _windows(chosen, bounds)
    issued = issue(work, now, rate(work, windows))
    due.save_billed_periods(moved)
    done = tuple(c.id for c, _ in chosen if c.id not in rest)
    return _Batch(done, len(issued), tuple(rest))


def _windows(
    chosen: list[tuple[Contract, int]], bounds: _Boundaries
) -> tuple[list[InvoiceWindow], list[tuple[str, int, datetime, datetime]]]:
    """The regular invoices of the chosen contracts, each contract's periods in turn;
    and each contract's billing state after them. A contract's first period of the
    batch takes all its unbilled usage due by its end (older entries are late); each
    later one, what is due after the period before it."""
    windows: list[InvoiceWindow] = []
    moved: list[tuple[str, int, datetime, datetime]] = []
    for first, count in chosen:
        contract = first
        for k in range(count):
            if k:
                contract = contract.advanced()
            start, end = bounds(contract, 0), bounds(contract, 1)
            windows.append(regular_window(contract, start, end, after=start if k else None))
        # The state after the last period, by index: no contract object is needed for it.
        billed = first.billed_periods + count
        moved.append((first.id, billed, bounds.at(first, billed), bounds.at(first, billed + 1)))
    return windows, moved


def _choose(
    locked: dict[str, LockedContract],
    contract_ids: list[str],
    now: datetime,
    bounds: _Boundaries,
) -> tuple[list[tuple[Contract, int]], list[str]]:
    """(contract, regular periods due) for the batch, and the contracts left to be
    billed one by one, both in due order (see `_bill_batch`)."""
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
        count = _regular_due(contract, now, bounds)
        if count == 0:
            if not contract.closed and _in_final_period(contract, bounds):
                rest.append(contract_id)  # only a final invoice is due: bill_due issues it
                ended = True
            continue  # billed meanwhile by another run: nothing left
        chosen.append((contract, count))
        # The contract after its regular invoices is in its final period, and it ended.
        ahead = contract.billed_periods + count
        if (
            contract.end_date is not None
            and contract.end_date <= bounds.at(contract, ahead + 1)
            and now >= contract.end_date
        ):
            rest.append(contract_id)  # its final invoice follows its regular ones
            ended = True
    return chosen, rest


def _regular_due(contract: Contract, now: datetime, bounds: _Boundaries) -> int:
    """How many regular invoices the contract owes at `now`: periods that ended, up to
    its final period (counted by index, as `contract.advanced()` would step)."""
    if contract.closed:
        return 0
    count = 0
    index = contract.billed_periods
    end = contract.end_date
    while True:
        following = bounds.at(contract, index + 1)
        if (end is not None and end <= following) or now < following:
            return count
        index += 1
        count += 1


class _Boundaries:
    """`bounds(contract, k)`: the contract's billing boundary `billed_periods + k`
    (0: `last_billing_date`, 1: `next_billing_date`), computed once per anchor, period
    and index: a batch's contracts mostly share them, and each costs a `relativedelta`."""

    def __init__(self) -> None:
        self._seen: dict[tuple[datetime, BillingPeriod, int], datetime] = {}

    def __call__(self, contract: Contract, k: int) -> datetime:
        return self.at(contract, contract.billed_periods + k)

    def at(self, contract: Contract, index: int) -> datetime:
        """The contract's billing boundary `index` (its period `index` starts there)."""
        key = (contract.start_date, contract.billing_period, index)
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
        billed_periods=row.billed_periods,
        billing_period=period,
        start_date=row.start_date,
        end_date=row.end_date,
        final_invoice_id=row.final_invoice_id,
        sold_terms=row.sold_terms,
    )
