"""SPEC §11 discounts and coupons on the contract usage API: created, read back,
refused with every bad field at once, and scoped to their seller."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import SellerKey, new_seller

TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS = {
    "Name": "Launch",
    "Percentage": 20,
    "Periods": 2,
    "AppliesTo": "Usage",
}


def _post(client: TestClient, seller: SellerKey, path: str, payload: Any) -> Any:
    return client.post(f"/api/v1/{path}", json=payload, headers=seller.headers)


def _errors(response: Any) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(e["field"], e["code"]) for e in response.json()["errors"]}


def test_a_percentage_discount_is_echoed_with_id_and_created_at(client: TestClient) -> None:
    seller = new_seller(client)
    response = _post(client, seller, "discounts", TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        **TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS,
        "Amount": None,
        "Id": body["Id"],
        "CreatedAt": "2026-01-01T00:00:00Z",
    }
    fetched = client.get(f"/api/v1/discounts/{body['Id']}", headers=seller.headers)
    assert fetched.json() == body


def test_an_amount_discount_lasts_every_period_without_periods(client: TestClient) -> None:
    seller = new_seller(client)
    payload = {"Name": "Loyalty", "Amount": "50.00", "AppliesTo": "All"}
    body = _post(client, seller, "discounts", payload).json()
    assert (body["Amount"], body["Percentage"], body["Periods"]) == (50, None, None)


def test_a_field_sent_as_null_is_absent(client: TestClient) -> None:
    seller = new_seller(client)
    payload = {"Name": "Loyalty", "Percentage": None, "Amount": "50.00", "AppliesTo": "All"}

    response = _post(client, seller, "discounts", payload)

    assert response.status_code == 201, response.text
    assert (response.json()["Amount"], response.json()["Percentage"]) == (50, None)


def test_a_discount_names_every_bad_field_at_once(client: TestClient) -> None:
    seller = new_seller(client)
    response = _post(
        client,
        seller,
        "discounts",
        {"Name": "", "Percentage": 120, "Amount": 5, "Periods": 0, "AppliesTo": "Tax", "X": 1},
    )
    assert _errors(response) == {
        ("Name", "required"),
        ("Percentage", "too_large"),
        ("Percentage", "one_of"),
        ("Periods", "not_an_integer"),
        ("AppliesTo", "unknown_value"),
        ("X", "unknown_field"),
    }


def test_discounts_are_listed_newest_first_with_their_number(client: TestClient) -> None:
    seller = new_seller(client)
    first = _post(client, seller, "discounts", TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS).json()
    second = _post(
        client, seller, "discounts", {"Name": "B", "Amount": 1, "AppliesTo": "All"}
    ).json()
    listed = client.get("/api/v1/discounts", headers=seller.headers)
    assert listed.headers["X-Total-Count"] == "2"
    assert {d["Id"] for d in listed.json()} == {first["Id"], second["Id"]}


def test_a_coupon_of_a_discount_is_echoed_with_no_redemptions(client: TestClient) -> None:
    seller = new_seller(client)
    discount = _post(client, seller, "discounts", TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS).json()
    payload = {
        "Code": "LAUNCH20",
        "DiscountId": discount["Id"],
        "MaxRedemptions": 3,
        "ValidUntil": "2026-03-31T23:59:59Z",
    }
    response = _post(client, seller, "coupons", payload)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        **payload,
        "Redemptions": 0,
        "Id": body["Id"],
        "CreatedAt": "2026-01-01T00:00:00Z",
    }
    assert client.get(f"/api/v1/coupons/{body['Id']}", headers=seller.headers).json() == body
    assert client.get("/api/v1/coupons", headers=seller.headers).json() == [body]


def test_a_coupon_code_is_unique_per_seller(client: TestClient) -> None:
    seller = new_seller(client)
    discount = _post(client, seller, "discounts", TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS).json()
    coupon = {"Code": "LAUNCH20", "DiscountId": discount["Id"]}
    assert _post(client, seller, "coupons", coupon).status_code == 201
    assert _post(client, seller, "coupons", coupon).status_code == 409
    other = new_seller(client, "Globex")
    own = _post(client, other, "discounts", TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS).json()
    taken_elsewhere = {"Code": "LAUNCH20", "DiscountId": own["Id"]}
    assert _post(client, other, "coupons", taken_elsewhere).status_code == 201


def test_a_coupon_names_every_bad_field_at_once(client: TestClient) -> None:
    seller = new_seller(client)
    response = _post(
        client, seller, "coupons", {"MaxRedemptions": 0, "ValidUntil": "soon", "Extra": True}
    )
    assert _errors(response) == {
        ("Code", "required"),
        ("DiscountId", "required"),
        ("MaxRedemptions", "not_an_integer"),
        ("ValidUntil", "invalid_datetime"),
        ("Extra", "unknown_field"),
    }


def test_a_coupon_of_another_sellers_discount_names_its_discount_id(client: TestClient) -> None:
    owner = new_seller(client)
    discount = _post(client, owner, "discounts", TWENTY_PERCENT_OFF_USAGE_FOR_TWO_PERIODS).json()
    intruder = new_seller(client, "Globex")
    response = _post(client, intruder, "coupons", {"Code": "X", "DiscountId": discount["Id"]})
    assert _errors(response) == {("DiscountId", "not_found")}
    assert (
        client.get(f"/api/v1/discounts/{discount['Id']}", headers=intruder.headers).status_code
        == 404
    )
