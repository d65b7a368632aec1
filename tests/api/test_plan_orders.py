"""SPEC §11 through orders, on SQLite and PostgreSQL: plan changes, quantity
components, discounts and coupons, billed on regular invoices. Periods of 30 days are
April 2026 (a monthly contract from April 1). Amounts as written in the JSON (20.00)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    Metered,
    app_without_worker,
    bill_at,
    bill_interim_at,
    invoices_of,
    move_clock,
    only_invoice,
    per_unit,
    post_usage,
    send_json,
    totals,
)
from tests.ingest_factories import exact
from tests.plan_factories import (
    amounts,
    new_catalog,
    new_contract,
    new_variant,
    ordered,
    place_order,
)
from tests.threads import all_at_once

APRIL = "2026-04-01T00:00:00Z"
MAY = "2026-05-01T00:00:00Z"


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _errors(response: Any) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(e["field"], e["code"]) for e in response.json()["errors"]}


# -- plan changes -------------------------------------------------------------------------


def test_a_plan_change_on_day_11_of_30_prorates_fees_to_10_and_40_and_free_quotas_to_a_third(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    small = new_variant(
        client, catalog, Metered(pricing=per_unit("0.10"), free_quota="100"), RecurringFee="30.00"
    )
    large = new_variant(
        client,
        catalog,
        Metered(pricing=per_unit("0.05"), free_quota="500"),
        name="Large",
        RecurringFee="60.00",
    )
    move_clock(client, APRIL)
    contract = new_contract(client, catalog, small, start=APRIL)
    ordered(client, contract, {"PlanVariantId": large}, ChangeDate="2026-04-11T00:00:00Z")
    post_usage(client, contract, "133.333333", "2026-04-10T23:59:59Z")
    post_usage(client, contract, "433.333333", "2026-04-11T00:00:00Z")
    bill_at(client, MAY)
    invoice = only_invoice(client, contract)
    assert amounts(invoice, "RecurringFee") == ["10.00", "40.00"]
    usage = [line for line in invoice["Lines"] if line["Kind"] == "Usage"]
    assert [(str(u["Quantity"]), str(u["FreeQuantity"]), str(u["Amount"])) for u in usage] == [
        ("133.333333", "33.333333", "10.00"),  # 100 GB over the old quota at 0.10
        ("433.333333", "333.333333", "5.00"),  # 100 GB over the new quota at 0.05
    ]
    assert [u["PhaseFrom"] for u in usage] == [APRIL, "2026-04-11T00:00:00Z"]
    assert totals(invoice)[0] == "65.00"


def test_a_plan_change_to_another_currency_or_period_or_before_the_last_billing_date_is_refused(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    monthly = new_variant(client, catalog, Metered())
    yearly_in_dollars = new_variant(
        client,
        catalog,
        Metered(),
        name="Yearly",
        Currency="USD",
        BillingPeriod={"Unit": "Year", "Quantity": 1},
    )
    contract = new_contract(client, catalog, monthly)
    bill_at(client, "2026-02-01T00:00:00Z")
    response = place_order(
        client,
        contract,
        {"PlanVariantId": yearly_in_dollars},
        ChangeDate="2026-01-15T00:00:00Z",
    )
    assert _errors(response) == {
        ("Cart.PlanVariantId", "other_currency"),
        ("Cart.PlanVariantId", "other_billing_period"),
        ("ChangeDate", "before_last_billing_date"),
    }
    unknown = place_order(client, contract, {"PlanVariantId": "0" * 24})
    assert _errors(unknown) == {("Cart.PlanVariantId", "not_found")}


# -- quantity components ------------------------------------------------------------------


def test_10_seats_from_day_1_and_15_from_day_16_at_4_are_billed_20_and_30(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage", quantities=("Seats",))
    variant = new_variant(client, catalog, Metered(), quantity_prices=("4.00",))
    move_clock(client, APRIL)
    contract = new_contract(client, catalog, variant, start=APRIL)
    seats = catalog.quantity_ids[0]
    ordered(client, contract, {"ComponentSubscriptions": [{"ComponentId": seats, "Quantity": 10}]})
    ordered(
        client,
        contract,
        {"ComponentSubscriptions": [{"ComponentId": seats, "Quantity": 15}]},
        ChangeDate="2026-04-16T00:00:00Z",
    )
    bill_at(client, MAY)
    invoice = only_invoice(client, contract)
    assert amounts(invoice, "Quantity") == ["20.00", "30.00"]
    listed = client.get(f"{contract.path}/componentsubscriptions", headers=contract.headers)
    assert listed.status_code == 200, listed.text
    assert [(s["Quantity"], s["From"]) for s in listed.json()] == [
        (10, APRIL),
        (15, "2026-04-16T00:00:00Z"),
    ]


def test_a_component_subscription_must_be_a_quantity_component_the_plan_prices(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage", quantities=("Seats",))
    variant = new_variant(client, catalog, Metered())  # prices no seats
    contract = new_contract(client, catalog, variant)
    cart = {
        "ComponentSubscriptions": [
            {"ComponentId": catalog.metered_ids[0], "Quantity": 1},
            {"ComponentId": catalog.quantity_ids[0], "Quantity": 2},
            {"ComponentId": "0" * 24, "Quantity": 3},
        ]
    }
    assert _errors(place_order(client, contract, cart)) == {
        ("Cart.ComponentSubscriptions[0].ComponentId", "not_a_quantity"),
        ("Cart.ComponentSubscriptions[1].ComponentId", "not_in_plan_variant"),
        ("Cart.ComponentSubscriptions[2].ComponentId", "not_found"),
    }


# -- discounts and coupons ----------------------------------------------------------------


def _discount(client: TestClient, contract: Any, **fields: Any) -> str:
    response = send_json(client, "POST", "/api/v1/discounts", contract, {"Name": "D", **fields})
    assert response.status_code == 201, response.text
    discount_id: str = response.json()["Id"]
    return discount_id


def test_20_percent_off_usage_for_2_periods_discounts_periods_1_and_2_not_3(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered(pricing=per_unit("0.10")))
    contract = new_contract(client, catalog, variant)
    discount = _discount(client, contract, Percentage=20, Periods=2, AppliesTo="Usage")
    ordered(client, contract, {"DiscountSubscriptions": [{"DiscountId": discount}]})
    for month in ("01", "02", "03"):
        post_usage(client, contract, "100", f"2026-{month}-15T00:00:00Z")
    bill_at(client, "2026-04-01T00:00:00Z")
    first, second, third = invoices_of(client, contract)
    assert [amounts(i, "Discount") for i in (first, second, third)] == [["-2.00"], ["-2.00"], []]
    assert [totals(i)[0] for i in (first, second, third)] == ["8.00", "8.00", "10.00"]


def test_a_fixed_50_discount_on_a_30_invoice_leaves_a_subtotal_of_0(client: TestClient) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered(), RecurringFee="30.00")
    contract = new_contract(client, catalog, variant)
    discount = _discount(client, contract, Amount="50.00", AppliesTo="All")
    ordered(client, contract, {"DiscountSubscriptions": [{"DiscountId": discount}]})
    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)
    assert amounts(invoice, "Discount") == ["-30.00"]
    assert totals(invoice) == ("0.00", "0", "0.00", "0.00")


def test_a_coupon_is_redeemed_at_most_max_redemptions_times_by_concurrent_orders(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered())
    contracts = [new_contract(client, catalog, variant) for _ in range(8)]
    discount = _discount(client, contracts[0], Percentage=10, AppliesTo="All")
    coupon = send_json(
        client,
        "POST",
        "/api/v1/coupons",
        contracts[0],
        {"Code": "THREE", "DiscountId": discount, "MaxRedemptions": 3},
    )
    assert coupon.status_code == 201, coupon.text

    def redeem(n: int) -> int:
        cart = {"DiscountSubscriptions": [{"CouponCode": "THREE"}]}
        status: int = place_order(client, contracts[n], cart).status_code
        return status

    answers = all_at_once(len(contracts), redeem)
    assert sorted(answers) == [201, 201, 201, 409, 409, 409, 409, 409]
    fetched = client.get(f"/api/v1/coupons/{coupon.json()['Id']}", headers=catalog.seller.headers)
    assert fetched.json()["Redemptions"] == 3


def test_an_expired_coupon_is_a_conflict_and_an_unknown_one_a_bad_field(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered())
    contract = new_contract(client, catalog, variant)
    discount = _discount(client, contract, Percentage=10, AppliesTo="All")
    send_json(
        client,
        "POST",
        "/api/v1/coupons",
        contract,
        {"Code": "JANUARY", "DiscountId": discount, "ValidUntil": "2026-01-31T23:59:59Z"},
    )
    move_clock(client, "2026-02-01T00:00:00Z")
    expired = place_order(client, contract, {"DiscountSubscriptions": [{"CouponCode": "JANUARY"}]})
    assert expired.status_code == 409, expired.text
    unknown = place_order(client, contract, {"DiscountSubscriptions": [{"CouponCode": "NOPE"}]})
    assert _errors(unknown) == {("Cart.DiscountSubscriptions[0].CouponCode", "not_found")}
    both = place_order(
        client,
        contract,
        {"DiscountSubscriptions": [{"CouponCode": "JANUARY", "DiscountId": discount}]},
    )
    assert _errors(both) == {("Cart.DiscountSubscriptions[0]", "one_of")}


# -- previews -----------------------------------------------------------------------------


def test_an_order_preview_shows_the_discount_its_coupon_would_give_and_redeems_nothing(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered(pricing=per_unit("1.00")))
    contract = new_contract(client, catalog, variant)
    discount = _discount(client, contract, Percentage=50, AppliesTo="Usage")
    coupon = send_json(
        client,
        "POST",
        "/api/v1/coupons",
        contract,
        {"Code": "HALF", "DiscountId": discount, "MaxRedemptions": 1},
    ).json()
    body = {
        "ContractId": contract.contract_id,
        "Cart": {
            "MeteredUsages": [{"ComponentId": contract.component_id, "Quantity": 8}],
            "DiscountSubscriptions": [{"CouponCode": "HALF"}],
        },
    }
    preview = send_json(client, "POST", "/api/v1/orders/preview", contract, body)
    assert preview.status_code == 200, preview.text
    assert amounts(exact(preview), "Discount") == ["-4.00"]
    fetched = client.get(f"/api/v1/coupons/{coupon['Id']}", headers=contract.headers)
    assert fetched.json()["Redemptions"] == 0


def test_a_contract_preview_shows_its_quantities_commitment_and_discounts(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage", quantities=("Seats",))
    variant = new_variant(
        client,
        catalog,
        Metered(pricing=per_unit("1.00")),
        quantity_prices=("4.00",),
        MinimumCommitment="100.00",
    )
    move_clock(client, APRIL)
    contract = new_contract(client, catalog, variant, start=APRIL)
    discount = _discount(client, contract, Amount="5.00", AppliesTo="All")
    seats = catalog.quantity_ids[0]
    ordered(
        client,
        contract,
        {
            "ComponentSubscriptions": [{"ComponentId": seats, "Quantity": 10}],
            "DiscountSubscriptions": [{"DiscountId": discount}],
        },
    )
    post_usage(client, contract, "20", "2026-04-05T00:00:00Z")
    move_clock(client, "2026-04-16T00:00:00Z")
    preview = client.get(f"{contract.path}/preview", headers=contract.headers)
    assert preview.status_code == 200, preview.text
    invoice = exact(preview)
    assert amounts(invoice, "Usage") == ["20.00"]
    assert amounts(invoice, "Quantity") == ["40.00"]  # 10 x 4.00 for the whole period
    assert amounts(invoice, "Commitment") == ["40.00"]  # 100.00 - 20.00 - 40.00
    assert amounts(invoice, "Discount") == ["-5.00"]
    assert invoices_of(client, contract) == []


# -- notice periods and phases ------------------------------------------------------------


def _end(client: TestClient, contract: Any, body: dict[str, Any]) -> Any:
    return send_json(client, "POST", f"{contract.path}/end", contract, body)


def test_one_months_notice_ended_on_day_10_ends_at_the_end_of_the_next_period(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered(), NoticePeriod={"Unit": "Month", "Quantity": 1})
    contract = new_contract(client, catalog, variant)
    move_clock(client, "2026-01-10T00:00:00Z")
    ended = _end(client, contract, {})
    assert ended.status_code == 200, ended.text
    assert ended.json()["EndDate"] == "2026-03-01T00:00:00Z"


def test_without_a_notice_period_a_contract_ends_at_the_end_of_its_current_period(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered())
    contract = new_contract(client, catalog, variant)
    move_clock(client, "2026-01-10T00:00:00Z")
    assert _end(client, contract, {}).json()["EndDate"] == "2026-02-01T00:00:00Z"


def test_an_end_date_within_the_notice_period_is_refused_unless_ignored(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered(), NoticePeriod={"Unit": "Month", "Quantity": 1})
    contract = new_contract(client, catalog, variant)
    move_clock(client, "2026-01-10T00:00:00Z")
    soon = {"EndDate": "2026-02-01T00:00:00Z"}
    assert _errors(_end(client, contract, soon)) == {("EndDate", "within_notice_period")}
    ignored = _end(client, contract, {**soon, "IgnoreNoticePeriod": True})
    assert ignored.status_code == 200, ignored.text
    assert ignored.json()["EndDate"] == "2026-02-01T00:00:00Z"


def test_a_contract_answers_its_phases_and_the_variant_of_the_last(client: TestClient) -> None:
    catalog = new_catalog(client, "Storage")
    small = new_variant(client, catalog, Metered())
    large = new_variant(client, catalog, Metered(), name="Large")
    contract = new_contract(client, catalog, small)
    assert client.get(contract.path, headers=contract.headers).json()["Phases"] == [
        {"PlanVariantId": small, "From": "2026-01-01T00:00:00Z"}
    ]
    ordered(client, contract, {"PlanVariantId": large}, ChangeDate="2026-01-20T00:00:00Z")
    answered = client.get(contract.path, headers=contract.headers).json()
    assert answered["PlanVariantId"] == large
    assert answered["Phases"] == [
        {"PlanVariantId": small, "From": "2026-01-01T00:00:00Z"},
        {"PlanVariantId": large, "From": "2026-01-20T00:00:00Z"},
    ]


def test_seats_on_a_final_invoice_are_billed_for_the_days_held_before_the_end(
    client: TestClient,
) -> None:
    """10 seats at 4.00 from April 1, the contract ended on April 16: 15 of 30 days."""
    catalog = new_catalog(client, "Storage", quantities=("Seats",))
    variant = new_variant(client, catalog, Metered(), quantity_prices=("4.00",))
    move_clock(client, APRIL)
    contract = new_contract(client, catalog, variant, start=APRIL)
    seats = catalog.quantity_ids[0]
    ordered(client, contract, {"ComponentSubscriptions": [{"ComponentId": seats, "Quantity": 10}]})
    end = send_json(
        client, "POST", f"{contract.path}/end", contract, {"EndDate": "2026-04-16T00:00:00Z"}
    )
    assert end.status_code == 200, end.text
    bill_at(client, "2026-04-17T00:00:00Z")
    final = only_invoice(client, contract)
    assert (final["Kind"], amounts(final, "Quantity")) == ("Final", ["20.00"])


def test_a_fixed_50_discount_is_taken_once_over_a_periods_interim_and_regular_invoice(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    variant = new_variant(client, catalog, Metered(pricing=per_unit("1.00")))
    contract = new_contract(client, catalog, variant)
    discount = _discount(client, contract, Amount="50.00", AppliesTo="All")
    ordered(client, contract, {"DiscountSubscriptions": [{"DiscountId": discount}]})
    post_usage(client, contract, "30", "2026-01-05T00:00:00Z")
    bill_interim_at(client, contract, "2026-01-10T00:00:00Z")
    post_usage(client, contract, "40", "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    interim, regular = invoices_of(client, contract)
    assert amounts(interim, "Discount") == ["-30.00"]
    assert amounts(regular, "Discount") == ["-20.00"]
    assert [totals(i)[0] for i in (interim, regular)] == ["0.00", "20.00"]


def test_an_order_that_changes_plans_and_bills_interim_rates_each_phase_by_its_variant(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Storage")
    small = new_variant(client, catalog, Metered(pricing=per_unit("0.10")))
    large = new_variant(client, catalog, Metered(pricing=per_unit("0.05")), name="Large")
    contract = new_contract(client, catalog, small)
    post_usage(client, contract, "100", "2026-01-05T00:00:00Z")
    move_clock(client, "2026-01-11T00:00:00Z")
    order = ordered(
        client,
        contract,
        {
            "PlanVariantId": large,
            "MeteredUsages": [{"ComponentId": contract.component_id, "Quantity": 100}],
        },
        TriggerInterimBilling=True,
    )
    (interim,) = invoices_of(client, contract)
    assert interim["Id"] == order["InvoiceId"]
    assert amounts(interim, "Usage") == ["10.00", "5.00"]  # 100 at 0.10, then 100 at 0.05


def test_a_plan_change_that_would_strand_unbilled_usage_is_refused(client: TestClient) -> None:
    """Usage due from ChangeDate on is rated by the new variant: it must meter it."""
    catalog = new_catalog(client, "Storage", "Calls")
    both = new_variant(client, catalog, Metered(), Metered("Calls"))
    storage_only = new_variant(client, catalog, Metered(), name="Storage only")
    contract = new_contract(client, catalog, both)
    post_usage(client, contract, "5", "2026-01-20T00:00:00Z", catalog.metered_ids[1])
    response = place_order(
        client, contract, {"PlanVariantId": storage_only}, ChangeDate="2026-01-15T00:00:00Z"
    )
    assert _errors(response) == {("Cart.PlanVariantId", "usage_not_in_plan_variant")}
    later = place_order(
        client, contract, {"PlanVariantId": storage_only}, ChangeDate="2026-01-21T00:00:00Z"
    )
    assert later.status_code == 201, later.text
