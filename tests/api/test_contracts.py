"""SPEC §4: contracts, their billing dates, and ending them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.factories import (
    ADMIN,
    SellerKey,
    new_component,
    new_contract,
    new_customer,
    new_plan,
    new_plan_variant,
    new_seller,
)

CREATED_AT = "2026-01-01T00:00:00Z"  # the test clock
UNKNOWN_ID = "0" * 24


def _problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _errors(response: Response) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in _problem(response, 422)["errors"]}


def _price_list(
    client: TestClient, seller: SellerKey, period: tuple[str, int] = ("Month", 1)
) -> tuple[str, str]:
    """A customer and a plan variant of `period`: (customer id, plan variant id)."""
    customer = new_customer(client, seller)
    plan = new_plan(client, seller)
    component = new_component(client, seller)
    variant = new_plan_variant(client, seller, plan["Id"], [component["Id"]], period=period)
    return str(customer["Id"]), str(variant["Id"])


def _create(client: TestClient, seller: SellerKey, **fields: object) -> Response:
    return client.post("/api/v1/contracts", json=fields, headers=seller.headers)


def _move_clock(client: TestClient, now: str) -> None:
    response = client.put("/admin/clock", json={"now": now}, headers=ADMIN)
    assert response.status_code == 200, response.text


# -- creating -----------------------------------------------------------------------------


def test_a_new_contract_starts_its_first_billing_period_at_start_date(client: TestClient) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller)
    response = _create(
        client,
        seller,
        CustomerId=customer_id,
        PlanVariantId=variant_id,
        StartDate="2026-01-15T00:00:00Z",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "Id": body["Id"],
        "CreatedAt": CREATED_AT,
        "CustomerId": customer_id,
        "PlanVariantId": variant_id,
        "Phases": [{"PlanVariantId": variant_id, "From": "2026-01-15T00:00:00Z"}],
        "StartDate": "2026-01-15T00:00:00Z",
        "EndDate": None,
        "LastBillingDate": "2026-01-15T00:00:00Z",
        "NextBillingDate": "2026-02-15T00:00:00Z",
        "Status": "Active",
        "BillingError": None,
    }
    fetched = client.get(f"/api/v1/contracts/{body['Id']}", headers=seller.headers)
    assert fetched.status_code == 200
    assert fetched.json() == body


@pytest.mark.parametrize(
    ("period", "start", "next_billing"),
    [
        # Month steps keep the day of month and clamp it to the month's last day.
        (("Month", 1), "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z"),
        (("Month", 1), "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z"),
        (("Month", 1), "2026-03-31T08:30:00Z", "2026-04-30T08:30:00Z"),
        (("Month", 1), "2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z"),
        (("Month", 3), "2026-11-30T00:00:00Z", "2027-02-28T00:00:00Z"),
        (("Week", 1), "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z"),
        (("Week", 2), "2026-12-28T00:00:00Z", "2027-01-11T00:00:00Z"),
        (("Year", 1), "2026-06-15T12:30:00Z", "2027-06-15T12:30:00Z"),
        (("Year", 1), "2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z"),
        (("Day", 1), "2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z"),
        (("Day", 30), "2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z"),
    ],
)
def test_next_billing_date_is_one_billing_period_after_start_date(
    client: TestClient, period: tuple[str, int], start: str, next_billing: str
) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller, period)
    contract = new_contract(client, seller, customer_id, variant_id, start)
    assert contract["StartDate"] == start
    assert contract["LastBillingDate"] == start
    assert contract["NextBillingDate"] == next_billing


def test_a_start_date_without_offset_is_utc(client: TestClient) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller)
    contract = new_contract(client, seller, customer_id, variant_id, "2026-01-15T10:30:00")
    assert contract["StartDate"] == "2026-01-15T10:30:00Z"
    assert contract["NextBillingDate"] == "2026-02-15T10:30:00Z"


def test_a_start_date_with_an_offset_is_answered_in_utc(client: TestClient) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller)
    contract = new_contract(client, seller, customer_id, variant_id, "2026-01-31T01:00:00+02:00")
    # The anchor is the UTC instant, Jan 30 23:00, so the month step lands on Feb 28.
    assert contract["StartDate"] == "2026-01-30T23:00:00Z"
    assert contract["LastBillingDate"] == "2026-01-30T23:00:00Z"
    assert contract["NextBillingDate"] == "2026-02-28T23:00:00Z"
    west = new_contract(client, seller, customer_id, variant_id, "2026-03-31T21:00:00-05:00")
    assert west["StartDate"] == "2026-04-01T02:00:00Z"
    assert west["NextBillingDate"] == "2026-05-01T02:00:00Z"


def test_unknown_customer_and_plan_variant_are_both_named(client: TestClient) -> None:
    seller = new_seller(client)
    response = _create(
        client,
        seller,
        CustomerId=UNKNOWN_ID,
        PlanVariantId="1" * 24,
        StartDate="2026-01-01T00:00:00Z",
    )
    assert _errors(response) == {("CustomerId", "not_found"), ("PlanVariantId", "not_found")}
    assert client.get("/api/v1/contracts", headers=seller.headers).json() == []


@pytest.mark.parametrize("foreign", ["customer", "plan variant", "both"])
def test_another_sellers_customer_or_plan_variant_is_unknown(
    client: TestClient, foreign: str
) -> None:
    """A contract can only join a seller's own customer to the seller's own plan variant,
    and another seller's id is answered exactly like an id that does not exist."""
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    alices_customer, alices_variant = _price_list(client, alice)
    bobs_customer, bobs_variant = _price_list(client, bob)
    customer_id = bobs_customer if foreign in ("customer", "both") else alices_customer
    variant_id = bobs_variant if foreign in ("plan variant", "both") else alices_variant

    with_foreign = _create(
        client,
        alice,
        CustomerId=customer_id,
        PlanVariantId=variant_id,
        StartDate="2026-01-01T00:00:00Z",
    )
    unknown_customer = UNKNOWN_ID if customer_id == bobs_customer else customer_id
    unknown_variant = "1" * 24 if variant_id == bobs_variant else variant_id
    with_unknown = _create(
        client,
        alice,
        CustomerId=unknown_customer,
        PlanVariantId=unknown_variant,
        StartDate="2026-01-01T00:00:00Z",
    )
    _problem(with_foreign, 422)
    assert all(e["code"] == "not_found" for e in with_foreign.json()["errors"])
    as_unknown = with_foreign.text.replace(bobs_customer, UNKNOWN_ID).replace(
        bobs_variant, "1" * 24
    )
    assert as_unknown == with_unknown.text
    assert client.get("/api/v1/contracts", headers=alice.headers).json() == []
    assert client.get("/api/v1/contracts", headers=bob.headers).json() == []


def test_a_contract_needs_customer_plan_variant_and_start_date(client: TestClient) -> None:
    seller = new_seller(client)
    assert _errors(_create(client, seller)) == {
        ("CustomerId", "required"),
        ("PlanVariantId", "required"),
        ("StartDate", "required"),
    }
    customer_id, variant_id = _price_list(client, seller)
    response = _create(
        client,
        seller,
        CustomerId=customer_id,
        PlanVariantId=variant_id,
        StartDate="next Monday",
        EndDate="2027-01-01T00:00:00Z",
    )
    assert {field for field, _code in _errors(response)} == {"StartDate", "EndDate"}


# -- listing ------------------------------------------------------------------------------


def test_contracts_are_filtered_by_customer_id(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    first, variant_id = _price_list(client, alice)
    second = str(new_customer(client, alice, CompanyName="Initech")["Id"])
    a = new_contract(client, alice, first, variant_id)
    b = new_contract(client, alice, second, variant_id)
    c = new_contract(client, alice, first, variant_id, "2026-02-01T00:00:00Z")
    bobs_customer, bobs_variant = _price_list(client, bob)
    new_contract(client, bob, bobs_customer, bobs_variant)

    mine = client.get(f"/api/v1/contracts?customerId={first}", headers=alice.headers)
    assert mine.status_code == 200
    assert [x["Id"] for x in mine.json()] == [c["Id"], a["Id"]]  # newest first
    assert mine.headers["x-total-count"] == "2"

    theirs = client.get(f"/api/v1/contracts?customerId={second}", headers=alice.headers)
    assert [x["Id"] for x in theirs.json()] == [b["Id"]]

    everything = client.get("/api/v1/contracts", headers=alice.headers)
    assert everything.headers["x-total-count"] == "3"

    for nobody in (UNKNOWN_ID, bobs_customer):
        none = client.get(f"/api/v1/contracts?customerId={nobody}", headers=alice.headers)
        assert none.status_code == 200
        assert none.json() == []
        assert none.headers["x-total-count"] == "0"


def test_contracts_are_newest_first_and_paged_with_skip_and_take(client: TestClient) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller)
    ids = [new_contract(client, seller, customer_id, variant_id)["Id"] for _ in range(5)]

    page = client.get("/api/v1/contracts?skip=1&take=2", headers=seller.headers)
    assert page.status_code == 200
    assert [x["Id"] for x in page.json()] == [ids[3], ids[2]]  # the 4th and 3rd created
    assert page.headers["x-total-count"] == "5"

    filtered = client.get(
        f"/api/v1/contracts?customerId={customer_id}&skip=4&take=10", headers=seller.headers
    )
    assert [x["Id"] for x in filtered.json()] == [ids[0]]
    assert filtered.headers["x-total-count"] == "5"


@pytest.mark.parametrize(
    ("query", "field"), [("take=0", "take"), ("take=501", "take"), ("skip=-1", "skip")]
)
def test_contract_paging_out_of_bounds_is_422_naming_the_query_field(
    client: TestClient, query: str, field: str
) -> None:
    seller = new_seller(client)
    response = client.get(f"/api/v1/contracts?{query}", headers=seller.headers)
    assert {f for f, _code in _errors(response)} == {field}


def test_getting_an_unknown_or_foreign_contract_is_404(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    customer_id, variant_id = _price_list(client, bob)
    bobs = str(new_contract(client, bob, customer_id, variant_id)["Id"])
    foreign = client.get(f"/api/v1/contracts/{bobs}", headers=alice.headers)
    unknown = client.get(f"/api/v1/contracts/{UNKNOWN_ID}", headers=alice.headers)
    _problem(foreign, 404)
    assert foreign.text.replace(bobs, UNKNOWN_ID) == unknown.text


# -- ending -------------------------------------------------------------------------------


def _contract(client: TestClient, seller: SellerKey, start: str = "2026-01-01T00:00:00Z") -> str:
    customer_id, variant_id = _price_list(client, seller)
    return str(new_contract(client, seller, customer_id, variant_id, start)["Id"])


def _end(client: TestClient, seller: SellerKey, contract_id: str, end: object) -> Response:
    return client.post(
        f"/api/v1/contracts/{contract_id}/end", json={"EndDate": end}, headers=seller.headers
    )


def test_an_ended_contract_stays_active_until_the_clock_reaches_end_date(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    contract_id = _contract(client, seller)
    before = client.get(f"/api/v1/contracts/{contract_id}", headers=seller.headers).json()

    response = _end(client, seller, contract_id, "2026-03-01T00:00:00Z")
    assert response.status_code == 200, response.text
    ended = response.json()
    assert ended == {**before, "EndDate": "2026-03-01T00:00:00Z", "Status": "Active"}

    _move_clock(client, "2026-02-28T23:59:59Z")
    got = client.get(f"/api/v1/contracts/{contract_id}", headers=seller.headers).json()
    assert got["Status"] == "Active"

    _move_clock(client, "2026-03-01T00:00:00Z")
    got = client.get(f"/api/v1/contracts/{contract_id}", headers=seller.headers).json()
    assert got["Status"] == "Ended"
    assert got["EndDate"] == "2026-03-01T00:00:00Z"
    listed = client.get("/api/v1/contracts", headers=seller.headers).json()
    assert [x["Status"] for x in listed] == ["Ended"]


def test_an_end_date_with_an_offset_is_answered_in_utc(client: TestClient) -> None:
    seller = new_seller(client)
    contract_id = _contract(client, seller)
    response = _end(client, seller, contract_id, "2026-03-01T01:00:00+02:00")
    assert response.status_code == 200, response.text
    assert response.json()["EndDate"] == "2026-02-28T23:00:00Z"
    no_offset = _end(client, seller, _contract(client, seller), "2026-03-01T00:00:00")
    assert no_offset.json()["EndDate"] == "2026-03-01T00:00:00Z"


def test_an_end_date_before_start_date_is_422(client: TestClient) -> None:
    seller = new_seller(client)
    contract_id = _contract(client, seller, "2026-02-01T00:00:00Z")
    response = _end(client, seller, contract_id, "2026-01-31T23:59:59Z")
    assert _errors(response) == {("EndDate", "before_start")}
    got = client.get(f"/api/v1/contracts/{contract_id}", headers=seller.headers).json()
    assert got["EndDate"] is None


def test_an_end_date_must_be_an_instant(client: TestClient) -> None:
    """Without one the contract ends after its notice period (SPEC §11,
    tests/api/test_plan_orders.py)."""
    seller = new_seller(client)
    contract_id = _contract(client, seller)
    for end in ("soon", True):
        assert {f for f, _code in _errors(_end(client, seller, contract_id, end))} == {"EndDate"}


def test_ending_a_contract_twice_is_409(client: TestClient) -> None:
    seller = new_seller(client)
    contract_id = _contract(client, seller)
    assert _end(client, seller, contract_id, "2026-03-01T00:00:00Z").status_code == 200
    _problem(_end(client, seller, contract_id, "2026-04-01T00:00:00Z"), 409)
    got = client.get(f"/api/v1/contracts/{contract_id}", headers=seller.headers).json()
    assert got["EndDate"] == "2026-03-01T00:00:00Z"


def test_ending_an_unknown_or_foreign_contract_is_404(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    bobs = _contract(client, bob)
    foreign = _end(client, alice, bobs, "2026-03-01T00:00:00Z")
    unknown = _end(client, alice, UNKNOWN_ID, "2026-03-01T00:00:00Z")
    _problem(foreign, 404)
    assert foreign.text.replace(bobs, UNKNOWN_ID) == unknown.text
    got = client.get(f"/api/v1/contracts/{bobs}", headers=bob.headers).json()
    assert got["EndDate"] is None


# -- instants no calendar can hold --------------------------------------------------------


def test_a_start_date_whose_next_billing_date_is_past_year_9999_is_422(
    client: TestClient,
) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller, ("Year", 1))
    response = _create(
        client,
        seller,
        CustomerId=customer_id,
        PlanVariantId=variant_id,
        StartDate="9999-06-01T00:00:00Z",
    )
    assert {field for field, _code in _errors(response)} == {"StartDate"}


def test_a_start_date_before_year_1_in_utc_is_422(client: TestClient) -> None:
    seller = new_seller(client)
    customer_id, variant_id = _price_list(client, seller)
    response = _create(
        client,
        seller,
        CustomerId=customer_id,
        PlanVariantId=variant_id,
        StartDate="0001-01-01T00:00:00+01:00",
    )
    assert {field for field, _code in _errors(response)} == {"StartDate"}


def test_an_end_date_past_year_9999_in_utc_is_422(client: TestClient) -> None:
    seller = new_seller(client)
    contract_id = _contract(client, seller)
    response = _end(client, seller, contract_id, "9999-12-31T23:00:00-02:00")
    assert {field for field, _code in _errors(response)} == {"EndDate"}
