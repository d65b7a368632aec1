"""SPEC §7: billing over HTTP, driven by the test clock.

Every test runs the app without its embedded worker: it moves the clock with
`PUT /admin/clock` and bills with `POST /admin/billing/run`, so that nothing bills
behind its back. Amounts are compared as written in the JSON text (3.00, not 3).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    START,
    Json,
    Metered,
    PricedContract,
    app_without_worker,
    bill_at,
    bill_interim_at,
    billed_ids,
    end_contract,
    get_contract,
    graduated,
    invoices_of,
    line_summary,
    new_billing_seller,
    new_priced_contract,
    only_invoice,
    package,
    per_unit,
    period,
    post_usage,
    run_billing,
    send_json,
    tiers,
    totals,
    usage_entries,
    volume,
)
from tests.ingest_factories import wait_for_task


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


# -- regular billing ----------------------------------------------------------------------


def test_the_regular_invoice_is_issued_when_the_clock_reaches_next_billing_date_not_before(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "10", "2026-01-15T00:00:00Z")

    assert bill_at(client, "2026-01-31T23:59:59.999999Z")["invoices"] == 0
    assert invoices_of(client, contract) == []
    assert get_contract(client, contract)["NextBillingDate"] == "2026-02-01T00:00:00Z"

    assert bill_at(client, "2026-02-01T00:00:00Z")["invoices"] == 1
    invoice = only_invoice(client, contract)
    assert (invoice["Kind"], invoice["Status"]) == ("Regular", "Finalized")
    assert period(invoice) == (START, "2026-02-01T00:00:00Z")
    assert invoice["DocumentDate"] == "2026-02-01T00:00:00Z"
    after = get_contract(client, contract)
    assert (after["LastBillingDate"], after["NextBillingDate"]) == (
        "2026-02-01T00:00:00Z",
        "2026-03-01T00:00:00Z",
    )


def test_130_gb_with_100_free_at_0_10_costs_3_00(client: TestClient) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    post_usage(client, contract, "60", "2026-01-05T00:00:00Z")
    post_usage(client, contract, "70", "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    [line] = only_invoice(client, contract)["Lines"]
    assert line_summary(line) == ("Storage", "130", "100", "30", False, "3.00")
    assert str(line["UnitPrice"]) == "0.1"
    assert tiers(line) == [("30", "0.1", "3")]


def test_1_500_calls_graduated_1_000_at_0_01_then_0_005_cost_12_50(client: TestClient) -> None:
    calls = Metered("API calls", graduated(("1000", "0.01"), (None, "0.005")), unit="call")
    contract = new_priced_contract(client, None, calls)
    post_usage(client, contract, "1500", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    [line] = only_invoice(client, contract)["Lines"]
    assert line_summary(line) == ("API calls", "1500", "0", "1500", False, "12.50")
    assert tiers(line) == [("1000", "0.01", "10"), ("500", "0.005", "2.5")]
    assert line["UnitPrice"] is None  # no single price for the whole line


def test_1_500_calls_on_volume_tiers_cost_7_50_all_at_the_0_005_the_total_reaches(
    client: TestClient,
) -> None:
    calls = Metered("API calls", volume(("1000", "0.01"), (None, "0.005")), unit="call")
    contract = new_priced_contract(client, None, calls)
    post_usage(client, contract, "1500", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    [line] = only_invoice(client, contract)["Lines"]
    assert line_summary(line) == ("API calls", "1500", "0", "1500", False, "7.50")
    assert tiers(line) == [("1500", "0.005", "7.5")]


def test_a_volume_line_carries_the_unit_price_of_the_tier_its_total_falls_in(
    client: TestClient,
) -> None:
    calls = Metered("API calls", volume(("1000", "0.01"), (None, "0.005")), unit="call")
    low, high = new_priced_contract(client, None, calls), new_priced_contract(client, None, calls)
    post_usage(client, low, "800", "2026-01-10T00:00:00Z")
    post_usage(client, high, "1500", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    [low_line] = only_invoice(client, low)["Lines"]
    [high_line] = only_invoice(client, high)["Lines"]
    assert (str(low_line["UnitPrice"]), str(high_line["UnitPrice"])) == ("0.01", "0.005")


def test_250_units_in_packages_of_100_at_5_00_cost_15_00(client: TestClient) -> None:
    contract = new_priced_contract(client, None, Metered("Seats", package("100", "5.00")))
    post_usage(client, contract, "250", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    [line] = only_invoice(client, contract)["Lines"]
    assert line_summary(line) == ("Seats", "250", "0", "250", False, "15.00")


# -- late usage ---------------------------------------------------------------------------


def test_30_gb_of_late_usage_posted_after_its_period_was_billed_is_a_late_line_of_3_00(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    post_usage(client, contract, "20", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    # January is invoiced; 30 GB due in January arrive now: DueDate < LastBillingDate
    late = post_usage(client, contract, "30", "2026-01-20T00:00:00Z")
    current = post_usage(client, contract, "50", "2026-02-10T00:00:00Z")
    bill_at(client, "2026-03-01T00:00:00Z")

    january, february = invoices_of(client, contract)
    assert [line_summary(line) for line in january["Lines"]] == [
        ("Storage", "20", "20", "0", False, "0.00")
    ]
    assert [line_summary(line) for line in february["Lines"]] == [
        # February's own 50 GB use February's free quota ...
        ("Storage", "50", "50", "0", False, "0.00"),
        # ... and the late 30 GB get none: 30 x 0.10 = 3.00
        ("Storage (late usage)", "30", "0", "30", True, "3.00"),
    ]
    assert [line["UsageIds"] for line in february["Lines"]] == [[current["Id"]], [late["Id"]]]
    assert str(february["Total"]) == "3.00"


# -- interim billing shares the period's free quota and tiers ---------------------------


def _interim_then_regular(
    client: TestClient, contract: PricedContract, first: str, second: str
) -> tuple[Json, Json]:
    """`first` due Jan 5, billed interim on Jan 10; `second` due Jan 20, billed with the
    regular invoice of January on Feb 1. The two invoices."""
    post_usage(client, contract, first, "2026-01-05T00:00:00Z")
    bill_interim_at(client, contract, "2026-01-10T00:00:00Z")
    post_usage(client, contract, second, "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    interim, regular = invoices_of(client, contract)
    return interim, regular


def test_60_gb_interim_and_70_gb_regular_share_100_free_gb_0_00_then_3_00(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    interim, regular = _interim_then_regular(client, contract, "60", "70")
    assert (interim["Kind"], regular["Kind"]) == ("Interim", "Regular")
    assert [line_summary(line) for line in interim["Lines"]] == [
        ("Storage", "60", "60", "0", False, "0.00")
    ]
    # 40 GB of free quota are left for the regular invoice: 30 GB x 0.10 = 3.00
    assert [line_summary(line) for line in regular["Lines"]] == [
        ("Storage", "70", "40", "30", False, "3.00")
    ]


def test_two_interim_invoices_and_the_regular_one_in_one_period_add_up_to_one_rounding(
    client: TestClient,
) -> None:
    # 0.015 per unit, one unit on each invoice: 0.015 -> 0.02; 0.030 - 0.02 = 0.01;
    # 0.045 -> 0.05 - 0.03 = 0.02. Three invoices of one period, 0.05 as billed at once.
    contract = new_priced_contract(client, None, Metered(pricing=per_unit("0.015")))
    amounts = []
    for day in ("05", "10"):
        post_usage(client, contract, "1", f"2026-01-{day}T00:00:00Z")
        interim = bill_interim_at(client, contract, f"2026-01-{day}T12:00:00Z")
        amounts.append(str(interim["Lines"][0]["Amount"]))
    post_usage(client, contract, "1", "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    kinds = [invoice["Kind"] for invoice in invoices_of(client, contract)]
    regular = invoices_of(client, contract)[-1]
    assert kinds == ["Interim", "Interim", "Regular"]
    assert [*amounts, str(regular["Lines"][0]["Amount"])] == ["0.02", "0.01", "0.02"]


def test_an_interim_invoice_does_not_move_the_billing_dates(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "60", "2026-01-05T00:00:00Z")
    interim = bill_interim_at(client, contract, "2026-01-10T00:00:00Z")

    after = get_contract(client, contract)
    assert (after["LastBillingDate"], after["NextBillingDate"]) == (
        START,
        "2026-02-01T00:00:00Z",
    )
    assert period(interim) == (START, "2026-02-01T00:00:00Z")


def test_800_calls_interim_then_700_continue_the_graduated_tiers_8_00_then_4_50(
    client: TestClient,
) -> None:
    calls = Metered("API calls", graduated(("1000", "0.01"), (None, "0.005")), unit="call")
    contract = new_priced_contract(client, None, calls)
    interim, regular = _interim_then_regular(client, contract, "800", "700")
    [first] = interim["Lines"]
    assert line_summary(first) == ("API calls", "800", "0", "800", False, "8.00")
    [second] = regular["Lines"]
    # the first tier is not restarted: 200 x 0.01 + 500 x 0.005 = 4.50 (12.50 in all)
    assert line_summary(second) == ("API calls", "700", "0", "700", False, "4.50")
    assert tiers(second) == [("200", "0.01", "2"), ("500", "0.005", "2.5")]


def test_a_volume_tier_reached_after_an_interim_invoice_reprices_the_period_minus_0_50(
    client: TestClient,
) -> None:
    calls = Metered("API calls", volume(("1000", "0.01"), (None, "0.005")), unit="call")
    contract = new_priced_contract(client, None, calls)
    interim, regular = _interim_then_regular(client, contract, "800", "700")
    assert str(interim["Total"]) == "8.00"  # 800 x 0.01
    [line] = regular["Lines"]
    # 1,500 calls all at 0.005 = 7.50 for the period, of which 8.00 were charged
    assert line_summary(line) == ("API calls", "700", "0", "700", False, "-0.50")
    assert tiers(line) == [("-800", "0.01", "-8"), ("1500", "0.005", "7.5")]


# -- overrides and fees -------------------------------------------------------------------


def test_5_gb_at_an_override_price_of_2_50_are_their_own_line_of_12_50_outside_free_quota(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    plain = post_usage(client, contract, "50", "2026-01-05T00:00:00Z")
    override = {"PricePerUnit": Decimal("2.50"), "Name": "Premium storage", "Description": "SSD"}
    special = post_usage(client, contract, "5", "2026-01-06T00:00:00Z", ProductOverride=override)
    bill_at(client, "2026-02-01T00:00:00Z")

    invoice = only_invoice(client, contract)
    assert [line_summary(line) for line in invoice["Lines"]] == [
        ("Storage", "50", "50", "0", False, "0.00"),
        ("Premium storage - SSD", "5", "0", "5", False, "12.50"),
    ]
    assert [line["UsageIds"] for line in invoice["Lines"]] == [[plain["Id"]], [special["Id"]]]
    assert str(invoice["Lines"][1]["UnitPrice"]) == "2.5"


def test_a_recurring_fee_of_9_90_is_charged_once_per_period(client: TestClient) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    bill_at(client, "2026-03-01T00:00:00Z")

    january, february = invoices_of(client, contract)
    assert [line_summary(line) for line in january["Lines"]] == [
        ("Recurring fee 2026-01-01 - 2026-02-01", "1", "0", "1", False, "9.90")
    ]
    assert [line_summary(line) for line in february["Lines"]] == [
        ("Recurring fee 2026-02-01 - 2026-03-01", "1", "0", "1", False, "9.90")
    ]
    assert [line["Kind"] for line in january["Lines"] + february["Lines"]] == ["RecurringFee"] * 2


# -- money --------------------------------------------------------------------------------


def test_a_subtotal_of_10_50_at_5_percent_tax_is_0_525_rounded_half_up_to_0_53(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, tax_rate="5")
    post_usage(client, contract, "105", "2026-01-10T00:00:00Z")  # 105 x 0.10 = 10.50
    bill_at(client, "2026-02-01T00:00:00Z")

    # half-even would give 0.52
    assert totals(only_invoice(client, contract)) == ("10.50", "5", "0.53", "11.03")


def test_1_25_gb_at_0_10_is_0_125_rounded_half_up_to_a_line_of_0_13(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "1.25", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    [line] = only_invoice(client, contract)["Lines"]
    assert line_summary(line) == ("Storage", "1.25", "0", "1.25", False, "0.13")
    assert tiers(line) == [("1.25", "0.1", "0.125")]  # the exact charge, before rounding


def test_the_customers_7_percent_tax_rate_overrides_the_plan_variants_19(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, tax_rate="19", customer_tax_rate="7")
    post_usage(client, contract, "100", "2026-01-10T00:00:00Z")  # 10.00
    bill_at(client, "2026-02-01T00:00:00Z")

    assert totals(only_invoice(client, contract)) == ("10.00", "7", "0.70", "10.70")


def test_a_customer_tax_rate_of_0_overrides_the_plan_variants_19(client: TestClient) -> None:
    contract = new_priced_contract(client, tax_rate="19", customer_tax_rate="0")
    post_usage(client, contract, "100", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    assert totals(only_invoice(client, contract)) == ("10.00", "0", "0.00", "10.00")


def test_a_jpy_invoice_has_no_decimals_1_001_calls_at_0_5_yen_are_501_yen(
    client: TestClient,
) -> None:
    contract = new_priced_contract(
        client, None, Metered("API calls", per_unit("0.5")), currency="JPY", tax_rate="10"
    )
    post_usage(client, contract, "1001", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    invoice = only_invoice(client, contract)
    response = client.get(f"/api/v1/invoices/{invoice['Id']}", headers=contract.headers)
    # 500.5 rounds half-up to 501; the tax of 50.1 to 50
    assert '"Amount":501,' in response.text
    assert '"Subtotal":501,"TaxRate":10,"TaxAmount":50,"Total":551,' in response.text
    assert invoice["Currency"] == "JPY"


def test_a_kwd_invoice_has_three_decimals_7_units_at_0_1234_are_0_864(
    client: TestClient,
) -> None:
    contract = new_priced_contract(
        client, None, Metered(pricing=per_unit("0.1234")), currency="KWD", tax_rate="5"
    )
    post_usage(client, contract, "7", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    invoice = only_invoice(client, contract)
    response = client.get(f"/api/v1/invoices/{invoice['Id']}", headers=contract.headers)
    # 0.8638 rounds to 0.864; the tax of 0.0432 to 0.043
    assert '"Amount":0.864,' in response.text
    assert '"Subtotal":0.864,"TaxRate":5,"TaxAmount":0.043,"Total":0.907,' in response.text


# -- billing dates ------------------------------------------------------------------------


def test_a_contract_started_on_january_31_is_billed_on_february_28_march_31_and_april_30(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, start="2026-01-31T00:00:00Z", recurring_fee="10")
    bill_at(client, "2026-04-30T00:00:00Z")

    assert [period(invoice) for invoice in invoices_of(client, contract)] == [
        ("2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
        ("2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"),
        ("2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z"),
    ]
    assert get_contract(client, contract)["NextBillingDate"] == "2026-05-31T00:00:00Z"


def test_a_clock_three_months_ahead_issues_three_invoices_in_period_order_numbered_1_2_3(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    for quantity, due in (("10", "2026-01-10"), ("20", "2026-02-10"), ("30", "2026-03-10")):
        post_usage(client, contract, quantity, f"{due}T00:00:00Z")
    assert bill_at(client, "2026-04-01T00:00:00Z")["invoices"] == 3

    invoices = invoices_of(client, contract)
    assert [i["InvoiceNumber"] for i in invoices] == [
        "INV-2026-000001",
        "INV-2026-000002",
        "INV-2026-000003",
    ]
    assert [period(i) for i in invoices] == [
        (START, "2026-02-01T00:00:00Z"),
        ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"),
        ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
    ]
    # each period bills its own usage, none of it late
    assert [[line_summary(line) for line in i["Lines"]] for i in invoices] == [
        [("Storage", "10", "0", "10", False, "1.00")],
        [("Storage", "20", "0", "20", False, "2.00")],
        [("Storage", "30", "0", "30", False, "3.00")],
    ]


def test_usage_due_exactly_at_next_billing_date_is_billed_in_the_period_ending_then(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    at_the_boundary = post_usage(client, contract, "10", "2026-02-01T00:00:00Z")
    just_after = post_usage(client, contract, "20", "2026-02-01T00:00:00.000001Z")
    bill_at(client, "2026-03-01T00:00:00Z")

    january, february = invoices_of(client, contract)
    assert billed_ids(january) == [at_the_boundary["Id"]]
    assert billed_ids(february) == [just_after["Id"]]
    assert not any(line["Late"] for line in february["Lines"])


def test_billing_again_at_the_same_instant_issues_nothing(client: TestClient) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    post_usage(client, contract, "10", "2026-01-10T00:00:00Z")
    assert bill_at(client, "2026-02-01T00:00:00Z")["invoices"] == 1
    before = (invoices_of(client, contract), get_contract(client, contract))

    assert run_billing(client) == {"tasks": 0, "contracts": 0, "invoices": 0, "failed": 0}
    assert (invoices_of(client, contract), get_contract(client, contract)) == before


# -- final billing ------------------------------------------------------------------------


def test_a_contract_ended_on_february_11_at_noon_gets_a_final_invoice_with_10_5_of_28_days_fee(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    bill_at(client, "2026-02-01T00:00:00Z")  # January, regular
    in_period = post_usage(client, contract, "10", "2026-02-05T00:00:00Z")
    at_the_end = post_usage(client, contract, "5", "2026-02-11T12:00:00Z")
    end_contract(client, contract, "2026-02-11T12:00:00Z")
    assert bill_at(client, "2026-02-11T12:00:00Z")["invoices"] == 1

    invoice = invoices_of(client, contract)[-1]
    assert invoice["Kind"] == "Final"
    assert period(invoice) == ("2026-02-01T00:00:00Z", "2026-02-11T12:00:00Z")
    assert [line_summary(line) for line in invoice["Lines"]] == [
        ("Storage", "15", "0", "15", False, "1.50"),
        # 9.90 x 10.5 / 28 days = 3.7125, rounded to 3.71
        (
            "Recurring fee 2026-02-01 - 2026-02-11, prorated from the period "
            "2026-02-01 - 2026-03-01",
            "1",
            "0",
            "1",
            False,
            "3.71",
        ),
    ]
    assert billed_ids(invoice) == sorted([in_period["Id"], at_the_end["Id"]])
    assert totals(invoice) == ("5.21", "0", "0.00", "5.21")
    assert get_contract(client, contract)["Status"] == "Ended"
    assert bill_at(client, "2026-06-01T00:00:00Z")["invoices"] == 0  # nothing after it


def test_no_final_invoice_is_issued_before_the_clock_reaches_end_date_and_status_stays_active(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    end_contract(client, contract, "2026-01-20T00:00:00Z")

    assert bill_at(client, "2026-01-19T23:59:59.999999Z")["invoices"] == 0
    assert get_contract(client, contract)["Status"] == "Active"
    assert bill_at(client, "2026-01-20T00:00:00Z")["invoices"] == 1
    assert get_contract(client, contract)["Status"] == "Ended"
    # 9.90 x 19 / 31 days = 6.0677..., rounded to 6.07
    assert totals(only_invoice(client, contract)) == ("6.07", "0", "0.00", "6.07")


def test_next_billing_date_is_the_end_date_once_the_contract_ends_before_its_period_does(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    assert get_contract(client, contract)["NextBillingDate"] == "2026-02-01T00:00:00Z"
    ended = end_contract(client, contract, "2026-01-20T00:00:00Z")
    assert ended["NextBillingDate"] == "2026-01-20T00:00:00Z"  # the final invoice's date
    assert get_contract(client, contract)["NextBillingDate"] == "2026-01-20T00:00:00Z"


def test_next_billing_date_is_the_periods_end_while_the_end_date_lies_in_a_later_period(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="31.00")
    end_contract(client, contract, "2026-03-11T00:00:00Z")
    assert get_contract(client, contract)["NextBillingDate"] == "2026-02-01T00:00:00Z"
    bill_at(client, "2026-03-01T00:00:00Z")
    assert get_contract(client, contract)["NextBillingDate"] == "2026-03-11T00:00:00Z"


def test_next_billing_date_is_null_once_the_final_invoice_is_issued(client: TestClient) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    end_contract(client, contract, "2026-01-20T00:00:00Z")
    assert bill_at(client, "2026-03-01T00:00:00Z")["invoices"] == 1
    got = get_contract(client, contract)
    assert (got["Status"], got["NextBillingDate"]) == ("Ended", None)


def test_a_contract_ending_in_march_gets_its_january_and_february_invoices_then_the_final(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, recurring_fee="31.00")
    end_contract(client, contract, "2026-03-11T00:00:00Z")
    assert bill_at(client, "2026-06-01T00:00:00Z")["invoices"] == 3

    invoices = invoices_of(client, contract)
    assert [(i["Kind"], *period(i), str(i["Total"])) for i in invoices] == [
        ("Regular", START, "2026-02-01T00:00:00Z", "31.00"),
        ("Regular", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "31.00"),
        # 31.00 x 10 / 31 days = 10.00
        ("Final", "2026-03-01T00:00:00Z", "2026-03-11T00:00:00Z", "10.00"),
    ]


def test_a_final_invoice_grants_the_whole_periods_100_gb_free_quota(client: TestClient) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    post_usage(client, contract, "105", "2026-01-03T00:00:00Z")
    end_contract(client, contract, "2026-01-04T00:00:00Z")  # 3 days of a 31-day period
    bill_at(client, "2026-01-04T00:00:00Z")

    invoice = only_invoice(client, contract)
    assert invoice["Kind"] == "Final"
    assert [line_summary(line) for line in invoice["Lines"]] == [
        ("Storage", "105", "100", "5", False, "0.50")
    ]


def test_usage_posted_after_the_final_invoice_is_refused_with_409(client: TestClient) -> None:
    contract = new_priced_contract(client)
    end_contract(client, contract, "2026-01-20T00:00:00Z")
    bill_at(client, "2026-01-20T00:00:00Z")
    assert only_invoice(client, contract)["Kind"] == "Final"

    payload = {"DueDate": "2026-01-10T00:00:00Z", "ComponentId": contract.component_id}
    response = send_json(client, "POST", contract.usage_path, contract, {**payload, "Quantity": 1})
    assert response.status_code == 409, response.text
    assert usage_entries(client, contract) == []


def test_bulk_usage_for_a_contract_with_its_final_invoice_is_an_error_of_the_task(
    client: TestClient,
) -> None:
    seller = new_billing_seller(client)
    contract = new_priced_contract(client, seller)
    end_contract(client, contract, "2026-01-20T00:00:00Z")
    bill_at(client, "2026-01-20T00:00:00Z")

    record = {
        "subscriptionId": contract.contract_id,
        "productId": contract.component_id,
        "quantity": 1,
        "dueDate": "2026-01-10T00:00:00Z",
    }
    path = f"/api/sellers/{seller.seller_id}/services/bulkconsumptions"
    response = send_json(client, "POST", path, seller, {"consumptions": [record]})
    assert response.status_code == 202, response.text
    run_billing(client)  # applies the waiting task
    task = wait_for_task(client, response.headers["Location"], seller.headers, timeout=5)
    assert (task["message"], task["savedRecords"]) == ("Failed", 0)
    assert [e["index"] for e in task["errors"]] == [0]
    assert usage_entries(client, contract) == []


# -- the CLI ------------------------------------------------------------------------------


def test_arrears_bill_from_the_command_line_bills_what_is_due(
    client: TestClient, database: Database
) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90")
    post_usage(client, contract, "30", "2026-01-10T00:00:00Z")
    env = {
        **os.environ,
        "ARREARS_DATABASE_URL": database.url.render_as_string(hide_password=False),
        "ARREARS_TEST_CLOCK": "2026-02-01T00:00:00Z",
        "ARREARS_LOG_FORMAT": "text",
    }

    def bill() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "arrears", "bill"]
        return subprocess.run(  # noqa: S603 (our own interpreter and module)
            command, env=env, capture_output=True, text=True, timeout=60, check=False
        )

    done = bill()
    assert done.returncode == 0, done.stderr
    assert "1 invoices issued for 1 contracts; 0 contracts failed" in done.stdout

    invoice = only_invoice(client, contract)
    assert (invoice["Kind"], invoice["DocumentDate"]) == ("Regular", "2026-02-01T00:00:00Z")
    assert totals(invoice) == ("12.90", "0", "0.00", "12.90")  # 3.00 + 9.90
    assert "0 invoices issued" in bill().stdout
    assert len(invoices_of(client, contract)) == 1
