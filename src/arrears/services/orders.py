"""Orders (SPEC §7): metered usages and one-off rated items added to a contract at
once, all or nothing, optionally billed at once on an interim invoice."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from arrears.domain import wire
from arrears.domain.clock import Clock
from arrears.domain.errors import Conflict, Invalid, NotFound
from arrears.domain.ids import new_id
from arrears.domain.invoices import Invoice
from arrears.domain.usage import UsageCandidate, UsageEntry, check_usage, duplicate_keys
from arrears.services import submissions
from arrears.services.billing_failures import on_request
from arrears.services.contract_billing import after_billing_due, catch_up, interim_invoice
from arrears.services.contract_plans import NOTHING_MORE, CartTerms, sell_cart_terms
from arrears.store.unit_of_work import Database, UnitOfWork

__all__ = ["Order", "OrderedUsage", "PlacedOrder", "RatedItem", "place", "place_order", "rehearse"]


@dataclass(frozen=True, slots=True)
class OrderedUsage:
    component_id: str
    quantity: Decimal
    due_date: datetime | None = None
    """Defaults to the time of the order."""
    key: str | None = None


@dataclass(frozen=True, slots=True)
class RatedItem:
    description: str
    quantity: Decimal
    price_per_unit: Decimal


@dataclass(frozen=True, slots=True)
class PlacedOrder:
    id: str
    contract_id: str
    created_at: datetime
    usage: list[UsageEntry]
    """The order's usage entries: new ones, and stored ones its keys named again."""
    invoice: Invoice | None


@dataclass(frozen=True, slots=True)
class Order:
    """What a request orders: `place_order`'s arguments."""

    contract_id: str
    usages: list[OrderedUsage]
    rated_items: list[RatedItem]
    trigger_interim_billing: bool
    cart_terms: CartTerms = NOTHING_MORE
    """The plan change, quantities and discounts it sells (SPEC §11)."""


def place(database: Database, clock: Clock, seller_id: str, order: Order) -> PlacedOrder:
    """The order, placed and committed; one that bills interim is placed after any
    invoice the contract is due (`after_billing_due`), and a failure of the contract's
    own is recorded (`billing_failures.on_request`)."""
    if not order.trigger_interim_billing:
        with database.unit_of_work(seller_id) as work:
            return _placed(work, clock, order, trigger=False)
    with on_request(database, clock, seller_id, order.contract_id):
        return after_billing_due(
            database,
            clock,
            seller_id,
            order.contract_id,
            lambda work: _placed(work, clock, order, trigger=True),
        )


def rehearse(
    database: Database, clock: Clock, seller_id: str, order: Order
) -> tuple[PlacedOrder, str]:
    """The order placed and billed interim after what the contract is due, in a
    transaction rolled back at the end; and the contract's customer."""
    with (
        on_request(database, clock, seller_id, order.contract_id, bills=False),
        database.unit_of_work(seller_id, "rehearsal") as work,
    ):
        with suppress(NotFound):  # place_order reports the unknown ContractId as a bad field
            catch_up(work, clock, order.contract_id)
        placed = _placed(work, clock, order, trigger=True)
        return placed, work.contracts.get(order.contract_id).customer_id


def _placed(work: UnitOfWork, clock: Clock, order: Order, *, trigger: bool) -> PlacedOrder:
    return place_order(
        work,
        clock,
        contract_id=order.contract_id,
        usages=order.usages,
        rated_items=order.rated_items,
        trigger_interim_billing=trigger,
        cart_terms=order.cart_terms,
    )


def place_order(
    work: UnitOfWork,
    clock: Clock,
    *,
    contract_id: str,
    usages: list[OrderedUsage],
    rated_items: list[RatedItem],
    trigger_interim_billing: bool,
    cart_terms: CartTerms = NOTHING_MORE,
) -> PlacedOrder:
    """Add the order's usage and rated items, sell its plan change, quantities and
    discounts (`contract_plans.sell_cart_terms`), then bill interim if asked.

    Every usage meets the rules of SPEC §5 (`Invalid` names each bad one as
    `Cart.MeteredUsages[i].<field>`); a key already stored with other values is a
    `Conflict`, with the same values it names the stored entry. An unknown contract is
    `Invalid` (`ContractId`), a closed one a `Conflict`. Raises `BillingDue` (from the
    interim invoice) while a regular invoice is due: bill it, then place the order;
    `ApplyCarefully` when a concurrent order stored one of its keys: place it again
    (`submissions.settled`)."""
    usage = work.usage
    now = clock.now()
    candidates = _checked_usage(work, contract_id, usages, now=now)
    if not cart_terms.empty:
        sell_cart_terms(work, work.contracts.get(contract_id), cart_terms, now=now)
    new, repeated = submissions.split_by_key(usage, candidates)
    order_id = new_id()
    orders = work.orders
    orders.add_order(order_id, contract_id, now)
    submissions.insert_new(usage, new, submission_id=order_id, transferred_at=now)
    orders.add_rated_items(
        order_id,
        contract_id,
        [(i.description, i.quantity, i.price_per_unit) for i in rated_items],
        now,
    )
    invoice = None
    if trigger_interim_billing:
        invoice = interim_invoice(work, clock, contract_id)
        if invoice is not None:
            orders.set_order_invoice(order_id, invoice.id)
    # Read after billing, so that each entry shows the invoice that billed it.
    entries = usage.entries_of_submission(order_id) + [
        usage.entry(contract_id, e.id) for e in repeated
    ]
    return PlacedOrder(order_id, contract_id, now, entries, invoice)


def _checked_usage(
    work: UnitOfWork,
    contract_id: str,
    usages: list[OrderedUsage],
    *,
    now: datetime,
) -> list[UsageCandidate]:
    """The order's usages on its contract, each meeting the rules (or `Invalid`)."""
    try:
        # Lock the contract before writing rows that refer to it: their foreign keys
        # take a share lock on it, which would deadlock with a concurrent order's
        # interim invoice taking the same lock for update.
        contract = work.contracts.get(contract_id, for_update=True)
    except NotFound:
        raise Invalid.one(
            wire.CONTRACT_ID, "not_found", f"There is no contract {contract_id}."
        ) from None
    if contract.closed:
        raise Conflict(f"Contract {contract_id} has its final invoice; it takes no more usage.")
    terms = work.usage.contract_terms([contract_id])[contract_id]
    candidates = [
        UsageCandidate(
            contract_id=contract_id,
            component_id=u.component_id,
            quantity=u.quantity,
            due_date=u.due_date or now,
            key=u.key or None,
        )
        for u in usages
    ]
    errors = [e for i, c in enumerate(candidates) for e in check_usage(c, terms, index=i)]
    errors += duplicate_keys((i, c.contract_id, c.key) for i, c in enumerate(candidates) if c.key)
    if errors:
        raise Invalid([wire.usage_error(error, wire.ORDER_USAGES) for error in errors])
    return candidates
