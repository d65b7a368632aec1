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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from arrears import metrics
from arrears.domain.contracts import Contract
from arrears.domain.discounts import discount_lines
from arrears.domain.errors import NotFound
from arrears.domain.fees import (
    commitment_line,
    prorated_fee_line,
    rated_item_line,
    recurring_fee_line,
)
from arrears.domain.ids import new_id
from arrears.domain.invoices import (
    Invoice,
    InvoiceDraft,
    InvoiceKind,
    InvoiceLine,
    draft_invoice,
)
from arrears.domain.phases import (
    Phase,
    PhaseWindow,
    phase_commitment,
    phase_components,
    phase_fee_lines,
    phase_of,
    phase_windows,
)
from arrears.domain.profiles import due_date, payment_terms_days
from arrears.domain.quantities import quantity_lines
from arrears.domain.rating import (
    InvoiceUsage,
    PeriodCharges,
    rate_totals,
)
from arrears.services import webhooks
from arrears.services.invoice_terms import InvoiceTerms, read_terms
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

_MICROSECOND: Final = timedelta(microseconds=1)
_NO_USAGE: Final = InvoiceUsage()


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
    terms = read_terms(work, [w.contract for w in windows])
    opening = [w.contract for w in windows if w.opening]
    items = invoices.unbilled_rated_items([c.id for c in opening])
    earlier = invoices.period_lines({c.id: c.billed_periods for c in opening})
    bills = invoices.link_unbilled_usage if link else invoices.sum_unbilled_usage
    usage = _usage_by_phase(bills, windows, terms)
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
        parts = list(own_usage.values())
        usage_ids = (
            parts[0].usage_ids
            if len(parts) == 1
            else [id_ for part in parts for id_ in part.usage_ids]
        )
        rated.append(RatedInvoice(window, draft, usage_ids, [i.id for i in own_items]))
    return rated


def _usage_by_phase(
    bills: Callable[[Sequence[UsageWindow]], dict[str, InvoiceUsage]],
    windows: Sequence[InvoiceWindow],
    terms: dict[str, InvoiceTerms],
) -> dict[str, dict[datetime, InvoiceUsage]]:
    """What each window bills, by the `From` of the phase whose variant rates it.

    A window whose period no plan change cuts before its cutoff bills all its usage
    in one phase, the one its period starts in: those windows are linked and summed by
    one statement for the batch. A window cut by a change (rare: its contract changed
    plans in this very period) is summed once per phase, the usage due before the
    change apart from the rest; late usage goes with the period's first phase."""
    whole: list[InvoiceWindow] = []
    usage: dict[str, dict[datetime, InvoiceUsage]] = {}
    for window in windows:
        own = terms[window.contract.id]
        cuts = _phase_cuts(own.phases, window) if own.phased else []
        if not cuts:
            whole.append(window)
            continue
        parts: dict[datetime, InvoiceUsage] = {}
        after = window.after
        for cut, phase_starts in cuts:
            upper = min(window.cutoff, cut - _MICROSECOND) if cut else window.cutoff
            part = replace(window.usage_window(), after=after, cutoff=upper)
            parts[phase_starts] = bills([part])[window.invoice_id]
            after = upper
        usage[window.invoice_id] = parts
    summed = bills([w.usage_window() for w in whole])
    for window in whole:
        phases = terms[window.contract.id].phases
        starts = (
            phase_of(phases, window.period_start).starts if len(phases) > 1 else phases[0].starts
        )
        usage[window.invoice_id] = {starts: summed[window.invoice_id]}
    return usage


def _phase_cuts(
    phases: Sequence[Phase], window: InvoiceWindow
) -> list[tuple[datetime | None, datetime]]:
    """The sub-windows of a window that plan changes cut, as (the next change, or None
    for the last, and the `From` of the phase the sub-window bills); empty when no
    change falls inside its period at or before its cutoff."""
    inside = [
        p
        for p in phases
        if window.period_start < p.starts < window.period_end and p.starts <= window.cutoff
    ]
    if not inside:
        return []
    first = phase_of(phases, window.period_start).starts
    starts = [first, *(p.starts for p in inside)]
    nexts: list[datetime | None] = [*(p.starts for p in inside), None]
    return list(zip(nexts, starts, strict=True))


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
    webhooks.invoices_finalized(work, now, issued)
    for one in rated:
        invoices.mark_rated_items_billed(one.window.invoice_id, one.item_ids)
    return issued


def rate_window(
    window: InvoiceWindow,
    terms: InvoiceTerms,
    *,
    usage: dict[datetime, InvoiceUsage],
    items: Sequence[PendingRatedItem],
    earlier: Sequence[InvoiceLine],
) -> InvoiceDraft:
    """The window's invoice for `usage` (by the `From` of the phase that rates it),
    `items`, its fee, and on a closing (regular or final) invoice its quantities and
    commitment; then its discounts; after the period's `earlier` invoice lines. Pure:
    only domain functions over what was read (docs/billing.md, SPEC §11)."""
    start = window.period_start
    closing = window.kind is not InvoiceKind.INTERIM
    usage_lines = _usage_lines(window, terms, usage, earlier, closing=closing)
    item_lines = tuple(
        rated_item_line(item.description, item.quantity, item.price_per_unit, terms.currency)
        for item in items
    )
    lines = [*usage_lines, *_fee_lines(window, terms)]
    if closing and terms.quantities:
        lines.extend(_quantity_lines(window, terms))
    lines.extend(item_lines)
    if closing and terms.committed:
        lines.extend(_commitment_lines(window, terms, (*earlier, *lines)))
    if terms.discounts:
        lines.extend(_discount_lines(window, terms, earlier, lines))
    period_end = window.cutoff if window.kind is InvoiceKind.FINAL else window.period_end
    return draft_invoice(
        kind=window.kind,
        currency=terms.currency,
        period_start=start,
        period_end=max(period_end, start),
        lines=lines,
        tax_rate=terms.tax_rate(phase_of(terms.phases, start)) if terms.phased else terms.rate,
    )


def _usage_lines(
    window: InvoiceWindow,
    terms: InvoiceTerms,
    usage: dict[datetime, InvoiceUsage],
    earlier: Sequence[InvoiceLine],
    *,
    closing: bool,
) -> list[InvoiceLine]:
    """`rate_totals` once per phase that covers part of the period or bills usage, with
    its variant's free quotas prorated to its part (whole for a contract of one phase:
    a final invoice's free quota is the whole period's, SPEC §7) and the lines its
    phase made earlier in the period; no tier position carries across phases."""
    phases = terms.phases
    if not terms.phased:  # the common case: one variant for the whole period
        return list(
            rate_totals(
                components=phases[0].plan_variant.metered_components,
                currency=terms.currency,
                period_start=window.period_start,
                earlier=PeriodCharges.of_lines(earlier),
                usage=usage.get(phases[0].starts, _NO_USAGE),
                descriptions=terms.descriptions,
                closing=closing,
            )
        )
    covering = {
        w.phase.starts: w for w in phase_windows(phases, window.period_start, window.period_end)
    }
    first = phases[0].starts
    lines: list[InvoiceLine] = []
    for phase in phases:
        part = covering.get(phase.starts)
        if part is None and phase.starts not in usage:
            continue
        components = (
            phase_components(part)
            if part is not None and not part.whole
            else phase.plan_variant.metered_components
        )
        rated = rate_totals(
            components=components,
            currency=terms.currency,
            period_start=window.period_start,
            earlier=PeriodCharges.of_lines(
                x for x in earlier if (x.phase_from or first) == phase.starts
            ),
            usage=usage.get(phase.starts, _NO_USAGE),
            descriptions=terms.descriptions,
            closing=closing and part is not None,
        )
        if terms.phased:
            rated = tuple(replace(line, phase_from=phase.starts) for line in rated)
        lines.extend(rated)
    return lines


def _billed_windows(window: InvoiceWindow, terms: InvoiceTerms) -> tuple[PhaseWindow, ...]:
    """The parts of the window's period each phase covers, cut at a final invoice's end."""
    ended = window.contract.end_date if window.kind is InvoiceKind.FINAL else None
    return phase_windows(terms.phases, window.period_start, window.period_end, end_date=ended)


def _quantity_lines(window: InvoiceWindow, terms: InvoiceTerms) -> tuple[InvoiceLine, ...]:
    if not terms.quantities:
        return ()
    ended = window.contract.end_date if window.kind is InvoiceKind.FINAL else None
    if ended is not None and ended <= window.period_start:
        return ()
    return quantity_lines(
        subscriptions=terms.quantities,
        phases=terms.phases,
        period_start=window.period_start,
        period_end=window.period_end,
        currency=terms.currency,
        end_date=ended,
        descriptions=terms.descriptions,
    )


def _commitment_lines(
    window: InvoiceWindow, terms: InvoiceTerms, lines: Sequence[InvoiceLine]
) -> tuple[InvoiceLine, ...]:
    """The closing invoice's `Commitment` line, if the period falls short of it."""
    start, end = window.period_start, window.period_end
    ended = window.contract.end_date if window.kind is InvoiceKind.FINAL else None
    if ended is not None and ended <= start:
        return ()
    if terms.phased:
        # Each variant's commitment prorated to its part, already cut at the end.
        commitment = phase_commitment(_billed_windows(window, terms))
        ended = None
    else:
        commitment = terms.variant.minimum_commitment
    if commitment is None:
        return ()
    line = commitment_line(commitment, lines, start, end, terms.currency, end_date=ended)
    return () if line is None else (line,)


def _discount_lines(
    window: InvoiceWindow,
    terms: InvoiceTerms,
    earlier: Sequence[InvoiceLine],
    lines: Sequence[InvoiceLine],
) -> tuple[InvoiceLine, ...]:
    """The `Discount` lines of the discounts the window's period has (its index is the
    contract's billed periods before the invoice)."""
    index = window.contract.billed_periods
    current = [s.discount for s in terms.discounts if s.applies_in(index)]
    if not current:
        return ()
    return discount_lines(current, earlier, lines, terms.currency)


def _fee_lines(window: InvoiceWindow, terms: InvoiceTerms) -> tuple[InvoiceLine, ...]:
    start, end = window.period_start, window.period_end
    if window.kind is InvoiceKind.INTERIM:
        return ()
    ended = window.contract.end_date
    if window.kind is InvoiceKind.FINAL and (ended is None or ended <= start):
        return ()  # ended on its last billing date: no part of a period is left to charge
    if terms.phased:
        return phase_fee_lines(_billed_windows(window, terms), terms.currency)
    fee = terms.variant.recurring_fee
    if fee is None:
        return ()
    if window.kind is InvoiceKind.REGULAR or ended is None:
        return (recurring_fee_line(fee, start, end, terms.currency),)
    return (prorated_fee_line(fee, start, end, ended, terms.currency),)
