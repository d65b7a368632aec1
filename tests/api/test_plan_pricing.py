"""SPEC §11 pricing through the API, on SQLite and PostgreSQL: tier flat fees, the spend
cap and the minimum commitment, each shared by a period's interim and regular invoices.
Amounts are compared as written in the JSON text (20.00, not 20)."""

from __future__ import annotations

from collections.abc import Iterator

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
    end_contract,
    graduated,
    invoices_of,
    move_clock,
    only_invoice,
    per_unit,
    post_usage,
    totals,
    volume,
)
from tests.plan_factories import amounts, new_catalog, new_contract, new_variant

FEBRUARY = "2026-02-01T00:00:00Z"
APRIL = "2026-04-01T00:00:00Z"


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _flat_fee_tiers(model: str, second_flat_fee: str) -> dict[str, object]:
    """Up to 5: flat 100; up to 10: flat `second_flat_fee`; up to 15: 10.00 each;
    above: 5.00 each."""
    priced = graduated if model == "Graduated" else volume
    pricing = priced(("5", "0"), ("10", "0"), ("15", "10.00"), (None, "5.00"))
    tiers = pricing["Tiers"]
    assert isinstance(tiers, list)
    tiers[0]["FlatFee"] = 100
    tiers[1]["FlatFee"] = int(second_flat_fee)
    return pricing


@pytest.mark.parametrize(
    ("model", "second_flat_fee", "charges"),
    [
        (
            "Graduated",
            "50",
            {"0": "100.00", "5": "100.00", "7": "150.00", "12": "170.00", "22": "235.00"},
        ),
        ("Volume", "150", {"0": "100.00", "14": "140.00", "16": "80.00", "100": "500.00"}),
    ],
)
def test_tier_flat_fees_are_charged_once_per_period_by_the_tiers_reached(
    client: TestClient, model: str, second_flat_fee: str, charges: dict[str, str]
) -> None:
    catalog = new_catalog(client, "Calls")
    pricing = _flat_fee_tiers(model, second_flat_fee)
    variant = new_variant(client, catalog, Metered("Calls", pricing))
    contracts = {quantity: new_contract(client, catalog, variant) for quantity in charges}
    for quantity, contract in contracts.items():
        if quantity != "0":  # a quantity of 0 reaches the first tier: no usage at all
            post_usage(client, contract, quantity, "2026-01-15T00:00:00Z")
    bill_at(client, FEBRUARY)
    charged = {q: amounts(only_invoice(client, c), "Usage") for q, c in contracts.items()}
    assert charged == {quantity: [amount] for quantity, amount in charges.items()}


def test_a_flat_fee_an_interim_invoice_charged_is_not_charged_again(client: TestClient) -> None:
    catalog = new_catalog(client, "Calls")
    variant = new_variant(client, catalog, Metered("Calls", _flat_fee_tiers("Graduated", "50")))
    contract = new_contract(client, catalog, variant)
    post_usage(client, contract, "7", "2026-01-10T00:00:00Z")
    interim = bill_interim_at(client, contract, "2026-01-20T00:00:00Z")
    post_usage(client, contract, "5", "2026-01-25T00:00:00Z")
    bill_at(client, FEBRUARY)
    first, regular = invoices_of(client, contract)
    assert first["Id"] == interim["Id"]
    assert amounts(first, "Usage") == ["150.00"]  # 7: flat 100 + flat 50
    assert amounts(regular, "Usage") == ["20.00"]  # 12 in all: 170.00 - 150.00


def test_a_spend_cap_of_170_is_reached_across_an_interim_and_a_regular_invoice(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Calls")
    variant = new_variant(
        client, catalog, Metered("Calls", per_unit("10.00")), maximum_amounts=("170.00",)
    )
    contract = new_contract(client, catalog, variant)
    post_usage(client, contract, "12", "2026-01-10T00:00:00Z")
    bill_interim_at(client, contract, "2026-01-20T00:00:00Z")
    post_usage(client, contract, "8", "2026-01-25T00:00:00Z")
    bill_at(client, FEBRUARY)
    interim, regular = invoices_of(client, contract)
    assert amounts(interim, "Usage") == ["120.00"]
    assert amounts(regular, "Usage") == ["50.00"]  # 200.00 capped at 170.00, less 120.00
    post_usage(client, contract, "30", "2026-02-10T00:00:00Z")
    bill_at(client, "2026-03-01T00:00:00Z")
    assert amounts(invoices_of(client, contract)[-1], "Usage") == ["170.00"]  # a new period


def test_a_minimum_commitment_of_100_tops_up_a_fee_of_50_and_three_times_10_by_20(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Calls")
    variant = new_variant(
        client,
        catalog,
        Metered("Calls", per_unit("10.00")),
        RecurringFee="50.00",
        MinimumCommitment="100.00",
    )
    contract = new_contract(client, catalog, variant)
    for day in ("05", "12", "19"):
        post_usage(client, contract, "1", f"2026-01-{day}T00:00:00Z")
    bill_at(client, FEBRUARY)
    invoice = only_invoice(client, contract)
    assert amounts(invoice, "Usage") == ["30.00"]
    assert amounts(invoice, "RecurringFee") == ["50.00"]
    assert amounts(invoice, "Commitment") == ["20.00"]
    assert totals(invoice)[0] == "100.00"


def test_a_commitment_counts_what_the_periods_interim_invoices_charged(
    client: TestClient,
) -> None:
    catalog = new_catalog(client, "Calls")
    variant = new_variant(
        client,
        catalog,
        Metered("Calls", per_unit("10.00")),
        RecurringFee="50.00",
        MinimumCommitment="100.00",
    )
    contract = new_contract(client, catalog, variant)
    post_usage(client, contract, "2", "2026-01-05T00:00:00Z")
    bill_interim_at(client, contract, "2026-01-10T00:00:00Z")
    post_usage(client, contract, "1", "2026-01-19T00:00:00Z")
    bill_at(client, FEBRUARY)
    interim, regular = invoices_of(client, contract)
    assert amounts(interim, "Commitment") == []
    assert amounts(regular, "Commitment") == ["20.00"]  # 100.00 - (20.00 + 10.00 + 50.00)


def test_a_period_that_reaches_its_commitment_has_no_commitment_line(client: TestClient) -> None:
    catalog = new_catalog(client, "Calls")
    variant = new_variant(
        client,
        catalog,
        Metered("Calls", per_unit("10.00")),
        RecurringFee="50.00",
        MinimumCommitment="100.00",
    )
    contract = new_contract(client, catalog, variant)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    bill_at(client, FEBRUARY)
    assert amounts(only_invoice(client, contract), "Commitment") == []


def test_a_final_invoice_prorates_the_commitment_like_the_fee(client: TestClient) -> None:
    """April has 30 days: a contract ended on April 11 owes 10 of them, so a 90.00
    commitment is 30.00 and a 30.00 fee 10.00; with 5.00 of usage the true-up is 15.00."""
    catalog = new_catalog(client, "Calls")
    variant = new_variant(
        client,
        catalog,
        Metered("Calls", per_unit("1.00")),
        RecurringFee="30.00",
        MinimumCommitment="90.00",
    )
    move_clock(client, APRIL)
    contract = new_contract(client, catalog, variant, start=APRIL)
    post_usage(client, contract, "5", "2026-04-05T00:00:00Z")
    end_contract(client, contract, "2026-04-11T00:00:00Z")
    bill_at(client, "2026-04-12T00:00:00Z")
    final = only_invoice(client, contract)
    assert final["Kind"] == "Final"
    assert amounts(final, "RecurringFee") == ["10.00"]
    assert amounts(final, "Commitment") == ["15.00"]
