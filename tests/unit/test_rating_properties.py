"""Properties of billing one period (SPEC §7) over random usage streams and random
interleavings of interim invoices before the regular one: every entry is billed once,
a period's charges add up to one rounding of its total, and every invoice adds up."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.catalog import MeteredComponent
from arrears.domain.fees import recurring_fee_line
from arrears.domain.invoices import InvoiceDraft, InvoiceKind, InvoiceLine, draft_invoice
from arrears.domain.money import Currency, currency, round_amount
from arrears.domain.pricing import (
    Graduated,
    Package,
    PerUnit,
    Pricing,
    Tier,
    Volume,
    billable_quantity,
    price,
)
from arrears.domain.rating import (
    PeriodCharges,
    rate_usage,
    select_for_invoice,
)
from arrears.domain.usage import ProductOverride, UsageEntry

D = Decimal
PERIOD_START = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 2, 1, tzinfo=UTC)
PERIOD_MINUTES = 31 * 24 * 60  # minute PERIOD_MINUTES is PERIOD_END itself
COMPONENT_IDS = ("storage", "calls")
CURRENCIES = (currency("EUR"), currency("JPY"), currency("KWD"))


# ---------------------------------------------------------------- strategies


def _decimals(max_value: int, min_value: Decimal | int = 0) -> st.SearchStrategy[Decimal]:
    # Whole numbers and six-place decimals: the extremes of what a seller may send.
    return st.one_of(
        st.decimals(min_value=min_value, max_value=max_value, places=0),
        st.decimals(min_value=min_value, max_value=max_value, places=6),
    )


prices = _decimals(10)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = draw(st.lists(_decimals(400, min_value=D("0.000001")), max_size=3, unique=True))
    tier_prices = draw(st.lists(prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    ups: list[Decimal | None] = [*sorted(bounds), None]
    return tuple(Tier(up, p) for up, p in zip(ups, tier_prices, strict=True))


pricings: st.SearchStrategy[Pricing] = st.one_of(
    st.builds(PerUnit, prices),
    st.builds(Graduated, tier_lists()),
    st.builds(Volume, tier_lists()),
    st.builds(Package, _decimals(100, min_value=D("0.000001")), prices),
)

metered_components = st.tuples(
    *(
        st.builds(MeteredComponent, st.just(cid), pricings, st.just(D(0)) | _decimals(100))
        for cid in COMPONENT_IDS
    )
)


# Most usage is on time and priced by the plan: that is where invoices share a period.
one_in_five = st.sampled_from((False, False, False, False, True))


@dataclass(frozen=True)
class Post:
    """At `minute` of the period, usage due at `due` is posted."""

    minute: int
    component_id: str
    quantity: Decimal
    due: datetime
    override: ProductOverride | None


@dataclass(frozen=True)
class Interim:
    """At `minute` of the period, an interim invoice bills everything due by then."""

    minute: int


@st.composite
def posts(draw: st.DrawFn) -> Post:
    minute = draw(st.integers(0, PERIOD_MINUTES))
    late = draw(one_in_five)
    due_minute = draw(st.integers(-60 * 24 * 60, -1) if late else st.integers(0, minute))
    priced = ProductOverride(draw(prices), "Special") if draw(one_in_five) else None
    return Post(
        minute=minute,
        component_id=draw(st.sampled_from(COMPONENT_IDS)),
        quantity=draw(_decimals(200)),
        due=PERIOD_START + timedelta(minutes=due_minute),
        override=priced,
    )


interims = st.builds(Interim, st.integers(0, PERIOD_MINUTES - 1))
# Usage and interim invoices in clock order (a post and an interim invoice at the same
# minute: the post first, as a request answered before the billing).
streams = st.builds(
    lambda p, i: sorted([*p, *i], key=lambda s: (s.minute, isinstance(s, Interim))),
    st.lists(posts(), min_size=2, max_size=24),
    st.lists(interims, min_size=1, max_size=5),
)


# ---------------------------------------------------------------- billing one period


@dataclass(frozen=True)
class BilledPeriod:
    entries: tuple[UsageEntry, ...]
    invoices: tuple[InvoiceDraft, ...]


def bill_period(
    components: Sequence[MeteredComponent],
    money: Currency,
    tax_rate: Decimal,
    steps: Sequence[Post | Interim],
) -> BilledPeriod:
    """Play `steps`, issuing an interim invoice at each `Interim`, then the regular
    invoice at the period's end: what the billing service does, minus the database."""
    stored: dict[int, UsageEntry] = {}
    invoices: list[InvoiceDraft] = []
    earlier = PeriodCharges()

    def issue(kind: InvoiceKind, cutoff: datetime) -> None:
        nonlocal earlier
        taken = select_for_invoice(stored.values(), cutoff)
        lines: tuple[InvoiceLine, ...] = rate_usage(
            components=components,
            currency=money,
            period_start=PERIOD_START,
            period_end=PERIOD_END,
            earlier=earlier,
            entries=taken,
        )
        if kind is InvoiceKind.REGULAR:
            lines = (*lines, recurring_fee_line(D("9.99"), PERIOD_START, PERIOD_END, money))
        invoice_id = f"invoice-{len(invoices)}"
        invoices.append(
            draft_invoice(
                kind=kind,
                currency=money,
                period_start=PERIOD_START,
                period_end=PERIOD_END,
                lines=lines,
                tax_rate=tax_rate,
            )
        )
        earlier = earlier.after(lines)
        for entry in taken:
            stored[entry.id] = replace(entry, invoice_id=invoice_id)

    for step in steps:
        now = PERIOD_START + timedelta(minutes=step.minute)
        if isinstance(step, Interim):
            issue(InvoiceKind.INTERIM, now)
        else:
            entry_id = len(stored) + 1
            stored[entry_id] = UsageEntry(
                id=entry_id,
                contract_id="contract",
                component_id=step.component_id,
                quantity=step.quantity,
                due_date=step.due,
                transferred_at=now,
                override=step.override,
            )
    issue(InvoiceKind.REGULAR, PERIOD_END)
    return BilledPeriod(tuple(stored.values()), tuple(invoices))


def lines_of(billed: BilledPeriod) -> list[InvoiceLine]:
    return [line for invoice in billed.invoices for line in invoice.lines]


def is_plan_priced_current(entry: UsageEntry) -> bool:
    overridden = entry.override is not None and entry.override.price_per_unit is not None
    return not overridden and entry.due_date >= PERIOD_START


billing_runs = st.tuples(
    metered_components,
    st.sampled_from(CURRENCIES),
    st.decimals(min_value=0, max_value=30, places=2),
    streams,
)


# ---------------------------------------------------------------- properties


@given(billing_runs)
def test_every_entry_is_billed_on_exactly_one_line_of_exactly_one_invoice(
    run: tuple[tuple[MeteredComponent, ...], Currency, Decimal, list[Post | Interim]],
) -> None:
    billed = bill_period(*run)
    billed_ids = Counter(i for line in lines_of(billed) for i in line.usage_ids)
    assert billed_ids == Counter(entry.id for entry in billed.entries)
    assert all(entry.invoice_id is not None for entry in billed.entries)


@given(billing_runs)
def test_a_periods_charges_per_component_add_up_to_one_rounding_of_its_total(
    run: tuple[tuple[MeteredComponent, ...], Currency, Decimal, list[Post | Interim]],
) -> None:
    components, money, _, _ = run
    billed = bill_period(*run)
    for component in components:
        cid = component.component_id
        total = sum(
            (
                e.quantity
                for e in billed.entries
                if e.component_id == cid and is_plan_priced_current(e)
            ),
            D(0),
        )
        billable = billable_quantity(total, component.free_quota)
        shared = [
            line
            for line in lines_of(billed)
            if line.counts_toward_period and line.component_id == cid
        ]

        charged = sum((line.amount for line in shared), D(0))
        assert charged == round_amount(price(component.pricing, billable).amount, money)
        assert sum((line.free_quantity for line in shared), D(0)) == min(
            total, component.free_quota
        )
        assert sum((line.billable_quantity for line in shared), D(0)) == billable
        # The exact tier breakdowns of the increments telescope to the period's charge.
        assert sum((t.amount for line in shared for t in line.tiers), D(0)) == (
            price(component.pricing, billable).amount
        )


@given(billing_runs)
def test_each_shared_line_differs_from_its_exact_breakdown_by_less_than_one_minor_unit(
    run: tuple[tuple[MeteredComponent, ...], Currency, Decimal, list[Post | Interim]],
) -> None:
    money = run[1]
    for line in lines_of(bill_period(*run)):
        if line.counts_toward_period:
            assert abs(line.amount - sum((t.amount for t in line.tiers), D(0))) < money.quantum
            assert line.billable_quantity == line.quantity - line.free_quantity


@given(billing_runs)
def test_only_a_volume_tier_can_make_a_line_negative(
    run: tuple[tuple[MeteredComponent, ...], Currency, Decimal, list[Post | Interim]],
) -> None:
    pricing_of = {c.component_id: c.pricing for c in run[0]}
    for line in lines_of(bill_period(*run)):
        assert (
            line.component_id is None
            or line.amount >= 0
            or (isinstance(pricing_of[line.component_id], Volume))
        )


@given(billing_runs)
def test_late_and_override_lines_are_rated_alone_without_free_quota(
    run: tuple[tuple[MeteredComponent, ...], Currency, Decimal, list[Post | Interim]],
) -> None:
    components, money, _, _ = run
    pricing_of = {c.component_id: c.pricing for c in components}
    for line in lines_of(bill_period(*run)):
        if line.override:
            assert line.unit_price is not None
            assert line.amount == round_amount(line.quantity * line.unit_price, money)
        elif line.late:
            assert line.component_id is not None
            assert line.amount == round_amount(
                price(pricing_of[line.component_id], line.quantity).amount, money
            )
        if line.late or line.override:
            assert (line.free_quantity, line.billable_quantity) == (D(0), line.quantity)


@given(billing_runs)
def test_every_invoice_adds_up_and_every_amount_has_the_currencys_places(
    run: tuple[tuple[MeteredComponent, ...], Currency, Decimal, list[Post | Interim]],
) -> None:
    money = run[1]
    for invoice in bill_period(*run).invoices:
        assert invoice.subtotal == sum((line.amount for line in invoice.lines), D(0))
        assert invoice.total == invoice.subtotal + invoice.tax_amount
        assert invoice.tax_amount == round_amount(invoice.subtotal * invoice.tax_rate / 100, money)
        amounts = [invoice.subtotal, invoice.tax_amount, invoice.total]
        amounts += [line.amount for line in invoice.lines]
        assert all(a.as_tuple().exponent == -money.minor_unit for a in amounts)
        assert all(not (a.is_zero() and a.is_signed()) for a in amounts)


@given(
    st.builds(MeteredComponent, st.just("storage"), pricings, st.just(D(0)) | _decimals(100)),
    st.sampled_from(CURRENCIES),
    st.lists(st.lists(_decimals(200), min_size=1, max_size=3), min_size=2, max_size=12),
)
def test_any_number_of_invoices_in_a_period_charge_exactly_what_one_invoice_would(
    component: MeteredComponent, money: Currency, batches: list[list[Decimal]]
) -> None:
    # Each batch is billed by its own invoice of the period: no minor unit may drift.
    earlier = PeriodCharges()
    entry_ids = iter(range(1, 1_000))
    for batch in batches:
        entries = [
            UsageEntry(next(entry_ids), "contract", "storage", q, PERIOD_START, PERIOD_START)
            for q in batch
        ]
        lines = rate_usage(
            components=[component],
            currency=money,
            period_start=PERIOD_START,
            period_end=PERIOD_END,
            earlier=earlier,
            entries=entries,
        )
        earlier = earlier.after(lines)

    total = sum((q for batch in batches for q in batch), D(0))
    one_invoice = price(component.pricing, billable_quantity(total, component.free_quota))
    assert earlier.for_component("storage").quantity == total
    assert earlier.for_component("storage").charged == round_amount(one_invoice.amount, money)
