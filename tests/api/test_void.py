"""SPEC §10 "Void reopens": a voided invoice's usage entries and rated items are unbilled
again, and its period is billed again as if it had never been billed; exactly once holds
among invoices that are not voided."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
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
    get_contract,
    get_invoice,
    invoices_of,
    line_summary,
    new_priced_contract,
    only_invoice,
    period,
    post_usage,
    run_billing,
    totals,
    usage_entries,
)
from tests.correction_factories import as_issued, delete_usage, void, void_raw


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def test_a_voided_regular_invoices_period_is_billed_again_as_if_never_billed(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    post_usage(client, contract, "100", "2026-01-05T00:00:00Z")
    wrong = post_usage(client, contract, "30", "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    first = only_invoice(client, contract)
    assert [line_summary(line) for line in first["Lines"]] == [
        ("Storage", "130", "100", "30", False, "3.00")
    ]

    void(client, contract, first["Id"])
    delete_usage(client, contract, wrong["Id"])
    post_usage(client, contract, "10", "2026-01-25T00:00:00Z")
    assert run_billing(client)["invoices"] == 1

    voided, again = invoices_of(client, contract)
    assert voided["Id"] == first["Id"]
    assert as_issued(voided) == as_issued(first)
    assert (voided["PaymentStatus"], again["PaymentStatus"]) == ("Voided", "Open")
    assert period(again) == period(first) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
    assert again["Kind"] == "Regular"
    assert [line_summary(line) for line in again["Lines"]] == [
        ("Storage", "110", "100", "10", False, "1.00")
    ]
    billed = usage_entries(client, contract)
    assert sorted(entry["InvoiceId"] for entry in billed) == [again["Id"], again["Id"]]
    # And the next period goes on from there: nothing more is due.
    assert run_billing(client)["invoices"] == 0


def test_a_voided_invoices_entries_are_unbilled_until_billed_again(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)

    void(client, contract, invoice["Id"])

    assert [e["InvoiceId"] for e in usage_entries(client, contract, "billed=false")] == [None]
    assert usage_entries(client, contract, "billed=true") == []


def test_a_voided_invoice_is_not_voided_twice(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)
    void(client, contract, invoice["Id"])

    again = void_raw(client, contract, invoice["Id"])

    assert again.status_code == 409, again.text
    assert "voided already" in again.json()["detail"]


def test_an_earlier_period_is_voided_only_after_the_later_ones(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    post_usage(client, contract, "7", "2026-02-05T00:00:00Z")
    bill_at(client, "2026-03-01T00:00:00Z")
    january, february = invoices_of(client, contract)

    refused = void_raw(client, contract, january["Id"])
    void(client, contract, february["Id"])
    void(client, contract, january["Id"])
    run_billing(client)

    assert refused.status_code == 409, refused.text
    assert "void that first" in refused.json()["detail"]
    rebilled = invoices_of(client, contract)[2:]
    assert [(period(i)[0], totals(i)[0]) for i in rebilled] == [
        ("2026-01-01T00:00:00Z", "0.50"),
        ("2026-02-01T00:00:00Z", "0.70"),
    ]


def test_the_void_answers_the_invoice_as_issued(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    invoice = only_invoice(client, contract)

    voided = void(client, contract, invoice["Id"])

    assert as_issued(voided) == as_issued(invoice)
    assert as_issued(get_invoice(client, contract.seller, invoice["Id"])) == as_issued(invoice)


def test_a_voided_interim_invoices_entries_go_to_the_periods_regular_invoice(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client, None, Metered(free_quota="100"))
    post_usage(client, contract, "60", "2026-01-05T00:00:00Z")
    first = bill_interim_at(client, contract, "2026-01-06T00:00:00Z")
    post_usage(client, contract, "70", "2026-01-10T00:00:00Z")
    second = bill_interim_at(client, contract, "2026-01-11T00:00:00Z")
    assert [totals(get_invoice(client, contract.seller, i["Id"]))[0] for i in (first, second)] == [
        "0.00",
        "3.00",
    ]

    void(client, contract, first["Id"])
    bill_at(client, "2026-02-01T00:00:00Z")

    regular = invoices_of(client, contract)[-1]
    assert regular["Kind"] == "Regular"
    # The period's 130 GB cost 3.00 in all, which the second interim invoice charged:
    # of the free 100 GB, 70 went to it, the other 30 to these 60 GB.
    assert [line_summary(line) for line in regular["Lines"]] == [
        ("Storage", "60", "30", "30", False, "0.00")
    ]
    assert sorted(e["InvoiceId"] for e in usage_entries(client, contract)) == sorted(
        [second["Id"], regular["Id"]]
    )


def test_an_interim_invoice_is_voided_only_before_its_periods_regular_invoice(
    client: TestClient,
) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    interim = bill_interim_at(client, contract, "2026-01-06T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")

    response = void_raw(client, contract, interim["Id"])

    assert response.status_code == 409, response.text
    assert "regular invoice of period 0" in response.json()["detail"]


def test_a_voided_final_invoice_is_issued_again(client: TestClient) -> None:
    contract = new_priced_contract(client)
    post_usage(client, contract, "5", "2026-01-05T00:00:00Z")
    end_contract(client, contract, "2026-01-15T00:00:00Z")
    bill_at(client, "2026-01-16T00:00:00Z")
    final = only_invoice(client, contract)
    assert final["Kind"] == "Final"

    void(client, contract, final["Id"])
    wrong = usage_entries(client, contract)[0]
    delete_usage(client, contract, wrong["Id"])
    post_usage(client, contract, "4", "2026-01-10T00:00:00Z")
    run_billing(client)

    again = invoices_of(client, contract)[-1]
    assert (again["Kind"], period(again), totals(again)[0]) == (
        "Final",
        ("2026-01-01T00:00:00Z", "2026-01-15T00:00:00Z"),
        "0.40",
    )
    assert get_contract(client, contract)["NextBillingDate"] is None
