"""The billing rules of SPEC §7, by example: rating usage and fees into invoice lines,
sharing free quota and tiers across the invoices of a period, and invoice totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from arrears.domain.catalog import MeteredComponent
from arrears.domain.fees import prorated_fee_line, rated_item_line, recurring_fee_line
from arrears.domain.invoices import (
    InvoiceKind,
    InvoiceLine,
    LineKind,
    draft_invoice,
    effective_tax_rate,
    invoice_totals,
)
from arrears.domain.money import Currency, currency
from arrears.domain.pricing import Graduated, Package, PerUnit, Pricing, Tier, TierCharge, Volume
from arrears.domain.rating import (
    InvoiceUsage,
    PeriodCharges,
    UsageTotal,
    rate_totals,
    rate_usage,
    select_for_invoice,
    split_late,
    sum_usage,
)
from arrears.domain.usage import ProductOverride, UsageEntry

D = Decimal
EUR = currency("EUR")
JPY = currency("JPY")
KWD = currency("KWD")

JANUARY_START = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY_START = datetime(2026, 2, 1, tzinfo=UTC)
MID_JANUARY = datetime(2026, 1, 15, tzinfo=UTC)
LAST_DECEMBER = datetime(2025, 12, 20, tzinfo=UTC)

STORAGE = "storage"
CALLS = "calls"

CALL_TIERS_1000_AT_0_01_THEN_0_005 = Graduated((Tier(D(1000), D("0.01")), Tier(None, D("0.005"))))


# ---------------------------------------------------------------- small typed factories


def usage(
    id_: int,
    quantity: str,
    *,
    component: str = STORAGE,
    due: datetime = MID_JANUARY,
    override: ProductOverride | None = None,
    invoice_id: str | None = None,
) -> UsageEntry:
    return UsageEntry(
        id=id_,
        contract_id="contract",
        component_id=component,
        quantity=D(quantity),
        due_date=due,
        transferred_at=due,
        override=override,
        invoice_id=invoice_id,
    )


def metered(pricing: Pricing, free_quota: str = "0", component: str = STORAGE) -> MeteredComponent:
    return MeteredComponent(component_id=component, pricing=pricing, free_quota=D(free_quota))


def rate_january(
    components: Sequence[MeteredComponent],
    entries: Sequence[UsageEntry],
    *,
    earlier: PeriodCharges | None = None,
    money: Currency = EUR,
) -> tuple[InvoiceLine, ...]:
    """The usage lines of an invoice of January 2026 billing `entries` now."""
    return rate_usage(
        components=components,
        currency=money,
        period_start=JANUARY_START,
        period_end=FEBRUARY_START,
        earlier=earlier or PeriodCharges(),
        entries=entries,
        descriptions={STORAGE: "Storage (GB)", CALLS: "API calls"},
    )


def only(lines: tuple[InvoiceLine, ...]) -> InvoiceLine:
    assert len(lines) == 1, lines
    return lines[0]


def eur_line(amount: str) -> InvoiceLine:
    return rated_item_line("Item", D(1), D(amount), EUR)


STORAGE_AT_0_10_WITH_100_FREE = metered(PerUnit(D("0.10")), free_quota="100")


# ---------------------------------------------------------------- pricing and free quota


def test_storage_130_gb_with_100_free_at_0_10_costs_3_00() -> None:
    line = only(rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "130")]))
    assert line.kind is LineKind.USAGE
    assert line.component_id == STORAGE
    assert line.description == "Storage (GB)"
    assert (line.quantity, line.free_quantity, line.billable_quantity) == (D(130), D(100), D(30))
    assert line.unit_price == D("0.10")
    assert line.tiers == (TierCharge(D(30), D("0.10"), D("3.00")),)
    assert str(line.amount) == "3.00"
    assert line.usage_ids == (1,)
    assert not line.late
    assert not line.override


def test_storage_80_gb_within_100_free_is_a_line_of_0_00_that_still_bills_its_entries() -> None:
    line = only(rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(7, "50"), usage(3, "30")]))
    assert (line.quantity, line.free_quantity, line.billable_quantity) == (D(80), D(80), D(0))
    assert line.tiers == ()
    assert str(line.amount) == "0.00"
    assert line.usage_ids == (3, 7)


def test_graduated_1500_calls_tiers_1000_at_0_01_then_0_005_costs_12_50() -> None:
    # 1000 x 0.01 + 500 x 0.005 = 10.00 + 2.50 = 12.50
    calls = metered(CALL_TIERS_1000_AT_0_01_THEN_0_005, component=CALLS)
    line = only(rate_january([calls], [usage(1, "1500", component=CALLS)]))
    assert line.tiers == (
        TierCharge(D(1000), D("0.01"), D("10.00")),
        TierCharge(D(500), D("0.005"), D("2.500")),
    )
    assert line.unit_price is None
    assert str(line.amount) == "12.50"


def test_package_250_units_in_packages_of_100_at_5_00_costs_three_packages_15_00() -> None:
    line = only(rate_january([metered(Package(D(100), D("5.00")))], [usage(1, "250")]))
    assert line.tiers == (TierCharge(D(3), D("5.00"), D("15.00")),)
    assert str(line.amount) == "15.00"


def test_entries_of_one_component_are_summed_into_one_line_per_invoice() -> None:
    line = only(rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "60"), usage(2, "70")]))
    assert line.quantity == D(130)
    assert str(line.amount) == "3.00"
    assert line.usage_ids == (1, 2)


def test_lines_follow_the_plan_variants_component_order_and_skip_components_without_usage() -> None:
    calls = metered(PerUnit(D("0.01")), component=CALLS)
    unused = metered(PerUnit(D(1)), component="unused")
    lines = rate_january(
        [calls, unused, STORAGE_AT_0_10_WITH_100_FREE],
        [usage(1, "130"), usage(2, "200", component=CALLS)],
    )
    assert [(line.component_id, str(line.amount)) for line in lines] == [
        (CALLS, "2.00"),
        (STORAGE, "3.00"),
    ]


# ---------------------------------------------------------------- late usage


def test_late_usage_30_gb_at_0_10_costs_3_00_without_the_100_gb_free_quota() -> None:
    line = only(rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "30", due=LAST_DECEMBER)]))
    assert line.late
    assert line.description == "Storage (GB) (late usage)"
    assert (line.quantity, line.free_quantity, line.billable_quantity) == (D(30), D(0), D(30))
    assert str(line.amount) == "3.00"


def test_late_usage_is_a_separate_line_and_leaves_the_current_free_quota_untouched() -> None:
    lines = rate_january(
        [STORAGE_AT_0_10_WITH_100_FREE],
        [usage(1, "30", due=LAST_DECEMBER), usage(2, "100")],
    )
    current, late = lines
    assert (current.late, current.free_quantity, str(current.amount)) == (False, D(100), "0.00")
    assert (late.late, late.usage_ids, str(late.amount)) == (True, (1,), "3.00")


def test_late_entries_of_several_past_periods_are_rated_together_on_their_own_quantity() -> None:
    # 600 late calls from November and 600 from December: 1200 calls on one late line,
    # 1000 x 0.01 + 200 x 0.005 = 11.00 (not two lines of 6.00 each).
    calls = metered(CALL_TIERS_1000_AT_0_01_THEN_0_005, free_quota="5000", component=CALLS)
    november = datetime(2025, 11, 10, tzinfo=UTC)
    line = only(
        rate_january(
            [calls],
            [
                usage(1, "600", component=CALLS, due=november),
                usage(2, "600", component=CALLS, due=LAST_DECEMBER),
            ],
        )
    )
    assert line.late
    assert str(line.amount) == "11.00"
    assert line.usage_ids == (1, 2)


def test_usage_due_exactly_at_the_periods_start_is_current_not_late() -> None:
    line = only(rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "30", due=JANUARY_START)]))
    assert not line.late
    assert str(line.amount) == "0.00"


def test_late_lines_do_not_count_toward_the_periods_free_quota() -> None:
    late = rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "90", due=LAST_DECEMBER)])
    assert PeriodCharges.of_lines(late).for_component(STORAGE).quantity == D(0)


# ---------------------------------------------------------------- interim invoices share a period


def test_interim_then_regular_share_the_free_quota_60_gb_free_then_70_gb_costs_3_00() -> None:
    components = [STORAGE_AT_0_10_WITH_100_FREE]
    interim = only(rate_january(components, [usage(1, "60")]))
    assert (interim.free_quantity, str(interim.amount)) == (D(60), "0.00")

    regular = only(
        rate_january(components, [usage(2, "70")], earlier=PeriodCharges.of_lines([interim]))
    )
    # 130 GB in the period, 100 free: 30 x 0.10 = 3.00, of which nothing was charged yet.
    assert (regular.quantity, regular.free_quantity, regular.billable_quantity) == (
        D(70),
        D(40),
        D(30),
    )
    assert str(regular.amount) == "3.00"


def test_free_quota_is_never_granted_twice_once_used_up_by_an_interim_invoice() -> None:
    components = [STORAGE_AT_0_10_WITH_100_FREE]
    interim = only(rate_january(components, [usage(1, "120")]))
    regular = only(
        rate_january(components, [usage(2, "50")], earlier=PeriodCharges.of_lines([interim]))
    )
    assert str(interim.amount) == "2.00"  # 20 x 0.10
    assert (regular.free_quantity, str(regular.amount)) == (D(0), "5.00")  # 50 x 0.10


def test_interim_then_regular_share_the_graduated_tier_position() -> None:
    # 600 calls first: 600 x 0.01 = 6.00. Then 900 more: the period's 1500 calls cost
    # 12.50, so 6.50 now = 400 x 0.01 (rest of tier one) + 500 x 0.005 (tier two).
    calls = [metered(CALL_TIERS_1000_AT_0_01_THEN_0_005, component=CALLS)]
    interim = only(rate_january(calls, [usage(1, "600", component=CALLS)]))
    regular = only(
        rate_january(
            calls, [usage(2, "900", component=CALLS)], earlier=PeriodCharges.of_lines([interim])
        )
    )
    assert str(interim.amount) == "6.00"
    assert regular.tiers == (
        TierCharge(D(400), D("0.01"), D("4.00")),
        TierCharge(D(500), D("0.005"), D("2.500")),
    )
    assert str(regular.amount) == "6.50"


def test_a_volume_tier_reached_by_a_later_invoice_reprices_the_period_with_a_negative_line() -> (
    None
):
    # Volume: up to 100 units at 0.10, beyond at 0.02. The interim 90 units cost 9.00.
    # The regular invoice adds 20: the period's 110 units all cost 0.02, 2.20 in total,
    # so this invoice charges 2.20 - 9.00 = -6.80.
    volume = [metered(Volume((Tier(D(100), D("0.10")), Tier(None, D("0.02")))))]
    interim = only(rate_january(volume, [usage(1, "90")]))
    regular = only(
        rate_january(volume, [usage(2, "20")], earlier=PeriodCharges.of_lines([interim]))
    )
    assert str(interim.amount) == "9.00"
    assert regular.tiers == (
        TierCharge(D(-90), D("0.10"), D("-9.00")),
        TierCharge(D(110), D("0.02"), D("2.20")),
    )
    assert str(regular.amount) == "-6.80"
    # Each line names the tier of the period's total so far: 90 units, then 110.
    assert (interim.unit_price, regular.unit_price) == (D("0.10"), D("0.02"))


def test_a_later_invoice_within_the_same_volume_tier_charges_only_the_added_units() -> None:
    volume = [metered(Volume((Tier(D(100), D("0.10")), Tier(None, D("0.02")))))]
    interim = only(rate_january(volume, [usage(1, "40")]))
    regular = only(
        rate_january(volume, [usage(2, "50")], earlier=PeriodCharges.of_lines([interim]))
    )
    assert regular.tiers == (TierCharge(D(50), D("0.10"), D("5.00")),)
    assert str(regular.amount) == "5.00"


def test_a_package_started_by_an_interim_invoice_is_not_charged_again() -> None:
    # 50 units start the first package of 100 (5.00); 50 more fill it: 0.00 now.
    packages = [metered(Package(D(100), D("5.00")))]
    interim = only(rate_january(packages, [usage(1, "50")]))
    regular = only(
        rate_january(packages, [usage(2, "50")], earlier=PeriodCharges.of_lines([interim]))
    )
    assert (str(interim.amount), str(regular.amount)) == ("5.00", "0.00")
    assert regular.tiers == ()


def test_ten_interim_invoices_of_one_unit_at_0_001_charge_0_01_like_one_invoice_of_ten() -> None:
    # Each unit alone rounds to 0.00; the running total rounds to 0.01 at the fifth.
    components = [metered(PerUnit(D("0.001")))]
    earlier = PeriodCharges()
    amounts = []
    for id_ in range(1, 11):
        line = only(rate_january(components, [usage(id_, "1")], earlier=earlier))
        earlier = earlier.after([line])
        amounts.append(str(line.amount))
    assert amounts == ["0.00"] * 4 + ["0.01"] + ["0.00"] * 5
    assert earlier.for_component(STORAGE).charged == D("0.01")
    assert earlier.for_component(STORAGE).quantity == D(10)


# ---------------------------------------------------------------- overrides


def test_override_usage_is_its_own_line_at_its_price_outside_free_quota_and_tiers() -> None:
    special = ProductOverride(price_per_unit=D(100), name="Migration", description="One-off")
    lines = rate_january(
        [STORAGE_AT_0_10_WITH_100_FREE],
        [usage(1, "50"), usage(2, "2.5", override=special)],
    )
    plan_priced, overridden = lines
    assert (plan_priced.quantity, str(plan_priced.amount)) == (D(50), "0.00")
    assert overridden.override
    assert overridden.description == "Migration - One-off"
    assert (overridden.quantity, overridden.free_quantity) == (D("2.5"), D(0))
    assert overridden.unit_price == D(100)
    assert str(overridden.amount) == "250.00"
    assert overridden.usage_ids == (2,)


def test_each_override_entry_gets_its_own_line_and_none_counts_toward_the_period() -> None:
    cheap = ProductOverride(price_per_unit=D("0.01"))
    lines = rate_january(
        [STORAGE_AT_0_10_WITH_100_FREE],
        [usage(1, "10", override=cheap), usage(2, "20", override=cheap)],
    )
    assert [(line.usage_ids, str(line.amount)) for line in lines] == [
        ((1,), "0.10"),
        ((2,), "0.20"),
    ]
    assert all(line.description == "Storage (GB)" for line in lines)
    assert PeriodCharges.of_lines(lines).for_component(STORAGE).quantity == D(0)


def test_an_override_without_a_price_is_rated_as_ordinary_usage() -> None:
    named = ProductOverride(name="Renamed")
    line = only(rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "130", override=named)]))
    assert not line.override
    assert str(line.amount) == "3.00"


def test_late_override_usage_is_marked_late_and_still_at_its_own_price() -> None:
    line = only(
        rate_january(
            [STORAGE_AT_0_10_WITH_100_FREE],
            [usage(1, "3", due=LAST_DECEMBER, override=ProductOverride(D(2)))],
        )
    )
    assert (line.late, line.override, str(line.amount)) == (True, True, "6.00")


# ---------------------------------------------------------------- which usage an invoice takes


def test_usage_due_exactly_at_next_billing_date_is_taken_by_the_regular_invoice() -> None:
    entries = [
        usage(1, "1", due=FEBRUARY_START),
        usage(2, "1", due=datetime(2026, 2, 2, tzinfo=UTC)),
    ]
    assert [e.id for e in select_for_invoice(entries, FEBRUARY_START)] == [1]


def test_an_invoice_never_takes_an_entry_that_is_already_billed() -> None:
    entries = [usage(1, "1", invoice_id="inv-1"), usage(2, "1")]
    assert [e.id for e in select_for_invoice(entries, FEBRUARY_START)] == [2]


def test_selected_entries_are_ordered_by_due_date_then_id() -> None:
    entries = [usage(3, "1"), usage(2, "1"), usage(1, "1", due=JANUARY_START)]
    assert [e.id for e in select_for_invoice(entries, FEBRUARY_START)] == [1, 2, 3]


def test_split_late_puts_usage_due_before_the_last_billing_date_apart() -> None:
    current, late = split_late(
        [usage(1, "1", due=LAST_DECEMBER), usage(2, "1", due=JANUARY_START), usage(3, "1")],
        JANUARY_START,
    )
    assert ([e.id for e in current], [e.id for e in late]) == ([2, 3], [1])


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([usage(1, "1", invoice_id="inv-1")], "already billed"),
        ([usage(1, "1"), usage(1, "2")], "twice"),
        ([usage(1, "1", due=datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC))], "after the period"),
        ([usage(1, "1", component="unknown")], "not in the plan variant"),
    ],
)
def test_rating_an_entry_the_invoice_may_not_take_is_a_programming_error(
    entries: list[UsageEntry], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rate_january([STORAGE_AT_0_10_WITH_100_FREE], entries)


# ---------------------------------------------------------------- usage summed before rating


def test_usage_is_summed_per_component_and_lateness_10_plus_20_5_current_and_5_late() -> None:
    premium = ProductOverride(D("2.50"), "Premium")
    summed = sum_usage(
        [
            usage(3, "20.5"),
            usage(1, "10"),
            usage(2, "5", due=LAST_DECEMBER),
            usage(4, "7", component=CALLS),
            usage(5, "1.5", override=premium),
        ],
        JANUARY_START,
    )
    assert summed.totals == (
        UsageTotal(STORAGE, False, D("30.5"), (1, 3)),
        UsageTotal(STORAGE, True, D("5"), (2,)),
        UsageTotal(CALLS, False, D("7"), (4,)),
    )
    assert [e.id for e in summed.overrides] == [5]
    assert sorted(summed.usage_ids) == [1, 2, 3, 4, 5]


def test_summed_usage_130_gb_with_100_free_at_0_10_rates_as_its_entries_3_00() -> None:
    entries = [usage(1, "100"), usage(2, "30")]
    summed = InvoiceUsage((UsageTotal(STORAGE, False, D("130"), (1, 2)),))
    lines = rate_totals(
        components=[STORAGE_AT_0_10_WITH_100_FREE],
        currency=EUR,
        period_start=JANUARY_START,
        earlier=PeriodCharges(),
        usage=summed,
        descriptions={STORAGE: "Storage (GB)"},
    )
    assert only(lines).amount == D("3.00")
    assert lines == rate_january([STORAGE_AT_0_10_WITH_100_FREE], entries)


@pytest.mark.parametrize(
    ("totals", "message"),
    [
        ((UsageTotal("unknown", False, D(1), (1,)),), "not in the plan variant"),
        (
            (UsageTotal(STORAGE, True, D(1), (1,)), UsageTotal(STORAGE, True, D(2), (2,))),
            "summed twice",
        ),
    ],
)
def test_rating_usage_summed_wrongly_is_a_programming_error(
    totals: tuple[UsageTotal, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        rate_totals(
            components=[STORAGE_AT_0_10_WITH_100_FREE],
            currency=EUR,
            period_start=JANUARY_START,
            earlier=PeriodCharges(),
            usage=InvoiceUsage(totals),
        )


# ---------------------------------------------------------------- fees and rated items


def test_recurring_fee_is_charged_once_for_the_whole_period() -> None:
    line = recurring_fee_line(D("9.90"), JANUARY_START, FEBRUARY_START, EUR)
    assert line.kind is LineKind.RECURRING_FEE
    assert (line.quantity, line.unit_price, str(line.amount)) == (D(1), D("9.90"), "9.90")
    assert line.description == "Recurring fee 2026-01-01 - 2026-02-01"


def test_final_billing_prorates_a_9_90_fee_to_3_30_for_10_of_30_days() -> None:
    start, end = datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    line = prorated_fee_line(D("9.90"), start, end, datetime(2026, 4, 11, tzinfo=UTC), EUR)
    assert str(line.amount) == "3.30"
    assert line.unit_price is None
    assert "2026-04-01 - 2026-04-11" in line.description


def test_a_prorated_fee_rounds_half_up_once_1_50_jpy_for_a_third_is_1_jpy() -> None:
    # 1.5 x 1/3 = 0.5 exactly, which rounds half-up to 1 (not 0.4999... to 0).
    start, end = datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 4, 4, tzinfo=UTC)
    line = prorated_fee_line(D("1.5"), start, end, datetime(2026, 4, 2, tzinfo=UTC), JPY)
    assert str(line.amount) == "1"


def test_a_final_invoice_ending_with_the_period_charges_the_whole_fee() -> None:
    line = prorated_fee_line(D("9.90"), JANUARY_START, FEBRUARY_START, FEBRUARY_START, EUR)
    assert str(line.amount) == "9.90"


def test_prorating_to_an_end_date_outside_the_period_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="outside"):
        prorated_fee_line(D(1), JANUARY_START, MID_JANUARY, FEBRUARY_START, EUR)


def test_rated_item_setup_1_at_49_costs_49_00() -> None:
    line = rated_item_line("Setup", D(1), D(49), EUR)
    assert line.kind is LineKind.RATED_ITEM
    assert (line.description, line.unit_price, str(line.amount)) == ("Setup", D(49), "49.00")
    assert line.component_id is None
    assert line.usage_ids == ()


# ---------------------------------------------------------------- currencies and rounding


def test_jpy_lines_round_to_whole_yen_3_units_at_0_5_is_2() -> None:
    line = only(rate_january([metered(PerUnit(D("0.5")))], [usage(1, "3")], money=JPY))
    assert str(line.amount) == "2"  # 1.5 rounds half-up


def test_kwd_lines_round_to_three_places_1_unit_at_1_2345_is_1_235() -> None:
    line = only(rate_january([metered(PerUnit(D("1.2345")))], [usage(1, "1")], money=KWD))
    assert str(line.amount) == "1.235"  # half-up; half-even would give 1.234


def test_a_line_amount_rounds_half_up_0_125_eur_is_0_13() -> None:
    assert str(rated_item_line("Half", D(1), D("0.125"), EUR).amount) == "0.13"


# ---------------------------------------------------------------- totals and tax


def test_tax_on_10_05_at_19_percent_is_1_9095_charged_half_up_as_1_91() -> None:
    totals = invoice_totals([eur_line("10.05")], D(19), EUR)
    assert (str(totals.subtotal), str(totals.tax_amount), str(totals.total)) == (
        "10.05",
        "1.91",
        "11.96",
    )


def test_tax_of_exactly_half_a_cent_rounds_up_0_50_at_1_percent_is_0_01() -> None:
    # 0.50 x 1 % = 0.005: half-up gives 0.01 where half-even would give 0.00.
    assert str(invoice_totals([eur_line("0.50")], D(1), EUR).tax_amount) == "0.01"


def test_subtotal_is_the_exact_sum_of_the_rounded_line_amounts() -> None:
    lines = [eur_line("0.13"), eur_line("0.13"), eur_line("0.13")]
    totals = invoice_totals(lines, D(0), EUR)
    assert (str(totals.subtotal), str(totals.tax_amount), str(totals.total)) == (
        "0.39",
        "0.00",
        "0.39",
    )


def test_an_invoice_without_lines_totals_0_00_in_its_currency() -> None:
    assert str(invoice_totals([], D(19), EUR).total) == "0.00"
    assert str(invoice_totals([], D(19), KWD).total) == "0.000"


def test_a_negative_subtotal_carries_a_negative_tax_rounded_half_up_away_from_zero() -> None:
    credit = replace(eur_line("0.00"), amount=D("-1.50"))
    totals = invoice_totals([eur_line("1.00"), credit], D(1), EUR)
    assert (str(totals.subtotal), str(totals.tax_amount)) == ("-0.50", "-0.01")


def test_totals_refuse_a_line_amount_that_is_not_rounded_to_the_currency() -> None:
    with pytest.raises(ValueError, match="not rounded"):
        invoice_totals([rated_item_line("X", D(1), D("1.234"), KWD)], D(0), EUR)


def test_the_customers_tax_rate_overrides_the_plan_variants() -> None:
    assert effective_tax_rate(D(7), D(19)) == D(7)
    assert effective_tax_rate(D(0), D(19)) == D(0)
    assert effective_tax_rate(None, D(19)) == D(19)


def test_a_drafted_invoice_carries_its_lines_and_totals() -> None:
    fee = recurring_fee_line(D("9.90"), JANUARY_START, FEBRUARY_START, EUR)
    usage_lines = rate_january([STORAGE_AT_0_10_WITH_100_FREE], [usage(1, "130")])
    invoice = draft_invoice(
        kind=InvoiceKind.REGULAR,
        currency=EUR,
        period_start=JANUARY_START,
        period_end=FEBRUARY_START,
        lines=[*usage_lines, fee],
        tax_rate=D(19),
    )
    # 3.00 + 9.90 = 12.90; 19 % of it is 2.451 -> 2.45; 12.90 + 2.45 = 15.35.
    assert (str(invoice.subtotal), str(invoice.tax_amount), str(invoice.total)) == (
        "12.90",
        "2.45",
        "15.35",
    )
    assert invoice.lines == (*usage_lines, fee)
    assert invoice.kind is InvoiceKind.REGULAR
