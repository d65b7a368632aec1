"""The one road every invoice takes (SPEC §7), whatever asks for it: the scheduler's
batch of a seller's due contracts, one contract's regular or final invoice, an interim
invoice, a preview.

1. A window says what one invoice bills (`InvoiceWindow`): its contract as it stands
   before the invoice, its kind, its period, the usage due up to its cutoff.
2. `rate` reads, for all windows at once, the contracts' terms, their pending rated
   items and their periods' earlier invoice lines; has the database link each window's
   unbilled usage to the window's invoice and sum it; and rates each invoice (pure
   domain functions). A preview sums without linking.
3. `issue` numbers the rated invoices from one reservation, stores them and marks their
   rated items billed.

A batch of one is the per-contract case: the same statements, one row each. Callers
hold the contracts' rows (or SQLite's write lock) and own the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from arrears import metrics
from arrears.domain.catalog import PlanVariant
from arrears.domain.contracts import Contract
from arrears.domain.errors import NotFound
from arrears.domain.fees import prorated_fee_line, rated_item_line, recurring_fee_line
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
from arrears.domain.profiles import due_date, payment_terms_days
from arrears.domain.rating import (
    InvoiceUsage,
    PeriodCharges,
    rate_totals,
)
from arrears.store.catalog import CatalogRepository
from arrears.store.invoices import PendingRatedItem, UsageWindow
from arrears.store.unit_of_work import UnitOfWork

__all__ = [
    "InvoiceTerms",
    "InvoiceWindow",
    "RatedInvoice",
    "final_window",
    "interim_window",
    "issue",
    "rate",
    "regular_window",
]


@dataclass(frozen=True, slots=True)
class InvoiceWindow:
    """One invoice to make: what it bills and how it is rated."""

    contract: Contract
    """The contract as it stands before this invoice (its billed periods so far)."""
    kind: InvoiceKind
    period_start: datetime
    period_end: datetime
    cutoff: datetime
    """Usage due at or before it is billed; entries due before `period_start` are late."""
    after: datetime | None = None
    """Usage due at or before it belongs to an earlier invoice of the same batch. None
    for a contract's first invoice of the batch: it bills all unbilled usage, the
    pending rated items, and is rated after its period's earlier invoices."""
    invoice_id: str = field(default_factory=new_id)

    @property
    def opening(self) -> bool:
        return self.after is None

    def usage_window(self) -> UsageWindow:
        return UsageWindow(
            self.invoice_id, self.contract.id, self.after, self.cutoff, self.period_start
        )


def regular_window(
    contract: Contract, start: datetime, end: datetime, *, after: datetime | None = None
) -> InvoiceWindow:
    """The regular invoice of the period from `start` to `end` (the contract's billing
    dates, which the batch computes once for many contracts)."""
    return InvoiceWindow(contract, InvoiceKind.REGULAR, start, end, cutoff=end, after=after)


def final_window(contract: Contract, cutoff: datetime) -> InvoiceWindow:
    """The final invoice of a contract in its final period: usage due by `cutoff` (its
    end date, or now for a preview) and the fee prorated to the end."""
    start, end = contract.last_billing_date, contract.next_billing_date
    return InvoiceWindow(contract, InvoiceKind.FINAL, start, end, cutoff=cutoff)


def interim_window(contract: Contract, now: datetime) -> InvoiceWindow:
    """An interim invoice: usage due by now, pending rated items, no fee."""
    start, end = contract.last_billing_date, contract.next_billing_date
    return InvoiceWindow(contract, InvoiceKind.INTERIM, start, end, cutoff=now)


@dataclass(frozen=True, slots=True)
class InvoiceTerms:
    """What rating needs of a contract beyond its window: read once per batch."""

    variant: PlanVariant
    currency: Currency
    tax_rate: Decimal
    descriptions: dict[str, str]
    """The name of each metered component, for its lines."""


@dataclass(frozen=True, slots=True)
class RatedInvoice:
    """An invoice rated, before it is numbered and stored."""

    window: InvoiceWindow
    draft: InvoiceDraft
    usage_ids: list[int]
    item_ids: list[str]

    @property
    def bills_nothing(self) -> bool:
        return not (self.usage_ids or self.item_ids)


def rate(
    work: UnitOfWork, windows: Sequence[InvoiceWindow], *, link: bool = True
) -> list[RatedInvoice]:
    """Each window's invoice, rated, in the order given; its usage linked to it unless
    `link` is False (a preview, which links and saves nothing)."""
    invoices = work.invoices
    terms = _terms(work.catalog, [w.contract for w in windows])
    opening = [w.contract for w in windows if w.opening]
    items = invoices.unbilled_rated_items([c.id for c in opening])
    earlier = invoices.period_lines({c.id: c.billed_periods for c in opening})
    bills = invoices.link_unbilled_usage if link else invoices.sum_unbilled_usage
    usage = bills([w.usage_window() for w in windows])
    rated: list[RatedInvoice] = []
    for window in windows:
        contract_id = window.contract.id
        own_items = items[contract_id] if window.opening else []
        own_usage = usage[window.invoice_id]
        draft = rate_window(
            window,
            terms[contract_id],
            usage=own_usage,
            items=own_items,
            earlier=earlier[contract_id] if window.opening else [],
        )
        rated.append(RatedInvoice(window, draft, own_usage.usage_ids, [i.id for i in own_items]))
    return rated


def issue(work: UnitOfWork, now: datetime, rated: Sequence[RatedInvoice]) -> list[Invoice]:
    """Number the rated invoices in order from one reservation of the seller's sequence,
    date them `now`, store them and mark their rated items billed."""
    if not rated:
        return []
    seller = work.sellers.get(work.seller_id)
    if seller is None:  # pragma: no cover (a contract's seller always exists)
        raise NotFound(f"There is no seller {work.seller_id}.")
    invoices = work.invoices
    numbers = invoices.reserve_invoice_numbers(seller.invoice_prefix, now.year, len(rated))
    # The parties as they are now, copied onto the invoices: two queries per batch.
    profiles = work.seller_profiles
    seller_party, seller_terms = profiles.seller_party()
    customers = profiles.customer_parties({one.window.contract.customer_id for one in rated})
    issued = []
    for one, number in zip(rated, numbers, strict=True):
        customer, customer_terms = customers[one.window.contract.customer_id]
        issued.append(
            Invoice(
                id=one.window.invoice_id,
                invoice_number=number,
                contract_id=one.window.contract.id,
                customer_id=one.window.contract.customer_id,
                document_date=now,
                period_index=one.window.contract.billed_periods,
                draft=one.draft,
                due_date=due_date(now, payment_terms_days(customer_terms, seller_terms)),
                seller=seller_party,
                customer=customer,
            )
        )
    invoices.add_invoices(issued)
    metrics.invoices_issued(work.session, issued)
    for one in rated:
        invoices.mark_rated_items_billed(one.window.invoice_id, one.item_ids)
    return issued


def rate_window(
    window: InvoiceWindow,
    terms: InvoiceTerms,
    *,
    usage: InvoiceUsage,
    items: Sequence[PendingRatedItem],
    earlier: Sequence[InvoiceLine],
) -> InvoiceDraft:
    """The window's invoice for `usage`, `items` and its fee, after the period's `earlier`
    invoice lines. Pure: only domain functions over what was read."""
    start = window.period_start
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
    period_end = window.cutoff if window.kind is InvoiceKind.FINAL else window.period_end
    return draft_invoice(
        kind=window.kind,
        currency=terms.currency,
        period_start=start,
        period_end=max(period_end, start),
        lines=(*usage_lines, *_fee_lines(window, terms), *item_lines),
        tax_rate=terms.tax_rate,
    )


def _fee_lines(window: InvoiceWindow, terms: InvoiceTerms) -> tuple[InvoiceLine, ...]:
    fee = terms.variant.recurring_fee
    start, end = window.period_start, window.period_end
    if fee is None or window.kind is InvoiceKind.INTERIM:
        return ()
    if window.kind is InvoiceKind.REGULAR:
        return (recurring_fee_line(fee, start, end, terms.currency),)
    ended = window.contract.end_date
    if ended is None or ended <= start:
        return ()  # ended on its last billing date: no part of a period is left to charge
    return (prorated_fee_line(fee, start, end, ended, terms.currency),)


def _terms(catalog: CatalogRepository, contracts: list[Contract]) -> dict[str, InvoiceTerms]:
    """Each contract's terms by id, with one read per plan variant and one for all the
    customers' tax rates."""
    variants: dict[str, PlanVariant] = {}
    names: dict[str, dict[str, str]] = {}
    for contract in contracts:
        if contract.plan_variant_id not in variants:
            variant = catalog.plan_variant(contract.plan_variant_id)
            variants[variant.id] = variant
            names[variant.id] = catalog.component_names(
                m.component_id for m in variant.metered_components
            )
    tax_rates = catalog.customer_tax_rates(contract.customer_id for contract in contracts)
    terms: dict[str, InvoiceTerms] = {}
    for contract in contracts:
        variant = variants[contract.plan_variant_id]
        terms[contract.id] = InvoiceTerms(
            variant=variant,
            currency=currency(variant.currency),
            tax_rate=effective_tax_rate(tax_rates[contract.customer_id], variant.tax_rate),
            descriptions=names[variant.id],
        )
    return terms
