"""Rating: turning usage entries and fees into invoice lines (SPEC §7). Pure: no I/O.

Which usage an invoice takes: every unbilled entry due at or before a cutoff
(`select_for_invoice`): `NextBillingDate` for a regular invoice (so usage due exactly
at `NextBillingDate` belongs to the period ending then), the clock's now for an
interim invoice, `EndDate` for a final one. Of those, usage due before
`LastBillingDate` is late (`split_late`).

How `rate_usage` rates them, and the choices made where SPEC §7 is silent:

- **Current-period usage** of a component is one line per invoice. All invoices of a
  period share the free quota and the tier position: with `q0` the quantity earlier
  invoices of the period billed and `q1` that plus the quantity billed now, the line's
  amount is `round(price(max(0, q1 - free))) - Σ amounts already charged` for the
  component in the period. Because the earlier amounts are the rounded ones, the
  rounded amounts of all invoices of a period add up to exactly
  `round(price(max(0, total - free)))`, however many interim invoices there are: no
  minor unit drifts. A line may be negative when a volume tier re-prices the period.
- **Tiers of an interim-shared line** show the exact, unrounded difference between the
  breakdown of `price(q1 - free)` and that of `price(q0 - free)`: for graduated
  pricing the units added to each tier (a tier is never restarted); for per-unit,
  volume and package pricing the change in units (packages) at one price, or, when
  a volume tier is crossed, the earlier units taken back at the old price (a negative
  part) and all units charged at the new one. The parts add up exactly to
  `price(q1 - free) - price(q0 - free)`; the line's `amount` differs from that sum by
  less than one minor unit, because `amount` is the difference of rounded totals.
- **Late usage** (due before `LastBillingDate`) of a component is one line per
  invoice, marked late, rated on the summed quantity of the late entries on that
  invoice and with no free quota: `price(Σ late quantity)`, even when the entries
  come from several past periods. It is the quantity the customer sees on the line,
  it does not depend on how a seller split its reports, and re-rating a closed
  period's tiers would change what that period's invoice said.
- **Override usage** (an entry whose `ProductOverride` has a `PricePerUnit`) is one
  line per entry at `PricePerUnit x Quantity`, outside tiers and free quota, and does
  not count toward the period's quantity. Its text is the override's `Name` and
  `Description` joined by " - ", or the component's text when both are empty. An
  override without a price changes nothing: that entry is rated as ordinary usage.
- **Free quota on a final invoice** is the whole period's: SPEC §7 prorates only the
  recurring fee.
- **Tier flat fees** (SPEC §11) are part of `price`, so the running total above shares
  them like tiers: a flat fee is charged by the invoice whose quantity first reaches
  its tier. Since a quantity of 0 reaches the first tier, a period's closing invoice
  (`closing`: the regular or final one) charges a first tier's flat fee that no
  earlier invoice did, also without usage. Late usage pays no flat fee: the period it
  was due in charged them when it closed.
- **Spend cap** (`MaximumAmount`): the running total is capped before it is rounded,
  `round(min(cap, price(...))) - charged`, so the period is charged at most the cap
  over all its invoices; a late line is capped on its own. A capped line's tiers show
  the uncapped breakdown, so its amount is below their sum.

Rating needs only each component's summed quantity (current and late apart) and the
override entries one by one (`InvoiceUsage`): `rate_usage` sums entries in memory
(`sum_usage`), billing has the database sum them (`rate_totals`). Both give the same
lines.

Every line's amount is rounded half-up to the currency's minor unit with
`money.round_amount`, once, when the line is made; everything before is exact. The
lines that bill no usage (recurring fee, rated items) are made by `fees`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, localcontext
from types import MappingProxyType
from typing import Final

from arrears.domain.catalog import MeteredComponent
from arrears.domain.invoices import InvoiceLine, LineKind
from arrears.domain.money import Currency, round_amount
from arrears.domain.pricing import (
    Graduated,
    Pricing,
    TierCharge,
    line_unit_price,
    price,
    without_flat_fees,
)
from arrears.domain.usage import UsageEntry

__all__ = [
    "ComponentCharges",
    "InvoiceUsage",
    "PeriodCharges",
    "UsageTotal",
    "rate_totals",
    "rate_usage",
    "select_for_invoice",
    "split_late",
    "sum_usage",
]

# Quantities and prices are bounded (money.MAX_INTEGER_DIGITS, 6 places), so every
# sum, difference and product here is exact at this precision; Inexact would be a bug.
_EXACT: Final = Context(prec=100, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact])
_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class ComponentCharges:
    """What earlier invoices of a period billed for one component's current-period,
    plan-priced usage: the `quantity` (before free quota) and the rounded amounts
    `charged`, summed."""

    quantity: Decimal = _ZERO
    charged: Decimal = _ZERO
    billed: bool = False
    """Whether an earlier invoice of the period has a line for the component: only
    then were the flat fees of `quantity`'s tiers already charged."""


@dataclass(frozen=True, slots=True)
class PeriodCharges:
    """What the earlier invoices of one billing period charged, per component id.

    Build it with `PeriodCharges.of_lines(lines of the period's earlier invoices)`;
    only lines that `count_toward_period` matter, so whole invoices may be passed.
    """

    components: Mapping[str, ComponentCharges] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of_lines(cls, lines: Iterable[InvoiceLine]) -> PeriodCharges:
        """The charges of `lines`, the lines of earlier invoices of one period."""
        return cls().after(lines)

    def after(self, lines: Iterable[InvoiceLine]) -> PeriodCharges:
        """These charges with `lines` (a further invoice of the period) added; exact."""
        totals = dict(self.components)
        with localcontext(_EXACT):
            for line in lines:
                if not line.counts_toward_period or line.component_id is None:
                    continue
                before = totals.get(line.component_id, ComponentCharges())
                totals[line.component_id] = ComponentCharges(
                    quantity=before.quantity + line.quantity,
                    charged=before.charged + line.amount,
                    billed=True,
                )
        return PeriodCharges(MappingProxyType(totals))

    def for_component(self, component_id: str) -> ComponentCharges:
        """The charges for `component_id`; zero quantity and amount when none."""
        return self.components.get(component_id, ComponentCharges())


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """The plan-priced entries of one component on one invoice, summed: its current-period
    entries (`late` False) or its late ones. `usage_ids` ascending."""

    component_id: str
    late: bool
    quantity: Decimal
    usage_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class InvoiceUsage:
    """The usage an invoice bills, as rating needs it: plan-priced entries summed per
    component and lateness, and the entries with an override price one by one (each is
    a line of its own). Billing sums in the database (a few rows per contract instead
    of every entry); `sum_usage` does it for entries in memory."""

    totals: tuple[UsageTotal, ...] = ()
    overrides: tuple[UsageEntry, ...] = ()

    @property
    def usage_ids(self) -> list[int]:
        """Every entry billed, totals' first."""
        ids = [id_ for total in self.totals for id_ in total.usage_ids]
        ids.extend(entry.id for entry in self.overrides)
        return ids


def sum_usage(entries: Iterable[UsageEntry], period_start: datetime) -> InvoiceUsage:
    """`entries` as an invoice of the period starting at `period_start` bills them: the
    override-priced ones alone, the rest summed per component and lateness (due before
    `period_start`). Totals come in the order their components first appear."""
    groups: dict[tuple[str, bool], list[UsageEntry]] = {}
    overrides: list[UsageEntry] = []
    for entry in entries:
        if _override_price(entry) is not None:
            overrides.append(entry)
        else:
            key = (entry.component_id, _is_late(entry, period_start))
            groups.setdefault(key, []).append(entry)
    totals = tuple(
        UsageTotal(component_id, late, _total(group), _ids(group))
        for (component_id, late), group in groups.items()
    )
    return InvoiceUsage(totals, tuple(overrides))


def select_for_invoice(entries: Iterable[UsageEntry], cutoff: datetime) -> tuple[UsageEntry, ...]:
    """The unbilled entries of `entries` due at or before `cutoff` (inclusive, SPEC §7),
    ordered by due date, then id.

    The cutoff is `NextBillingDate` for a regular invoice, now for an interim one and
    `EndDate` for a final one. Entries with an `invoice_id` are never taken again.
    """
    chosen = [e for e in entries if e.invoice_id is None and e.due_date <= cutoff]
    return tuple(sorted(chosen, key=lambda e: (e.due_date, e.id)))


def split_late(
    entries: Iterable[UsageEntry], last_billing_date: datetime
) -> tuple[tuple[UsageEntry, ...], tuple[UsageEntry, ...]]:
    """`(current, late)`: entries due at or after `last_billing_date` belong to the
    current period; entries due before it are late. Order within each is kept."""
    current: list[UsageEntry] = []
    late: list[UsageEntry] = []
    for entry in entries:
        (late if _is_late(entry, last_billing_date) else current).append(entry)
    return tuple(current), tuple(late)


def rate_usage(
    *,
    components: Sequence[MeteredComponent],
    currency: Currency,
    period_start: datetime,
    period_end: datetime,
    earlier: PeriodCharges,
    entries: Iterable[UsageEntry],
    descriptions: Mapping[str, str] | None = None,
    closing: bool = False,
) -> tuple[InvoiceLine, ...]:
    """The usage lines of an invoice of the period `[period_start, period_end]` that
    bills `entries` now, after the period's `earlier` invoices (see the module doc).

    - `components` are the plan variant's metered components; `descriptions` maps a
      component id to its line text (default: the id).
    - Every entry is billed on exactly one returned line (`usage_ids`). Lines come in
      the order of `components`: for each, its current-period line, its late line,
      then its override lines by due date and id. A component without entries now
      gets no line, except on a `closing` invoice (the period's regular or final one)
      when the period still owes it something: a first tier's flat fee that no
      earlier invoice charged (SPEC §11: a quantity of 0 reaches the first tier).
    - Summed over all invoices of a period, a component's current-period amounts are
      exactly `round(price(max(0, total - free_quota)))`, provided `earlier` holds the
      lines this function made for the period's earlier invoices.

    Raises `ValueError` for an entry that is already billed, appears twice, is due
    after `period_end`, or meters a component not in `components`: the caller selects
    entries with `select_for_invoice`, so each of these is a programming error.
    """
    if period_end < period_start:
        raise ValueError(f"a period must not end before it starts: {period_start}")
    chosen = tuple(entries)
    known = {c.component_id for c in components}
    seen: set[int] = set()
    for entry in chosen:
        _check_entry(entry, known, period_end, seen)
    return rate_totals(
        components=components,
        currency=currency,
        period_start=period_start,
        earlier=earlier,
        usage=sum_usage(chosen, period_start),
        descriptions=descriptions,
        closing=closing,
    )


def rate_totals(
    *,
    components: Sequence[MeteredComponent],
    currency: Currency,
    period_start: datetime,
    earlier: PeriodCharges,
    usage: InvoiceUsage,
    descriptions: Mapping[str, str] | None = None,
    closing: bool = False,
) -> tuple[InvoiceLine, ...]:
    """`rate_usage` for usage already summed (`InvoiceUsage`): the same lines, in the
    same order. Raises `ValueError` for a total or override of a component not in
    `components`, or a component's current or late total given twice: programming
    errors of the caller."""
    texts = descriptions or {}
    by_id = {c.component_id: c for c in components}
    current: dict[str, UsageTotal] = {}
    late: dict[str, UsageTotal] = {}
    for total in usage.totals:
        _check_component(total.component_id, by_id)
        group = late if total.late else current
        if total.component_id in group:
            raise ValueError(f"usage of {total.component_id} is summed twice")
        group[total.component_id] = total
    overrides: dict[str, list[UsageEntry]] = {}
    for entry in usage.overrides:
        _check_component(entry.component_id, by_id)
        overrides.setdefault(entry.component_id, []).append(entry)

    lines: list[InvoiceLine] = []
    for component in components:
        cid = component.component_id
        text = texts.get(cid, cid)
        before = earlier.for_component(cid)
        if cid in current:
            lines.append(_current_line(component, text, current[cid], before, currency))
        elif closing:
            # Nothing used now, but the period may still owe a first tier's flat fee.
            nothing = UsageTotal(cid, late=False, quantity=_ZERO, usage_ids=())
            owed = _current_line(component, text, nothing, before, currency)
            if owed.amount or owed.tiers:
                lines.append(owed)
        if cid in late:
            lines.append(_late_line(component, text, late[cid], currency))
        for entry in sorted(overrides.get(cid, ()), key=lambda e: (e.due_date, e.id)):
            lines.append(_override_line(entry, text, period_start, currency))
    return tuple(lines)


# ---------------------------------------------------------------- the three usage lines


def _current_line(
    component: MeteredComponent,
    text: str,
    usage: UsageTotal,
    before: ComponentCharges,
    currency: Currency,
) -> InvoiceLine:
    free = component.free_quota
    with localcontext(_EXACT):
        quantity = usage.quantity
        total = before.quantity + quantity
        free_before = min(free, before.quantity)
        free_now = min(free, total) - free_before
        billable_before = before.quantity - free_before
        billable_total = total - free_before - free_now
        # Rounding the running total, then taking off what was charged (itself rounded),
        # is what keeps a period's amounts adding up to one rounding of its total; the
        # cap applies to that total, so it too is shared by all invoices of the period.
        priced = price(component.pricing, billable_total)
        charge = _capped(priced.amount, component)
        amount = round_amount(charge, currency) - before.charged
        billable_now = quantity - free_now
    return InvoiceLine(
        kind=LineKind.USAGE,
        component_id=component.component_id,
        description=text,
        quantity=quantity,
        free_quantity=free_now,
        billable_quantity=billable_now,
        unit_price=line_unit_price(component.pricing, billable_total),
        tiers=_increment(component.pricing, billable_before, priced.tiers, before.billed),
        amount=amount,
        usage_ids=usage.usage_ids,
    )


def _late_line(
    component: MeteredComponent, text: str, usage: UsageTotal, currency: Currency
) -> InvoiceLine:
    quantity = usage.quantity
    # The period late usage belongs to had its flat fees charged when it closed.
    charge = price(without_flat_fees(component.pricing), quantity)
    return InvoiceLine(
        kind=LineKind.USAGE,
        component_id=component.component_id,
        description=f"{text} (late usage)",
        quantity=quantity,
        free_quantity=_ZERO,
        billable_quantity=quantity,
        late=True,
        unit_price=line_unit_price(component.pricing, quantity),
        tiers=charge.tiers,
        amount=round_amount(_capped(charge.amount, component), currency),
        usage_ids=usage.usage_ids,
    )


def _override_line(
    entry: UsageEntry, text: str, period_start: datetime, currency: Currency
) -> InvoiceLine:
    unit_price = _override_price(entry)
    if entry.override is None or unit_price is None:
        raise AssertionError("an override line for an entry without an override price")
    own_text = " - ".join(t for t in (entry.override.name, entry.override.description) if t)
    with localcontext(_EXACT):
        exact = entry.quantity * unit_price
    return InvoiceLine(
        kind=LineKind.USAGE,
        component_id=entry.component_id,
        description=own_text or text,
        quantity=entry.quantity,
        free_quantity=_ZERO,
        billable_quantity=entry.quantity,
        late=_is_late(entry, period_start),
        override=True,
        unit_price=unit_price,
        amount=round_amount(exact, currency),
        usage_ids=(entry.id,),
    )


def _increment(
    pricing: Pricing, before: Decimal, new: tuple[TierCharge, ...], billed: bool
) -> tuple[TierCharge, ...]:
    """The breakdown `new` (of `price(after)`, which the caller has: pricing it twice
    cost rating a tenth of its time) less that of `price(before)` (nothing when no
    earlier line was `billed`), exactly: tier by tier for graduated pricing, else
    price by price (see the module doc)."""
    old = price(pricing, before).tiers if billed else ()
    with localcontext(_EXACT):
        if isinstance(pricing, Graduated):
            # A graduated breakdown is contiguous from the first tier, so position i
            # is tier i in both; the later quantity fills each tier at least as far,
            # and a tier's flat fee is owed only where the earlier breakdown lacks it.
            parts = [
                _part(part.quantity - old[i].quantity, part.unit_price, _ZERO)
                if i < len(old)
                else part
                for i, part in enumerate(new)
            ]
        elif old and new and _same_tier(old[0], new[0]):
            parts = [_part(new[0].quantity - old[0].quantity, new[0].unit_price, _ZERO)]
        else:
            # Every other model has one part at one price: a changed price means a
            # volume tier crossed, which takes back the old units (and flat fee) and
            # re-prices them all.
            parts = [_part(-p.quantity, p.unit_price, -p.flat_fee) for p in old] + list(new)
    return tuple(p for p in parts if p.quantity or p.flat_fee)


def _same_tier(old: TierCharge, new: TierCharge) -> bool:
    return old.unit_price == new.unit_price and old.flat_fee == new.flat_fee


def _part(quantity: Decimal, unit_price: Decimal, flat_fee: Decimal) -> TierCharge:
    amount = quantity * unit_price + flat_fee
    # -90 units taken back at a price of 0 are -0, which would render as "-0".
    return TierCharge(
        quantity, unit_price, amount.copy_abs() if amount.is_zero() else amount, flat_fee
    )


def _capped(charge: Decimal, component: MeteredComponent) -> Decimal:
    cap = component.maximum_amount
    return charge if cap is None else min(charge, cap)


# ---------------------------------------------------------------- small rules


def _check_entry(
    entry: UsageEntry, components: set[str], period_end: datetime, seen: set[int]
) -> None:
    if entry.invoice_id is not None:
        raise ValueError(f"usage entry {entry.id} is already billed on {entry.invoice_id}")
    if entry.id in seen:
        raise ValueError(f"usage entry {entry.id} is given twice")
    seen.add(entry.id)
    if entry.due_date > period_end:
        raise ValueError(f"usage entry {entry.id} is due after the period ends ({period_end})")
    if entry.component_id not in components:
        raise ValueError(
            f"usage entry {entry.id} meters {entry.component_id}, not in the plan variant"
        )


def _check_component(component_id: str, components: Mapping[str, MeteredComponent]) -> None:
    if component_id not in components:
        raise ValueError(f"usage of {component_id} is billed, which is not in the plan variant")


def _is_late(entry: UsageEntry, last_billing_date: datetime) -> bool:
    # SPEC §7: usage due before LastBillingDate is late; due at it, it is current.
    return entry.due_date < last_billing_date


def _override_price(entry: UsageEntry) -> Decimal | None:
    return None if entry.override is None else entry.override.price_per_unit


def _total(entries: Iterable[UsageEntry]) -> Decimal:
    with localcontext(_EXACT):
        return sum((e.quantity for e in entries), _ZERO)


def _ids(entries: Iterable[UsageEntry]) -> tuple[int, ...]:
    return tuple(sorted(e.id for e in entries))
