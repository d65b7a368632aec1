"""Billing periods anchored at the contract start (SPEC §4), and proration (SPEC §7)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.errors import Invalid
from arrears.domain.money import currency, round_amount
from arrears.domain.periods import (
    MAX_PERIOD_QUANTITY,
    BillingPeriod,
    PeriodUnit,
    billing_period_to_json,
    fraction_of_period,
    next_boundary_after,
    parse_billing_period,
    period_boundary,
    period_index_at,
    prorate,
)

D = Decimal
MONTHLY = BillingPeriod(PeriodUnit.MONTH, 1)
QUARTERLY = BillingPeriod(PeriodUnit.MONTH, 3)
YEARLY = BillingPeriod(PeriodUnit.YEAR, 1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def boundaries(anchor: datetime, period: BillingPeriod, count: int) -> list[str]:
    return [period_boundary(anchor, period, n).date().isoformat() for n in range(count + 1)]


# ---------------------------------------------------------------- boundaries, by example


def test_monthly_from_2027_01_31_clamps_to_month_ends_for_24_months_without_drift() -> None:
    assert boundaries(utc(2027, 1, 31), MONTHLY, 24) == [
        "2027-01-31",
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
        "2027-05-31",
        "2027-06-30",
        "2027-07-31",
        "2027-08-31",
        "2027-09-30",
        "2027-10-31",
        "2027-11-30",
        "2027-12-31",
        "2028-01-31",
        "2028-02-29",
        "2028-03-31",
        "2028-04-30",
        "2028-05-31",
        "2028-06-30",
        "2028-07-31",
        "2028-08-31",
        "2028-09-30",
        "2028-10-31",
        "2028-11-30",
        "2028-12-31",
        "2029-01-31",
    ]


def test_monthly_from_2028_01_31_renews_on_leap_day_2028_02_29() -> None:
    assert period_boundary(utc(2028, 1, 31), MONTHLY, 1) == utc(2028, 2, 29)


def test_monthly_from_2028_02_29_keeps_the_29th_and_renews_on_2028_03_29() -> None:
    assert boundaries(utc(2028, 2, 29), MONTHLY, 2) == ["2028-02-29", "2028-03-29", "2028-04-29"]


def test_yearly_from_leap_day_2028_02_29_renews_on_feb_28_and_again_on_2032_02_29() -> None:
    assert boundaries(utc(2028, 2, 29), YEARLY, 4) == [
        "2028-02-29",
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]


def test_quarterly_from_2026_11_30_renews_on_feb_28_then_the_30th_again() -> None:
    assert boundaries(utc(2026, 11, 30), QUARTERLY, 4) == [
        "2026-11-30",
        "2027-02-28",
        "2027-05-30",
        "2027-08-30",
        "2027-11-30",
    ]


def test_every_2_weeks_from_thursday_2026_01_01_renews_on_jan_15_and_jan_29() -> None:
    assert boundaries(utc(2026, 1, 1), BillingPeriod(PeriodUnit.WEEK, 2), 2) == [
        "2026-01-01",
        "2026-01-15",
        "2026-01-29",
    ]


def test_daily_from_2026_02_28_renews_on_march_1_and_keeps_the_time_of_day() -> None:
    daily = BillingPeriod(PeriodUnit.DAY, 1)
    assert period_boundary(utc(2026, 2, 28, 9, 30), daily, 1) == utc(2026, 3, 1, 9, 30)


def test_monthly_keeps_the_anchor_time_of_day() -> None:
    assert period_boundary(utc(2026, 1, 31, 23, 59), MONTHLY, 1) == utc(2026, 2, 28, 23, 59)


def test_boundary_0_is_the_anchor_and_negative_n_counts_back_from_it() -> None:
    anchor = utc(2026, 3, 31)
    assert period_boundary(anchor, MONTHLY, 0) == anchor
    assert period_boundary(anchor, MONTHLY, -1) == utc(2026, 2, 28)
    assert period_boundary(anchor, MONTHLY, -2) == utc(2026, 1, 31)


def test_a_boundary_past_the_year_9999_overflows() -> None:
    with pytest.raises(OverflowError):
        period_boundary(utc(9999, 6, 1), YEARLY, 1)


def test_a_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        period_boundary(datetime(2026, 1, 1), MONTHLY, 1)  # noqa: DTZ001 - the point


def test_an_anchor_at_a_non_utc_offset_is_refused() -> None:
    cest = timezone(timedelta(hours=2))
    with pytest.raises(ValueError, match="UTC"):
        period_boundary(datetime(2026, 1, 1, tzinfo=cest), MONTHLY, 1)


def test_any_zero_offset_zone_counts_as_utc_and_the_result_is_in_utc() -> None:
    anchor = datetime(2026, 1, 31, tzinfo=timezone(timedelta(0)))
    boundary = period_boundary(anchor, MONTHLY, 1)
    assert boundary == utc(2026, 2, 28)
    assert boundary.tzinfo is UTC


# ---------------------------------------------------------------- which period holds an instant


def test_the_instant_of_a_boundary_opens_the_next_period() -> None:
    anchor = utc(2026, 1, 31)
    assert period_index_at(anchor, MONTHLY, utc(2026, 2, 28)) == 1
    assert period_index_at(anchor, MONTHLY, utc(2026, 2, 28) - timedelta(microseconds=1)) == 0


def test_march_1_to_30_lie_in_the_period_that_began_feb_28_for_an_anchor_on_the_31st() -> None:
    anchor = utc(2026, 1, 31)
    assert period_index_at(anchor, MONTHLY, utc(2026, 3, 1)) == 1
    assert period_index_at(anchor, MONTHLY, utc(2026, 3, 30, 23, 59)) == 1
    assert period_index_at(anchor, MONTHLY, utc(2026, 3, 31)) == 2


def test_instants_before_the_anchor_lie_in_negative_periods() -> None:
    anchor = utc(2026, 1, 31)
    assert period_index_at(anchor, MONTHLY, utc(2025, 12, 31)) == -1
    assert period_index_at(anchor, MONTHLY, utc(2025, 12, 30)) == -2
    assert period_index_at(anchor, BillingPeriod(PeriodUnit.DAY, 1), utc(2026, 1, 30, 12)) == -1


def test_next_boundary_after_a_boundary_is_the_following_one() -> None:
    anchor = utc(2026, 1, 31)
    assert next_boundary_after(anchor, MONTHLY, utc(2026, 2, 28)) == utc(2026, 3, 31)
    assert next_boundary_after(anchor, MONTHLY, utc(2026, 2, 1)) == utc(2026, 2, 28)


def test_index_60_000_days_out_is_found_without_walking_there() -> None:
    # 1000-day periods: about 60 periods in 164 years, found arithmetically.
    period = BillingPeriod(PeriodUnit.DAY, MAX_PERIOD_QUANTITY)
    anchor = utc(2000, 1, 1)
    assert period_index_at(anchor, period, anchor + timedelta(days=60_000)) == 60


def test_the_period_holding_the_last_representable_year_is_found() -> None:
    assert period_index_at(utc(2000, 1, 1), YEARLY, utc(9999, 12, 31)) == 7999


# ---------------------------------------------------------------- boundaries, as properties

anchors = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2100, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)
periods = st.builds(BillingPeriod, st.sampled_from(PeriodUnit), st.integers(1, 12))
indexes = st.integers(-100, 100)


def expected_boundary(anchor: datetime, period: BillingPeriod, n: int) -> datetime:
    """An independent oracle: calendar arithmetic with the clamping rule of SPEC §4."""
    if period.unit in (PeriodUnit.DAY, PeriodUnit.WEEK):
        days = 7 if period.unit is PeriodUnit.WEEK else 1
        return anchor + timedelta(days=days * period.quantity * n)
    months = period.quantity * n * (12 if period.unit is PeriodUnit.YEAR else 1)
    year, month0 = divmod(anchor.year * 12 + anchor.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return anchor.replace(year=year, month=month0 + 1, day=min(anchor.day, last_day))


@given(anchors, periods, indexes)
def test_boundary_n_is_the_anchor_plus_n_periods_with_the_day_clamped(
    anchor: datetime, period: BillingPeriod, n: int
) -> None:
    assert period_boundary(anchor, period, n) == expected_boundary(anchor, period, n)


@given(anchors, periods, indexes)
def test_boundaries_strictly_increase_and_each_opens_the_period_with_its_index(
    anchor: datetime, period: BillingPeriod, n: int
) -> None:
    boundary = period_boundary(anchor, period, n)
    following = period_boundary(anchor, period, n + 1)
    assert boundary < following
    assert period_index_at(anchor, period, boundary) == n
    assert period_index_at(anchor, period, following - timedelta(microseconds=1)) == n
    assert next_boundary_after(anchor, period, boundary) == following


@given(anchors, periods, anchors)
def test_any_instant_lies_between_the_boundaries_of_its_period(
    anchor: datetime, period: BillingPeriod, instant: datetime
) -> None:
    n = period_index_at(anchor, period, instant)
    assert period_boundary(anchor, period, n) <= instant < period_boundary(anchor, period, n + 1)


# ---------------------------------------------------------------- proration


def test_10_days_of_a_30_day_period_are_a_third_to_34_digits() -> None:
    fraction = fraction_of_period(utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 4, 11))
    assert fraction == D("0.3333333333333333333333333333333333")


def test_half_of_a_period_is_exactly_0_5() -> None:
    assert fraction_of_period(utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 4, 16)) == D("0.5")


def test_14_days_of_leap_february_2028_are_14_29ths() -> None:
    fraction = fraction_of_period(utc(2028, 2, 1), utc(2028, 3, 1), utc(2028, 2, 15))
    assert abs(Fraction(fraction) - Fraction(14, 29)) < Fraction(1, 10**33)


def test_a_cut_outside_the_period_clamps_the_fraction_to_0_or_1() -> None:
    start, end = utc(2026, 4, 1), utc(2026, 5, 1)
    assert fraction_of_period(start, end, utc(2026, 3, 1)) == 0
    assert fraction_of_period(start, end, utc(2026, 6, 1)) == 1


def test_a_period_that_does_not_end_after_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="end after"):
        fraction_of_period(utc(2026, 4, 1), utc(2026, 4, 1), utc(2026, 4, 1))


def test_a_1_50_jpy_fee_for_a_third_of_a_period_prorates_to_exactly_0_5_and_rounds_to_1() -> None:
    fee = prorate(D("1.5"), utc(2026, 4, 1), utc(2026, 5, 1), utc(2026, 4, 11))
    assert fee == D("0.5")
    assert round_amount(fee, currency("JPY")) == 1


def test_a_30_eur_fee_for_10_of_31_days_in_january_is_9_68() -> None:
    fee = prorate(D(30), utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 1, 11))
    assert round_amount(fee, currency("EUR")) == D("9.68")


@given(anchors, anchors, anchors, st.decimals(min_value=0, max_value=10**9, places=6))
def test_prorated_amount_is_the_exact_share_within_34_digits(
    a: datetime, b: datetime, cut: datetime, amount: Decimal
) -> None:
    start, end = sorted((a, b))
    if start == end:
        return
    microsecond = timedelta(microseconds=1)
    share = Fraction(
        (min(max(cut, start), end) - start) // microsecond, (end - start) // microsecond
    )
    fraction = fraction_of_period(start, end, cut)
    assert 0 <= fraction <= 1
    assert abs(Fraction(fraction) - share) <= Fraction(1, 10**33)
    assert abs(Fraction(prorate(amount, start, end, cut)) - share * Fraction(amount)) <= Fraction(
        10**9, 10**33
    )


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("data", "period"),
    [
        ({"Unit": "Month", "Quantity": 1}, MONTHLY),
        ({"Unit": "Month", "Quantity": 3}, QUARTERLY),
        ({"Unit": "Week", "Quantity": D("2.0")}, BillingPeriod(PeriodUnit.WEEK, 2)),
        ({"Unit": "Day", "Quantity": 1000}, BillingPeriod(PeriodUnit.DAY, 1000)),
    ],
)
def test_billing_periods_of_spec_section_3_parse(data: dict[str, object], period: object) -> None:
    assert parse_billing_period(data) == period


@given(periods)
def test_rendered_billing_period_parses_back_to_the_same_period(period: BillingPeriod) -> None:
    assert parse_billing_period(billing_period_to_json(period)) == period


def period_errors(data: object, at: str = "") -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as caught:
        parse_billing_period(data, at=at)
    return [(error.field, error.code) for error in caught.value.errors]


def test_every_bad_field_of_a_billing_period_is_named_at_once() -> None:
    assert period_errors({"Unit": "month", "Quantity": 0, "Every": 1}, at="BillingPeriod") == [
        ("BillingPeriod.Every", "unknown_field"),
        ("BillingPeriod.Unit", "unknown_unit"),
        ("BillingPeriod.Quantity", "not_positive"),
    ]


def test_unit_and_quantity_are_required() -> None:
    assert period_errors({}) == [("Unit", "required"), ("Quantity", "required")]


@pytest.mark.parametrize("quantity", [1.0, True, D("1.5"), D("NaN"), "1", None])
def test_a_quantity_that_is_not_a_whole_number_is_rejected(quantity: object) -> None:
    assert period_errors({"Unit": "Day", "Quantity": quantity}) == [("Quantity", "not_an_integer")]


def test_a_quantity_of_1001_is_too_large() -> None:
    assert period_errors({"Unit": "Year", "Quantity": 1001}) == [("Quantity", "too_large")]


@pytest.mark.parametrize("unit", ["Quarter", "MONTH", 1, None])
def test_an_unknown_unit_is_rejected(unit: object) -> None:
    assert period_errors({"Unit": unit, "Quantity": 1}) == [("Unit", "unknown_unit")]


def test_a_billing_period_that_is_not_an_object_is_reported_on_its_own_path() -> None:
    assert period_errors("Monthly", at="BillingPeriod") == [("BillingPeriod", "not_an_object")]


@pytest.mark.parametrize("quantity", [0, -1, 1001])
def test_a_billing_period_cannot_be_built_with_quantity_outside_1_to_1000(quantity: int) -> None:
    with pytest.raises(ValueError, match="quantity"):
        BillingPeriod(PeriodUnit.MONTH, quantity)


@given(
    st.none()
    | st.dictionaries(
        st.sampled_from(["Unit", "Quantity", "X"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.decimals()
        | st.sampled_from(["Day", "Week", "Month", "Year"])
        | st.lists(st.integers(), max_size=2),
    )
)
def test_any_json_value_parses_to_a_billing_period_or_raises_invalid_and_nothing_else(
    data: object,
) -> None:
    try:
        parse_billing_period(data)
    except Invalid as invalid:
        errors = invalid.errors
    else:
        return
    assert errors
