"""The four pricing models of SPEC §3: exact rating, and validation of their JSON."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arrears.domain.errors import Invalid
from arrears.domain.pricing import (
    MAX_TIERS,
    Charge,
    Graduated,
    Package,
    PerUnit,
    Pricing,
    Tier,
    TierCharge,
    Volume,
    billable_quantity,
    parse_pricing,
    price,
    pricing_to_json,
)

D = Decimal
STEP = D("0.000001")  # the smallest quantity: QUANTITY_PLACES = 6

TIERS_1000_AT_0_10_THEN_0_05 = (Tier(D(1000), D("0.10")), Tier(None, D("0.05")))


# ---------------------------------------------------------------- strategies


def _decimals(max_value: int, min_value: Decimal | int = 0) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=min_value,
        max_value=max_value,
        places=6,
        allow_nan=False,
        allow_infinity=False,
    )


quantities = _decimals(10**9)
prices = _decimals(10**4)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = draw(st.lists(_decimals(10**6, min_value=STEP), max_size=5, unique=True))
    tier_prices = draw(st.lists(prices, min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    ups: list[Decimal | None] = [*sorted(bounds), None]
    return tuple(Tier(up, p) for up, p in zip(ups, tier_prices, strict=True))


pricings: st.SearchStrategy[Pricing] = st.one_of(
    st.builds(PerUnit, prices),
    st.builds(Graduated, tier_lists()),
    st.builds(Volume, tier_lists()),
    st.builds(Package, _decimals(10**4, min_value=STEP), prices),
)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.sampled_from(["PerUnit", "Graduated", "Volume", "Package", "UpTo", ""]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["Model", "PricePerUnit", "Tiers", "UpTo", "PackageSize", "PricePerPackage", "X"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


def _errors(data: object, at: str = "") -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as caught:
        parse_pricing(data, at=at)
    return [(error.field, error.code) for error in caught.value.errors]


# ---------------------------------------------------------------- rating, by example


def test_per_unit_12_5_units_at_0_10_cost_1_25() -> None:
    assert price(PerUnit(D("0.10")), D("12.5")) == Charge(
        D("1.25"), (TierCharge(D("12.5"), D("0.10"), D("1.25")),)
    )


def test_graduated_1500_calls_with_tiers_1000_at_0_10_then_0_05_costs_125() -> None:
    charge = price(Graduated(TIERS_1000_AT_0_10_THEN_0_05), D(1500))
    assert charge.amount == D("125.00")
    assert charge.tiers == (
        TierCharge(D(1000), D("0.10"), D("100.00")),
        TierCharge(D(500), D("0.05"), D("25.00")),
    )


def test_graduated_exactly_1000_calls_stay_in_the_first_tier_and_cost_100() -> None:
    charge = price(Graduated(TIERS_1000_AT_0_10_THEN_0_05), D(1000))
    assert charge.tiers == (TierCharge(D(1000), D("0.10"), D("100.00")),)


def test_graduated_three_tiers_2500_units_cost_100_plus_50_plus_25_equals_175() -> None:
    tiers = (Tier(D(1000), D("0.10")), Tier(D(2000), D("0.05")), Tier(None, D("0.05")))
    charge = price(Graduated(tiers), D(2500))
    assert charge.amount == D(175)
    assert [t.quantity for t in charge.tiers] == [D(1000), D(1000), D(500)]


def test_volume_1000_calls_are_all_priced_in_the_tier_whose_up_to_is_1000_costing_100() -> None:
    charge = price(Volume(TIERS_1000_AT_0_10_THEN_0_05), D(1000))
    assert charge == Charge(D("100.00"), (TierCharge(D(1000), D("0.10"), D("100.00")),))


def test_volume_1001_calls_are_all_priced_at_0_05_costing_50_05() -> None:
    charge = price(Volume(TIERS_1000_AT_0_10_THEN_0_05), D(1001))
    assert charge == Charge(D("50.05"), (TierCharge(D(1001), D("0.05"), D("50.05")),))


@pytest.mark.parametrize(
    ("quantity", "packages", "amount"),
    [("250", 3, "15.00"), ("200", 2, "10.00"), ("0.5", 1, "5.00"), ("100.000001", 2, "10.00")],
)
def test_package_of_100_at_5_charges_every_started_package(
    quantity: str, packages: int, amount: str
) -> None:
    charge = price(Package(D(100), D("5.00")), D(quantity))
    assert charge == Charge(D(amount), (TierCharge(D(packages), D("5.00"), D(amount)),))


@pytest.mark.parametrize(
    "pricing",
    [
        PerUnit(D("0.10")),
        Graduated(TIERS_1000_AT_0_10_THEN_0_05),
        Volume(TIERS_1000_AT_0_10_THEN_0_05),
        Package(D(100), D(5)),
    ],
)
def test_a_quantity_of_0_costs_0_with_an_empty_breakdown(pricing: Pricing) -> None:
    assert price(pricing, D(0)) == Charge(D(0), ())


@pytest.mark.parametrize("quantity", ["-1", "-0.000001", "NaN", "Infinity"])
def test_pricing_a_negative_or_non_finite_quantity_is_a_programming_error(quantity: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        price(PerUnit(D(1)), D(quantity))


def test_rating_is_exact_far_beyond_28_significant_digits() -> None:
    # (10^15 - 10^-6) x 1234.567891 = 1234567891000000000 - 0.001234567891: 31 digits.
    charge = price(PerUnit(D("1234.567891")), D("999999999999999.999999"))
    assert str(charge.amount) == "1234567890999999999.998765432109"


@pytest.mark.parametrize(
    ("quantity", "free_quota", "billable"),
    [("150", "100", "50"), ("80", "100", "0"), ("100", "100", "0"), ("0.5", "0", "0.5")],
)
def test_billable_quantity_is_the_quantity_above_the_free_quota(
    quantity: str, free_quota: str, billable: str
) -> None:
    assert billable_quantity(D(quantity), D(free_quota)) == D(billable)


def test_billable_quantity_refuses_a_negative_free_quota() -> None:
    with pytest.raises(ValueError, match="free quota"):
        billable_quantity(D(10), D(-1))


@pytest.mark.parametrize(
    "tiers",
    [
        (),
        (Tier(D(10), D(1)),),
        (Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))),
        (Tier(None, D(1)), Tier(None, D(1))),
        (Tier(D(0), D(1)), Tier(None, D(1))),
        (Tier(None, D(-1)),),
    ],
)
def test_tiered_models_refuse_to_be_built_from_invalid_tiers(tiers: tuple[Tier, ...]) -> None:
    with pytest.raises(ValueError, match=r"tier|price"):
        Graduated(tiers)
    with pytest.raises(ValueError, match=r"tier|price"):
        Volume(tiers)


def test_a_package_of_size_0_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="package size"):
        Package(D(0), D(5))


# ---------------------------------------------------------------- rating, as properties


@given(pricings, quantities)
def test_every_model_charges_at_least_0_and_the_sum_of_its_breakdown_exactly(
    pricing: Pricing, quantity: Decimal
) -> None:
    charge = price(pricing, quantity)
    assert charge.amount >= 0
    assert charge.amount == sum((t.amount for t in charge.tiers), D(0))
    for tier in charge.tiers:
        assert tier.quantity > 0
        # Checked in rational arithmetic: the Decimal result is exact, not rounded.
        assert Fraction(tier.amount) == Fraction(tier.quantity) * Fraction(tier.unit_price)


@given(tier_lists(), quantities, quantities)
def test_graduated_amount_never_decreases_as_the_quantity_grows(
    tiers: tuple[Tier, ...], a: Decimal, b: Decimal
) -> None:
    low, high = sorted((a, b))
    assert price(Graduated(tiers), low).amount <= price(Graduated(tiers), high).amount


@given(tier_lists(), quantities)
def test_graduated_breakdown_quantities_add_up_to_the_quantity(
    tiers: tuple[Tier, ...], quantity: Decimal
) -> None:
    charge = price(Graduated(tiers), quantity)
    assert sum((t.quantity for t in charge.tiers), D(0)) == quantity


@given(tier_lists(), st.data())
def test_volume_at_a_tier_bound_uses_that_tier_and_one_step_past_uses_the_next(
    tiers: tuple[Tier, ...], data: st.DataObject
) -> None:
    bounded = [i for i, tier in enumerate(tiers) if tier.up_to is not None]
    if not bounded:
        return
    index = data.draw(st.sampled_from(bounded))
    bound = tiers[index].up_to
    assert bound is not None
    [at_bound] = price(Volume(tiers), bound).tiers
    [past_bound] = price(Volume(tiers), bound + STEP).tiers
    assert at_bound.unit_price == tiers[index].price_per_unit
    assert past_bound.unit_price == tiers[index + 1].price_per_unit


@given(_decimals(10**4, min_value=STEP), prices, _decimals(10**9, min_value=STEP))
def test_package_charges_the_fewest_whole_packages_that_cover_the_quantity(
    size: Decimal, package_price: Decimal, quantity: Decimal
) -> None:
    [packages] = price(Package(size, package_price), quantity).tiers
    assert packages.quantity == packages.quantity.to_integral_value()
    assert packages.quantity * size >= quantity
    assert (packages.quantity - 1) * size < quantity


@given(pricings)
def test_rendered_pricing_parses_back_to_the_same_pricing(pricing: Pricing) -> None:
    assert parse_pricing(pricing_to_json(pricing)) == pricing


# ---------------------------------------------------------------- parsing


def test_graduated_json_of_spec_section_3_parses() -> None:
    data = {
        "Model": "Graduated",
        "Tiers": [
            {"UpTo": D(1000), "PricePerUnit": D("0.10")},
            {"UpTo": None, "PricePerUnit": D("0.05")},
        ],
    }
    assert parse_pricing(data) == Graduated(TIERS_1000_AT_0_10_THEN_0_05)
    assert pricing_to_json(parse_pricing(data)) == data


def test_package_json_with_int_numbers_parses_to_decimals() -> None:
    pricing = parse_pricing({"Model": "Package", "PackageSize": 100, "PricePerPackage": 5})
    assert pricing == Package(D(100), D(5))
    assert isinstance(pricing, Package)
    assert isinstance(pricing.package_size, Decimal)


def test_trailing_zeros_do_not_count_as_decimal_places() -> None:
    assert parse_pricing({"Model": "PerUnit", "PricePerUnit": D("0.1000000000")}) == PerUnit(
        D("0.1")
    )


def test_a_float_price_is_rejected_because_floats_never_reach_money() -> None:
    with pytest.raises(Invalid) as caught:
        parse_pricing({"Model": "PerUnit", "PricePerUnit": 0.1})
    [error] = caught.value.errors
    assert (error.field, error.code) == ("PricePerUnit", "not_a_decimal")
    assert "floating-point" in error.message


@pytest.mark.parametrize("value", [True, "1_000", "0.1 ", None, [1], {"Amount": 1}])
def test_a_price_that_is_not_a_decimal_or_int_is_rejected(value: object) -> None:
    assert _errors({"Model": "PerUnit", "PricePerUnit": value}) == [
        ("PricePerUnit", "not_a_decimal")
    ]


@pytest.mark.parametrize("value", ["NaN", "-Infinity", "Infinity", "sNaN"])
def test_nan_and_infinity_are_rejected(value: str) -> None:
    assert _errors({"Model": "PerUnit", "PricePerUnit": D(value)}) == [
        ("PricePerUnit", "not_a_decimal")
    ]
    assert _errors({"Model": "PerUnit", "PricePerUnit": value}) == [
        ("PricePerUnit", "not_a_decimal")
    ]


def test_a_price_sent_as_a_string_of_the_decimal_grammar_is_taken_exactly() -> None:
    assert parse_pricing({"Model": "PerUnit", "PricePerUnit": "0.10"}) == PerUnit(D("0.10"))


def test_a_tier_list_with_two_problems_yields_both_errors() -> None:
    data = {
        "Model": "Graduated",
        "Tiers": [
            {"UpTo": 1000, "PricePerUnit": D("-0.10")},
            {"UpTo": 500, "PricePerUnit": D("0.05")},
            {"UpTo": None, "PricePerUnit": D("0.01")},
        ],
    }
    assert _errors(data) == [
        ("Tiers[0].PricePerUnit", "negative"),
        ("Tiers[1].UpTo", "not_ascending"),
    ]


def test_every_bad_field_of_a_pricing_is_named_at_once() -> None:
    data = {
        "Model": "Volume",
        "Colour": "blue",
        "Tiers": [
            {"UpTo": None, "PricePerUnit": D("0.1234567")},
            {"UpTo": D("10.0000001"), "Price": 1},
            {"UpTo": D(5), "PricePerUnit": 0.5},
            "tier",
            {"PricePerUnit": D(1)},
        ],
    }
    assert _errors(data) == [
        ("Colour", "unknown_field"),
        ("Tiers[0].PricePerUnit", "too_many_decimals"),
        ("Tiers[0].UpTo", "open_tier_not_last"),
        ("Tiers[1].Price", "unknown_field"),
        ("Tiers[1].PricePerUnit", "required"),
        ("Tiers[1].UpTo", "too_many_decimals"),
        ("Tiers[2].PricePerUnit", "not_a_decimal"),
        ("Tiers[3]", "not_an_object"),
        ("Tiers[4].UpTo", "required"),
    ]


def test_a_bad_model_is_reported_together_with_the_bad_values_of_known_fields() -> None:
    data = {"Model": "Tiered", "PricePerUnit": D(-1), "PackageSize": D(0)}
    assert _errors(data) == [
        ("Model", "unknown_model"),
        ("PricePerUnit", "negative"),
        ("PackageSize", "not_positive"),
    ]


def test_a_missing_model_is_required() -> None:
    assert _errors({"PricePerUnit": D(1)}) == [("Model", "required")]


def test_a_field_of_another_model_is_unknown_for_this_one() -> None:
    data = {"Model": "PerUnit", "PricePerUnit": D(1), "PackageSize": D(100)}
    assert _errors(data) == [("PackageSize", "unknown_field")]


@pytest.mark.parametrize(
    ("model", "missing"),
    [
        ("PerUnit", ["PricePerUnit"]),
        ("Graduated", ["Tiers"]),
        ("Volume", ["Tiers"]),
        ("Package", ["PackageSize", "PricePerPackage"]),
    ],
)
def test_each_model_requires_its_own_fields(model: str, missing: list[str]) -> None:
    assert _errors({"Model": model}) == [(name, "required") for name in missing]


def test_tiers_ending_in_a_bounded_tier_miss_the_open_tier() -> None:
    data = {"Model": "Graduated", "Tiers": [{"UpTo": 10, "PricePerUnit": 1}]}
    assert _errors(data) == [("Tiers", "missing_open_tier")]


def test_an_empty_tier_list_misses_the_open_tier() -> None:
    assert _errors({"Model": "Volume", "Tiers": []}) == [("Tiers", "missing_open_tier")]


@pytest.mark.parametrize("tiers", ["1000", {"UpTo": None, "PricePerUnit": 1}, 7])
def test_tiers_must_be_a_list(tiers: object) -> None:
    assert _errors({"Model": "Volume", "Tiers": tiers}) == [("Tiers", "not_a_list")]


def test_more_than_100_tiers_are_refused_without_an_error_per_tier() -> None:
    tiers = [{"UpTo": -1, "PricePerUnit": 1}] * (MAX_TIERS + 1)
    assert _errors({"Model": "Graduated", "Tiers": tiers}) == [("Tiers", "too_many")]


def test_equal_bounds_are_not_ascending_and_a_0_bound_is_not_positive() -> None:
    data = {
        "Model": "Graduated",
        "Tiers": [
            {"UpTo": 0, "PricePerUnit": 1},
            {"UpTo": 10, "PricePerUnit": 1},
            {"UpTo": 10, "PricePerUnit": 1},
            {"UpTo": None, "PricePerUnit": 1},
        ],
    }
    assert _errors(data) == [("Tiers[0].UpTo", "not_positive"), ("Tiers[2].UpTo", "not_ascending")]


def test_a_price_of_10_to_the_12_is_too_large_and_one_below_is_fine() -> None:
    assert _errors({"Model": "PerUnit", "PricePerUnit": D(10) ** 12}) == [
        ("PricePerUnit", "too_large")
    ]
    below = D("999999999999.999999")
    assert parse_pricing({"Model": "PerUnit", "PricePerUnit": below}) == PerUnit(below)


def test_a_negative_price_with_7_places_breaks_two_rules_on_one_field() -> None:
    assert _errors({"Model": "PerUnit", "PricePerUnit": D("-0.0000001")}) == [
        ("PricePerUnit", "negative"),
        ("PricePerUnit", "too_many_decimals"),
    ]


def test_a_price_of_0_is_allowed() -> None:
    assert parse_pricing({"Model": "PerUnit", "PricePerUnit": 0}) == PerUnit(D(0))


def test_paths_are_prefixed_with_the_position_of_the_pricing() -> None:
    at = "MeteredComponents[2].Pricing"
    assert _errors({"Model": "Package", "PackageSize": -5}, at=at) == [
        (f"{at}.PricePerPackage", "required"),
        (f"{at}.PackageSize", "not_positive"),
    ]


@pytest.mark.parametrize("data", ["PerUnit", None, [{"Model": "PerUnit"}], 3])
def test_a_pricing_that_is_not_an_object_is_reported_on_its_own_path(data: object) -> None:
    assert _errors(data, at="Pricing") == [("Pricing", "not_an_object")]


@given(json_values)
def test_any_json_value_parses_to_a_pricing_or_raises_invalid_and_nothing_else(
    data: object,
) -> None:
    try:
        parse_pricing(data)
    except Invalid as invalid:
        errors = invalid.errors
    else:
        return
    assert errors
