"""The limits (`domain.limits`) hold end to end in the domain: anything accepted rates
and invoices without error, within the room storage gives it, and every billing date
the service computes exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.catalog import MeteredComponent
from arrears.domain.clock import TestClock
from arrears.domain.errors import Invalid
from arrears.domain.fees import prorated_fee_line, rated_item_line, recurring_fee_line
from arrears.domain.invoices import InvoiceDraft, InvoiceKind, InvoiceLine, draft_invoice
from arrears.domain.limits import (
    EARLIEST,
    LATEST,
    LATEST_BILLING_DATE,
    MAX_AMOUNT_DIGITS,
    MAX_ENTRY_DIGITS,
    MAX_PERIOD_QUANTITY,
    MAX_PERIOD_SUM_DIGITS,
)
from arrears.domain.money import Currency, currency
from arrears.domain.periods import (
    BillingPeriod,
    PeriodUnit,
    next_boundary_after,
    period_boundary,
    period_index_at,
)
from arrears.domain.pricing import Package, Pricing, price
from arrears.domain.rating import (
    InvoiceUsage,
    PeriodCharges,
    UsageTotal,
    rate_totals,
    rate_usage,
)
from arrears.domain.usage import ProductOverride, UsageEntry
from tests.limit_values import MICRO, MOST, accepted, millionths, pricings, tax_rates

D = Decimal
# The tests' own arithmetic: the default 28 digits would round the sums they check.
WIDE = Context(prec=200, traps=[Inexact])
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 2, 1, tzinfo=UTC)
CID = "storage"


# ---------------------------------------------------------------- strategies

currencies = st.sampled_from([currency("EUR"), currency("JPY"), currency("KWD")])


@st.composite
def entries(draw: st.DrawFn) -> tuple[UsageEntry, ...]:
    """Many entries of one component, late ones and some at an override price."""
    made = []
    for id_ in range(1, draw(st.integers(1, 60)) + 1):
        late = draw(st.booleans())
        override = draw(st.none() | accepted.map(lambda p: ProductOverride(p, "Special")))
        due = START - timedelta(days=3) if late else START + timedelta(days=id_ % 28)
        made.append(UsageEntry(id_, "c", CID, draw(accepted), due, due, override=override))
    return tuple(made)


# ---------------------------------------------------------------- the property


@given(
    pricing=pricings,
    free_quota=accepted,
    usage=entries(),
    invoices=st.integers(1, 4),
    fee=accepted,
    items=st.lists(st.tuples(accepted, accepted), max_size=3),
    tax_rate=tax_rates,
    money=currencies,
)
def test_anything_accepted_bills_without_error_and_every_invoice_adds_up(
    *,
    pricing: Pricing,
    free_quota: Decimal,
    usage: tuple[UsageEntry, ...],
    invoices: int,
    fee: Decimal,
    items: list[tuple[Decimal, Decimal]],
    tax_rate: Decimal,
    money: Currency,
) -> None:
    component = MeteredComponent(CID, pricing, free_quota)
    earlier = PeriodCharges()
    # The period's usage over several invoices (interim ones, then the regular one),
    # which share the free quota and the tier position.
    for part in range(invoices):
        billed = usage[part::invoices]
        lines = rate_usage(
            components=[component],
            currency=money,
            period_start=START,
            period_end=END,
            earlier=earlier,
            entries=billed,
        )
        earlier = earlier.after(lines)
        extra: list[InvoiceLine] = [
            recurring_fee_line(fee, START, END, money),
            prorated_fee_line(fee, START, END, START + timedelta(days=10), money),
            *(rated_item_line("Setup", q, p, money) for q, p in items),
        ]
        _check(_invoice([*lines, *extra], tax_rate, money))


@given(
    pricing=pricings,
    free_quota=accepted,
    quantity=millionths(0, 10 ** (MAX_PERIOD_SUM_DIGITS + 6) - 1),
    earlier_quantity=millionths(0, 10 ** (MAX_PERIOD_SUM_DIGITS + 6) - 1),
    tax_rate=tax_rates,
    money=currencies,
)
def test_a_periods_sum_of_any_number_of_entries_bills_without_error_and_adds_up(
    *,
    pricing: Pricing,
    free_quota: Decimal,
    quantity: Decimal,
    earlier_quantity: Decimal,
    tax_rate: Decimal,
    money: Currency,
) -> None:
    # Sums up to 10^31: what the most entries there can be (10^19) of the largest
    # quantity add up to, billed as the database sums them, after an interim invoice.
    component = MeteredComponent(CID, pricing, free_quota)
    first = _rate_totals(component, D(0), earlier_quantity, money)
    _check(_invoice(first, tax_rate, money))
    earlier = PeriodCharges().after(first)
    regular = _rate_totals(component, earlier_quantity, quantity, money, earlier)
    _check(_invoice(regular, tax_rate, money))


def test_the_dearest_line_the_limits_allow_is_below_10_to_the_49() -> None:
    with localcontext(WIDE):
        # The largest period sum in packages of the smallest size at the largest price.
        largest_sum = D(10) ** MAX_PERIOD_SUM_DIGITS - MICRO
        dearest = price(Package(MICRO, MOST), largest_sum).amount
        assert D(10) ** 48 < dearest < D(10) ** (MAX_AMOUNT_DIGITS - 1)
        # Plus override lines and rated items for as many entries as there can be,
        # then 100 % tax: still below the room amounts have.
        others = 2 * MOST * MOST * D(10) ** MAX_ENTRY_DIGITS
        assert 2 * (dearest + others) < D(10) ** MAX_AMOUNT_DIGITS


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize("unit", list(PeriodUnit))
def test_a_period_of_1000_units_from_the_latest_instant_ends_before_the_latest_billing_date(
    unit: PeriodUnit,
) -> None:
    longest = BillingPeriod(unit, MAX_PERIOD_QUANTITY)
    last = LATEST - timedelta(microseconds=1)
    assert period_boundary(last, longest, 1) < LATEST_BILLING_DATE
    # A contract anchored at the earliest instant, billed at the latest: its current
    # period exists, and so does its end (the next billing date).
    shortest = BillingPeriod(unit, 1)
    for period in (shortest, longest):
        index = period_index_at(EARLIEST, period, last)
        assert period_boundary(EARLIEST, period, index) <= last
        following = next_boundary_after(EARLIEST, period, last)
        assert following == period_boundary(EARLIEST, period, index + 1)
        assert last < following < LATEST_BILLING_DATE


def test_the_latest_billing_date_lies_inside_the_calendar() -> None:
    assert LATEST_BILLING_DATE.year < 9999


@pytest.mark.parametrize("instant", [LATEST, datetime(9999, 12, 31, tzinfo=UTC)])
def test_the_test_clock_never_moves_to_8000_or_later(instant: datetime) -> None:
    clock = TestClock(EARLIEST)
    with pytest.raises(Invalid) as refused:
        clock.move_to(instant)
    assert [error.field for error in refused.value.errors] == ["now"]
    assert clock.now() == EARLIEST
    assert clock.move_to(LATEST - timedelta(microseconds=1)) == LATEST - timedelta(microseconds=1)


@pytest.mark.parametrize(
    "instant", [LATEST, datetime(9999, 12, 31, tzinfo=UTC), EARLIEST - timedelta(microseconds=1)]
)
def test_the_test_clock_never_starts_outside_the_instants_a_request_may_carry(
    instant: datetime,
) -> None:
    with pytest.raises(Invalid):
        TestClock(instant)


# ---------------------------------------------------------------- helpers


def _rate_totals(
    component: MeteredComponent,
    before: Decimal,
    quantity: Decimal,
    money: Currency,
    earlier: PeriodCharges | None = None,
) -> tuple[InvoiceLine, ...]:
    totals = (
        UsageTotal(CID, late=False, quantity=quantity, usage_ids=(1,)),
        UsageTotal(CID, late=True, quantity=before, usage_ids=(2,)),
    )
    return rate_totals(
        components=[component],
        currency=money,
        period_start=START,
        earlier=earlier or PeriodCharges(),
        usage=InvoiceUsage(totals),
    )


def _invoice(
    lines: list[InvoiceLine] | tuple[InvoiceLine, ...], tax_rate: Decimal, money: Currency
) -> InvoiceDraft:
    return draft_invoice(
        kind=InvoiceKind.REGULAR,
        currency=money,
        period_start=START,
        period_end=END,
        lines=lines,
        tax_rate=tax_rate,
    )


def _check(invoice: InvoiceDraft) -> None:
    """Total = Subtotal + TaxAmount, Subtotal = Σ lines, and every number fits the room
    storage gives it."""
    with localcontext(WIDE):
        assert invoice.total == invoice.subtotal + invoice.tax_amount
        assert invoice.subtotal == sum((line.amount for line in invoice.lines), D(0))
    room = D(10) ** MAX_AMOUNT_DIGITS
    for amount in (invoice.subtotal, invoice.tax_amount, invoice.total):
        assert abs(amount) < room
    for line in invoice.lines:
        assert abs(line.amount) < room
        assert line.quantity < D(10) ** MAX_PERIOD_SUM_DIGITS
