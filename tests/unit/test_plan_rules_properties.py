"""Properties of the SPEC §11 rules over whole billing periods: however a period's usage
is split over interim invoices and its regular one, what the period is charged is the
rule applied to the whole period (tier flat fees, spend caps, plan changes, minimum
commitments and discounts included); and a discount never makes a subtotal negative."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.catalog import MeteredComponent, PlanVariant
from arrears.domain.discounts import Discount, DiscountTarget, discount_lines, period_discounts
from arrears.domain.fees import commitment_line
from arrears.domain.invoices import InvoiceLine, LineKind, invoice_totals
from arrears.domain.money import Currency, currency
from arrears.domain.periods import BillingPeriod, PeriodUnit
from arrears.domain.phases import (
    Phase,
    phase_commitment,
    phase_fee_lines,
    phase_windows,
    rate_phases,
)
from arrears.domain.pricing import Graduated, Package, PerUnit, Pricing, Tier, Volume
from arrears.domain.usage import UsageEntry

D = Decimal
PERIOD_START = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 1, 31, tzinfo=UTC)
PERIOD_MINUTES = 30 * 24 * 60
COMPONENT_IDS = ("storage", "calls")
CURRENCIES = (currency("EUR"), currency("JPY"), currency("KWD"))


# ---------------------------------------------------------------- strategies


def _decimals(max_value: int, min_value: Decimal | int = 0) -> st.SearchStrategy[Decimal]:
    return st.one_of(
        st.decimals(min_value=min_value, max_value=max_value, places=0),
        st.decimals(min_value=min_value, max_value=max_value, places=6),
    )


prices = _decimals(10)
amounts = st.none() | _decimals(300)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = draw(st.lists(_decimals(400, min_value=D("0.000001")), max_size=3, unique=True))
    count = len(bounds) + 1
    tier_prices = draw(st.lists(prices, min_size=count, max_size=count))
    flat_fees = draw(st.lists(st.none() | _decimals(100), min_size=count, max_size=count))
    ups: list[Decimal | None] = [*sorted(bounds), None]
    return tuple(Tier(up, p, flat) for up, p, flat in zip(ups, tier_prices, flat_fees, strict=True))


pricings: st.SearchStrategy[Pricing] = st.one_of(
    st.builds(PerUnit, prices),
    st.builds(Graduated, tier_lists()),
    st.builds(Volume, tier_lists()),
    st.builds(Package, _decimals(100, min_value=D("0.000001")), prices),
)


@st.composite
def plan_variants(draw: st.DrawFn, id_: str) -> PlanVariant:
    components = tuple(
        MeteredComponent(
            cid,
            draw(pricings),
            draw(st.just(D(0)) | _decimals(100)),
            maximum_amount=draw(amounts),
        )
        for cid in COMPONENT_IDS
    )
    return PlanVariant(
        id=id_,
        created_at=PERIOD_START,
        plan_id="plan",
        name=id_,
        currency="EUR",
        billing_period=BillingPeriod(PeriodUnit.DAY, 30),
        tax_rate=D(0),
        metered_components=components,
        recurring_fee=draw(amounts),
        minimum_commitment=draw(amounts),
    )


@st.composite
def phase_lists(draw: st.DrawFn) -> tuple[Phase, ...]:
    first = Phase(draw(plan_variants("first")), PERIOD_START)
    if not draw(st.booleans()):
        return (first,)
    change = PERIOD_START + timedelta(minutes=draw(st.integers(1, PERIOD_MINUTES - 1)))
    return (first, Phase(draw(plan_variants("second")), change))


@st.composite
def discount_lists(draw: st.DrawFn) -> list[Discount]:
    made: list[Discount] = []
    for index in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(DiscountTarget))
        if draw(st.booleans()):
            percentage = draw(st.decimals(min_value=D("0.01"), max_value=100, places=2))
            made.append(Discount(f"d{index}", "Percent", target, percentage=percentage))
        else:
            amount = draw(_decimals(200, min_value=D("0.01")))
            made.append(Discount(f"d{index}", "Amount", target, amount=amount))
    return made


@dataclass(frozen=True)
class Usage:
    """Usage of the period, and which of its invoices (0, 1, ...; the last is the
    regular one) bills it."""

    component_id: str
    quantity: Decimal
    due_minute: int
    invoice: int


usages = st.builds(
    Usage,
    st.sampled_from(COMPONENT_IDS),
    _decimals(200),
    st.integers(0, PERIOD_MINUTES),
    st.integers(0, 3),
)


# ---------------------------------------------------------------- billing one period


@dataclass(frozen=True)
class Plan:
    phases: tuple[Phase, ...]
    discounts: list[Discount]
    money: Currency


def bill(plan: Plan, invoices: Sequence[Sequence[UsageEntry]]) -> list[tuple[InvoiceLine, ...]]:
    """The lines of each invoice of the period, the last one closing it: what billing
    does for interim invoices and the regular one, minus the database."""
    made: list[tuple[InvoiceLine, ...]] = []
    earlier: list[InvoiceLine] = []
    for index, entries in enumerate(invoices):
        closing = index == len(invoices) - 1
        lines = rate_phases(
            phases=plan.phases,
            currency=plan.money,
            period_start=PERIOD_START,
            period_end=PERIOD_END,
            earlier=earlier,
            entries=entries,
            closing=closing,
        )
        if closing:
            windows = phase_windows(plan.phases, PERIOD_START, PERIOD_END)
            lines = (*lines, *phase_fee_lines(windows, plan.money))
            commitment = phase_commitment(windows)
            if commitment is not None:
                line = commitment_line(
                    commitment, (*earlier, *lines), PERIOD_START, PERIOD_END, plan.money
                )
                lines = (*lines, *(() if line is None else (line,)))
        lines = (*lines, *discount_lines(plan.discounts, earlier, lines, plan.money))
        made.append(lines)
        earlier.extend(lines)
    return made


def charges(invoices: Sequence[Sequence[InvoiceLine]]) -> dict[tuple[object, ...], Decimal]:
    """What the period was charged, summed over its invoices, per kind of charge."""
    summed: dict[tuple[object, ...], Decimal] = defaultdict(Decimal)
    for lines in invoices:
        for line in lines:
            key = (line.kind, line.component_id, line.phase_from, line.discount_id)
            summed[key] += line.amount
    return {key: amount for key, amount in summed.items() if amount}


def entries_of(usage: Sequence[Usage]) -> list[UsageEntry]:
    return [
        UsageEntry(
            id=index + 1,
            contract_id="contract",
            component_id=u.component_id,
            quantity=u.quantity,
            due_date=PERIOD_START + timedelta(minutes=u.due_minute),
            transferred_at=PERIOD_START,
        )
        for index, u in enumerate(usage)
    ]


plans = st.builds(Plan, phase_lists(), discount_lists(), st.sampled_from(CURRENCIES))


# ---------------------------------------------------------------- properties


@given(plans, st.lists(usages, max_size=12), st.integers(0, 3))
def test_a_periods_charges_over_all_its_invoices_equal_the_rules_applied_to_the_whole_period(
    plan: Plan, usage: list[Usage], interims: int
) -> None:
    entries = entries_of(usage)
    split = [
        [e for e, u in zip(entries, usage, strict=True) if min(u.invoice, interims) == index]
        for index in range(interims + 1)
    ]
    assert charges(bill(plan, split)) == charges(bill(plan, [entries]))


@given(plans, st.lists(usages, max_size=12), st.integers(0, 3))
def test_a_discount_never_makes_a_subtotal_negative(
    plan: Plan, usage: list[Usage], interims: int
) -> None:
    entries = entries_of(usage)
    split = [
        [e for e, u in zip(entries, usage, strict=True) if min(u.invoice, interims) == index]
        for index in range(interims + 1)
    ]
    invoices = bill(plan, split)
    period = [line for lines in invoices for line in lines]
    for lines in (*invoices, period):
        undiscounted = [line for line in lines if line.kind is not LineKind.DISCOUNT]
        if invoice_totals(undiscounted, D(0), plan.money).subtotal >= 0:
            assert invoice_totals(lines, D(0), plan.money).subtotal >= 0
    charged = [line for line in period if line.kind is not LineKind.DISCOUNT]
    assert all(
        taken >= 0 for taken in period_discounts(plan.discounts, charged, plan.money).values()
    )
