"""SPEC §11, the pure rules: tier flat fees, spend caps, minimum commitments, discounts
and coupons, plan changes, quantity components and notice periods. No database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from arrears.domain.catalog import ComponentKind, MeteredComponent, PlanVariant, QuantityComponent
from arrears.domain.discounts import (
    Coupon,
    Discount,
    DiscountSubscription,
    DiscountTarget,
    check_redeemable,
    discount_lines,
    parse_coupon,
    parse_discount,
)
from arrears.domain.errors import Conflict, Invalid
from arrears.domain.fees import commitment_line, recurring_fee_line
from arrears.domain.invoices import InvoiceLine, LineKind, invoice_totals
from arrears.domain.money import currency
from arrears.domain.notice import check_end_date, notice_end_date
from arrears.domain.periods import BillingPeriod, PeriodUnit
from arrears.domain.phases import (
    Phase,
    check_plan_change,
    phase_components,
    phase_fee_lines,
    phase_windows,
    rate_phases,
)
from arrears.domain.pricing import (
    Graduated,
    PerUnit,
    Tier,
    Volume,
    parse_pricing,
    price,
    pricing_to_json,
)
from arrears.domain.quantities import (
    ComponentSubscription,
    check_component_subscriptions,
    parse_component_subscriptions,
    quantity_lines,
)
from arrears.domain.rating import PeriodCharges, rate_usage
from arrears.domain.usage import UsageEntry

D = Decimal
EUR = currency("EUR")
MONTHLY = BillingPeriod(PeriodUnit.MONTH, 1)
DAY_1 = datetime(2026, 4, 1, tzinfo=UTC)
DAY_11 = DAY_1 + timedelta(days=10)
DAY_16 = DAY_1 + timedelta(days=15)
DAY_31 = DAY_1 + timedelta(days=30)  # a 30-day period ends here: 2026-05-01
STORAGE = "storage"
SEATS = "seats"

FIVE_FLAT_100_TEN_FLAT_50_FIFTEEN_AT_10_THEN_5 = (
    Tier(D(5), D(0), flat_fee=D(100)),
    Tier(D(10), D(0), flat_fee=D(50)),
    Tier(D(15), D(10)),
    Tier(None, D(5)),
)


# ---------------------------------------------------------------- small typed factories


def usage(id_: int, quantity: str, due: datetime, component: str = STORAGE) -> UsageEntry:
    return UsageEntry(
        id=id_,
        contract_id="contract",
        component_id=component,
        quantity=D(quantity),
        due_date=due,
        transferred_at=due,
    )


def variant(
    id_: str,
    *,
    fee: str | None = None,
    free: str = "0",
    per_gb: str = "0.10",
    cap: str | None = None,
    commitment: str | None = None,
    seat_price: str | None = None,
) -> PlanVariant:
    return PlanVariant(
        id=id_,
        created_at=DAY_1,
        plan_id="plan",
        name=id_,
        currency="EUR",
        billing_period=MONTHLY,
        tax_rate=D(0),
        metered_components=(
            MeteredComponent(
                STORAGE,
                PerUnit(D(per_gb)),
                D(free),
                maximum_amount=None if cap is None else D(cap),
            ),
        ),
        recurring_fee=None if fee is None else D(fee),
        minimum_commitment=None if commitment is None else D(commitment),
        quantity_components=()
        if seat_price is None
        else (QuantityComponent(SEATS, D(seat_price)),),
    )


def rate_april(
    components: Sequence[MeteredComponent],
    entries: Sequence[UsageEntry],
    earlier: Sequence[InvoiceLine] = (),
    *,
    closing: bool = False,
) -> tuple[InvoiceLine, ...]:
    return rate_usage(
        components=components,
        currency=EUR,
        period_start=DAY_1,
        period_end=DAY_31,
        earlier=PeriodCharges.of_lines(earlier),
        entries=entries,
        closing=closing,
    )


def amounts(lines: Sequence[InvoiceLine]) -> list[Decimal]:
    return [line.amount for line in lines]


def fee_line(amount: str) -> InvoiceLine:
    return recurring_fee_line(D(amount), DAY_1, DAY_31, EUR)


# ---------------------------------------------------------------- tier flat fees


@pytest.mark.parametrize(
    ("quantity", "charge"),
    [("0", "100"), ("5", "100"), ("7", "150"), ("12", "170"), ("22", "235")],
)
def test_graduated_tier_flat_fees_are_charged_for_each_tier_reached(
    quantity: str, charge: str
) -> None:
    pricing = Graduated(FIVE_FLAT_100_TEN_FLAT_50_FIFTEEN_AT_10_THEN_5)
    assert price(pricing, D(quantity)).amount == D(charge)


@pytest.mark.parametrize(
    ("quantity", "charge"), [("0", "100"), ("14", "140"), ("16", "80"), ("100", "500")]
)
def test_volume_tier_flat_fee_is_charged_for_the_tier_the_total_falls_in(
    quantity: str, charge: str
) -> None:
    tiers = list(FIVE_FLAT_100_TEN_FLAT_50_FIFTEEN_AT_10_THEN_5)
    tiers[1] = Tier(D(10), D(0), flat_fee=D(150))
    assert price(Volume(tuple(tiers)), D(quantity)).amount == D(charge)


def test_tier_flat_fees_are_shared_by_the_interim_and_regular_invoices_of_a_period() -> None:
    storage = MeteredComponent(STORAGE, Graduated(FIVE_FLAT_100_TEN_FLAT_50_FIFTEEN_AT_10_THEN_5))
    interim = rate_april([storage], [usage(1, "7", DAY_11)])  # 7 reach two tiers: 150
    regular = rate_april([storage], [usage(2, "5", DAY_16)], interim, closing=True)  # 12: 170
    assert amounts(interim) == [D("150.00")]
    assert amounts(regular) == [D("20.00")]
    # Three more units of the second tier, two of the third, and no flat fee again.
    assert [(t.quantity, t.unit_price, t.flat_fee) for t in regular[0].tiers] == [
        (D(3), D(0), D(0)),
        (D(2), D(10), D(0)),
    ]


def test_a_period_without_usage_is_charged_its_first_tier_flat_fee_on_its_regular_invoice() -> None:
    storage = MeteredComponent(STORAGE, Graduated(FIVE_FLAT_100_TEN_FLAT_50_FIFTEEN_AT_10_THEN_5))
    assert amounts(rate_april([storage], [], closing=True)) == [D("100.00")]
    assert rate_april([storage], []) == ()  # an interim invoice leaves it to the regular one


def test_tier_flat_fees_are_read_and_written_as_flat_fee() -> None:
    body = {
        "Model": "Volume",
        "Tiers": [
            {"UpTo": 5, "PricePerUnit": 0, "FlatFee": "100"},
            {"UpTo": None, "PricePerUnit": 5, "FlatFee": None},
        ],
    }
    pricing = parse_pricing(body)
    assert pricing == Volume((Tier(D(5), D(0), D(100)), Tier(None, D(5))))
    assert parse_pricing(pricing_to_json(pricing)) == pricing
    with pytest.raises(Invalid) as caught:
        parse_pricing(
            {"Model": "Graduated", "Tiers": [{"UpTo": None, "PricePerUnit": 1, "FlatFee": -1}]}
        )
    assert [(e.field, e.code) for e in caught.value.errors] == [("Tiers[0].FlatFee", "negative")]


# ---------------------------------------------------------------- spend cap


def test_spend_cap_of_170_is_reached_across_an_interim_and_a_regular_invoice() -> None:
    storage = MeteredComponent(STORAGE, PerUnit(D(10)), maximum_amount=D(170))
    interim = rate_april([storage], [usage(1, "12", DAY_11)])  # 120.00
    regular = rate_april([storage], [usage(2, "8", DAY_16)], interim, closing=True)  # 200 > 170
    later = rate_april([storage], [usage(3, "4", DAY_16)], (*interim, *regular), closing=True)
    assert amounts(interim) == [D("120.00")]
    assert amounts(regular) == [D("50.00")]
    assert amounts(later) == [D("0.00")]


# ---------------------------------------------------------------- minimum commitment


def test_minimum_commitment_of_100_with_fee_50_and_usage_3_x_10_adds_a_20_commitment_line() -> None:
    storage = MeteredComponent(STORAGE, PerUnit(D(10)))
    interim = rate_april([storage], [usage(1, "1", DAY_11)])
    regular = (
        *rate_april([storage], [usage(2, "2", DAY_16)], interim, closing=True),
        fee_line("50.00"),
    )
    line = commitment_line(D(100), (*interim, *regular), DAY_1, DAY_31, EUR)
    assert line is not None
    assert (line.kind, line.amount) == (LineKind.COMMITMENT, D("20.00"))
    assert commitment_line(D(80), (*interim, *regular), DAY_1, DAY_31, EUR) is None


def test_minimum_commitment_is_prorated_like_the_fee_in_a_final_period() -> None:
    line = commitment_line(D(90), [fee_line("10.00")], DAY_1, DAY_31, EUR, end_date=DAY_11)
    assert line is not None
    assert line.amount == D("20.00")  # 90 x 10/30 = 30.00, less the 10.00 charged


# ---------------------------------------------------------------- discounts


def percent_off_usage(periods: int | None) -> Discount:
    return Discount("d20", "Launch", DiscountTarget.USAGE, percentage=D(20), periods=periods)


def test_discount_of_20_percent_off_usage_for_2_periods_discounts_periods_1_and_2_not_3() -> None:
    subscription = DiscountSubscription(percent_off_usage(2), first_period=1)
    assert [subscription.applies_in(n) for n in (0, 1, 2, 3)] == [False, True, True, False]
    lines = (usage_line("45.00"), fee_line("30.00"))
    (discount,) = discount_lines([subscription.discount], [], lines, EUR)
    assert (discount.kind, discount.amount, discount.discount_id) == (
        LineKind.DISCOUNT,
        D("-9.00"),
        "d20",
    )


def test_discount_of_a_fixed_50_on_a_30_invoice_leaves_a_subtotal_of_0() -> None:
    fixed = Discount("d50", "Welcome", DiscountTarget.ALL, amount=D(50))
    lines = (fee_line("30.00"),)
    discounts = discount_lines([fixed], [], lines, EUR)
    assert amounts(discounts) == [D("-30.00")]
    assert invoice_totals((*lines, *discounts), D(19), EUR).subtotal == D("0.00")


def test_discount_of_a_fixed_50_is_taken_once_over_a_periods_interim_and_regular_invoice() -> None:
    fixed = Discount("d50", "Welcome", DiscountTarget.ALL, amount=D(50))
    interim = (usage_line("30.00"),)
    interim_discount = discount_lines([fixed], [], interim, EUR)
    regular = (fee_line("40.00"),)
    regular_discount = discount_lines([fixed], (*interim, *interim_discount), regular, EUR)
    assert amounts(interim_discount) == [D("-30.00")]
    assert amounts(regular_discount) == [D("-20.00")]


def test_discounts_take_percentages_before_fixed_amounts() -> None:
    fixed = Discount("fixed", "Ten off", DiscountTarget.ALL, amount=D(10))
    half = Discount("half", "Half off", DiscountTarget.ALL, percentage=D(50))
    lines = (fee_line("30.00"),)
    assert amounts(discount_lines([fixed, half], [], lines, EUR)) == [D("-10.00"), D("-15.00")]
    fee_only = Discount("fee", "Fee", DiscountTarget.RECURRING_FEE, amount=D(100))
    assert amounts(
        discount_lines([fee_only], [], (fee_line("30.00"), usage_line("5.00")), EUR)
    ) == [D("-30.00")]


def test_discounts_and_coupons_are_read_from_their_wire_format() -> None:
    discount = parse_discount(
        {"Name": "Launch", "Percentage": "20", "Periods": 2, "AppliesTo": "Usage"},
        discount_id="d20",
    )
    assert discount == percent_off_usage(2)
    with pytest.raises(Invalid) as caught:
        parse_discount(
            {"Percentage": 120, "Amount": 5, "AppliesTo": "Tax", "X": 1}, discount_id="x"
        )
    assert sorted((e.field, e.code) for e in caught.value.errors) == [
        ("AppliesTo", "unknown_value"),
        ("Name", "required"),
        ("Percentage", "one_of"),
        ("Percentage", "too_large"),
        ("X", "unknown_field"),
    ]
    coupon = parse_coupon({"Code": "SPRING", "DiscountId": "d20", "MaxRedemptions": 1})
    assert coupon == Coupon("SPRING", "d20", max_redemptions=1)


def test_coupon_that_is_spent_or_expired_is_a_conflict() -> None:
    check_redeemable(Coupon("SPRING", "d20", max_redemptions=1), DAY_1)
    with pytest.raises(Conflict, match="spent"):
        check_redeemable(Coupon("SPRING", "d20", max_redemptions=1, redemptions=1), DAY_1)
    with pytest.raises(Conflict, match="expired"):
        check_redeemable(Coupon("SPRING", "d20", valid_until=DAY_1), DAY_11)


def usage_line(amount: str) -> InvoiceLine:
    return InvoiceLine(
        kind=LineKind.USAGE,
        component_id=STORAGE,
        description="Storage",
        quantity=D(1),
        free_quantity=D(0),
        billable_quantity=D(1),
        amount=D(amount),
    )


# ---------------------------------------------------------------- plan changes


OLD = variant("small", fee="30.00", free="100", per_gb="0.10")
NEW = variant("large", fee="60.00", free="500", per_gb="0.05")
CHANGE_ON_DAY_11 = (Phase(OLD, DAY_1), Phase(NEW, DAY_11))


def test_plan_change_on_day_11_of_30_prorates_fees_to_10_and_40() -> None:
    windows = phase_windows(CHANGE_ON_DAY_11, DAY_1, DAY_31)
    assert amounts(phase_fee_lines(windows, EUR)) == [D("10.00"), D("40.00")]


def test_plan_change_on_day_11_of_30_prorates_free_quotas_to_33_333333_and_333_333333() -> None:
    old, new = phase_windows(CHANGE_ON_DAY_11, DAY_1, DAY_31)
    assert phase_components(old)[0].free_quota == D("33.333333")
    assert phase_components(new)[0].free_quota == D("333.333333")


def test_plan_change_rates_usage_by_the_variant_of_its_due_date_without_carrying_tiers() -> None:
    entries = [
        usage(1, "133.333333", DAY_11 - timedelta(seconds=1)),
        usage(2, "433.333333", DAY_11),
    ]
    lines = rate_phases(
        phases=CHANGE_ON_DAY_11,
        currency=EUR,
        period_start=DAY_1,
        period_end=DAY_31,
        earlier=(),
        entries=entries,
        closing=True,
    )
    # 100 GB over each free quota: at 0.10 by the old variant, at 0.05 by the new one.
    assert [(line.phase_from, line.usage_ids, line.amount) for line in lines] == [
        (DAY_1, (1,), D("10.00")),
        (DAY_11, (2,), D("5.00")),
    ]


def test_plan_change_to_another_currency_or_before_the_last_billing_date_is_refused() -> None:
    dollars = replace(NEW, currency="USD", billing_period=BillingPeriod(PeriodUnit.DAY, 7))
    with pytest.raises(Invalid) as caught:
        check_plan_change(OLD, dollars, DAY_1 - timedelta(days=1), DAY_1)
    assert [(e.field, e.code) for e in caught.value.errors] == [
        ("Cart.PlanVariantId", "other_currency"),
        ("Cart.PlanVariantId", "other_billing_period"),
        ("ChangeDate", "before_last_billing_date"),
    ]
    check_plan_change(OLD, NEW, DAY_11, DAY_1)


# ---------------------------------------------------------------- quantity components


def test_quantity_of_10_seats_from_day_1_and_15_from_day_16_at_4_is_20_and_30() -> None:
    seats = [
        ComponentSubscription(SEATS, D(10), DAY_1),
        ComponentSubscription(SEATS, D(15), DAY_16),
    ]
    lines = quantity_lines(
        subscriptions=seats,
        phases=(Phase(variant("team", seat_price="4.00"), DAY_1),),
        period_start=DAY_1,
        period_end=DAY_31,
        currency=EUR,
    )
    assert [(line.kind, line.quantity, line.amount) for line in lines] == [
        (LineKind.QUANTITY, D(10), D("20.00")),
        (LineKind.QUANTITY, D(15), D("30.00")),
    ]


def test_quantity_components_are_read_from_the_cart_and_must_be_priced_quantities() -> None:
    seats = parse_component_subscriptions([{"ComponentId": SEATS, "Quantity": "15"}], starts=DAY_16)
    assert seats == (ComponentSubscription(SEATS, D(15), DAY_16),)
    kinds = {SEATS: ComponentKind.QUANTITY, STORAGE: ComponentKind.METERED}
    check_component_subscriptions(seats, variant("team", seat_price="4.00"), kinds)
    with pytest.raises(Invalid) as caught:
        check_component_subscriptions(
            [*seats, ComponentSubscription(STORAGE, D(1), DAY_1)], variant("solo"), kinds
        )
    assert [e.code for e in caught.value.errors] == ["not_in_plan_variant", "not_a_quantity"]


# ---------------------------------------------------------------- notice periods


def test_notice_period_of_one_month_ended_on_day_10_ends_at_the_end_of_the_next_period() -> None:
    january = datetime(2026, 1, 1, tzinfo=UTC)
    one_month = BillingPeriod(PeriodUnit.MONTH, 1)
    ended = notice_end_date(january, MONTHLY, one_month, datetime(2026, 1, 10, tzinfo=UTC))
    assert ended == datetime(2026, 3, 1, tzinfo=UTC)
    assert notice_end_date(january, MONTHLY, None, datetime(2026, 1, 10, tzinfo=UTC)) == datetime(
        2026, 2, 1, tzinfo=UTC
    )


def test_notice_period_refuses_a_sooner_end_date_unless_ignored() -> None:
    one_month = BillingPeriod(PeriodUnit.MONTH, 1)
    now = datetime(2026, 1, 10, tzinfo=UTC)
    with pytest.raises(Invalid) as caught:
        check_end_date(datetime(2026, 2, 1, tzinfo=UTC), one_month, now)
    assert caught.value.errors[0].code == "within_notice_period"
    check_end_date(datetime(2026, 2, 1, tzinfo=UTC), one_month, now, ignore_notice_period=True)
    check_end_date(datetime(2026, 2, 10, tzinfo=UTC), one_month, now)
