"""SPEC §6, older endpoints: `PUT` and `POST /api/sellers/{sellerId}/services/consumptions`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from arrears.domain.money import MAX_INTEGER_DIGITS
from tests.ingest_factories import (
    MeteredSeller,
    exact,
    new_customer_contract,
    new_metered_seller,
    problem,
    send,
    total_count,
    usage,
)

UNKNOWN_ID = "0" * 24


def _put(
    client: TestClient, metered: MeteredSeller, records: list[Any], contract_id: str | None = None
) -> Response:
    body = {"subscriptionId": contract_id or metered.contract_id, "consumptions": records}
    return send(client, "PUT", metered.consumptions_path, metered, body)


def _report(client: TestClient, metered: MeteredSeller, **query: Any) -> list[dict[str, Any]]:
    response = send(client, "POST", metered.consumptions_path, metered, query)
    assert response.status_code == 200, response.text
    subscriptions: list[dict[str, Any]] = exact(response)["subscriptions"]
    return subscriptions


def _post_usage(
    client: TestClient, metered: MeteredSeller, contract_id: str, **fields: Any
) -> None:
    response = send(client, "POST", metered.usage_path(contract_id), metered, usage(**fields))
    assert response.status_code == 201, response.text


def _errors(response: Response) -> set[tuple[int | None, str, str]]:
    return {(e.get("index"), e["field"], e["code"]) for e in problem(response, 422)["errors"]}


# -- PUT: one subscription, synchronously -------------------------------------------------


def test_put_saves_the_records_of_one_subscription_at_once(client: TestClient) -> None:
    metered = new_metered_seller(client)
    records = [
        {"productId": metered.component_id, "quantity": Decimal("1.5"), "key": "a"},
        {"itemCode": "ITEM-1", "quantity": "2.25", "dueDate": "2026-01-20T12:00:00"},
    ]
    response = _put(client, metered, records)
    assert response.status_code == 200, response.text
    body = exact(response)
    assert body == {
        "subscriptionId": metered.contract_id,
        "consumptions": [
            {
                "id": body["consumptions"][0]["id"],
                "productId": metered.component_id,
                "quantity": Decimal("1.5"),
                "dueDate": "2026-01-01T00:00:00Z",  # defaults to now (the test clock)
                "key": "a",
            },
            {
                "id": body["consumptions"][1]["id"],
                "productId": metered.component_ids[1],
                "quantity": Decimal("2.25"),
                "dueDate": "2026-01-20T12:00:00Z",
                "key": None,
            },
        ],
    }
    # saved synchronously: visible at once, no task to wait for
    listed = client.get(metered.usage_path(), headers=metered.headers).json()
    assert {entry["Id"] for entry in listed} == {c["id"] for c in body["consumptions"]}


def test_put_is_all_or_nothing_and_names_every_bad_record(client: TestClient) -> None:
    metered = new_metered_seller(client)
    records = [
        {"productId": metered.component_id, "quantity": 1},
        {"productId": metered.component_id, "quantity": -1},
        {"quantity": 1},
        {"productId": metered.component_id, "quantity": 1, "dueDate": "2025-06-01T00:00:00Z"},
        {"productId": metered.component_id, "quantity": "NaN"},
        {"productId": metered.component_id, "quantity": 1, "colour": "red"},
        {"itemCode": "NO-SUCH-ITEM", "quantity": 1},
        {"productId": metered.component_id, "quantity": 1, "key": "k"},
        {"productId": metered.component_id, "quantity": 2, "key": "k"},
    ]
    assert _errors(_put(client, metered, records)) == {
        (1, "consumptions[1].quantity", "negative"),
        (2, "consumptions[2].productId", "required"),
        (3, "consumptions[3].dueDate", "before_contract_start"),
        (4, "consumptions[4].quantity", "not_a_decimal"),
        (5, "consumptions[5].colour", "unknown_field"),
        (6, "consumptions[6].itemCode", "not_found"),
        (8, "consumptions[8].key", "duplicate_in_submission"),
    }
    assert total_count(client, metered) == 0


def test_put_names_every_bad_record_even_beside_one_that_is_not_an_object(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    records: list[Any] = [{"productId": metered.component_id, "quantity": -1}, 5]
    errors = _errors(_put(client, metered, records))
    assert (0, "consumptions[0].quantity", "negative") in errors
    assert {index for index, _field, _code in errors} == {0, 1}


def test_put_refuses_a_record_that_names_a_subscription_of_its_own(client: TestClient) -> None:
    metered = new_metered_seller(client, contracts=2)
    records = [
        {
            "subscriptionId": metered.contract_ids[1],
            "productId": metered.component_id,
            "quantity": 1,
        }
    ]
    response = _put(client, metered, records)
    assert response.status_code == 422, response.text
    assert total_count(client, metered, metered.contract_ids[0]) == 0


def test_put_with_a_due_date_outside_the_representable_years_in_utc_is_422(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    record = {
        "productId": metered.component_id,
        "quantity": 1,
        "dueDate": "9999-12-31T23:59:59-01:00",
    }
    assert {field for _, field, _ in _errors(_put(client, metered, [record]))} == {
        "consumptions[0].dueDate"
    }


def test_put_with_a_nul_character_in_a_record_is_422(client: TestClient) -> None:
    metered = new_metered_seller(client)
    records = [{"productId": metered.component_id, "quantity": 1, "key": "vm\x0042"}]
    assert {index for index, _, _ in _errors(_put(client, metered, records))} == {0}


def test_put_replaying_a_key_counts_as_a_duplicate_and_saves_it_once(client: TestClient) -> None:
    metered = new_metered_seller(client)
    record = {"productId": metered.component_id, "quantity": 1, "key": "vm-42/2026-01-01"}
    first = _put(client, metered, [record])
    assert first.status_code == 200, first.text
    assert len(first.json()["consumptions"]) == 1
    again = _put(client, metered, [record, {**record, "key": "vm-42/2026-01-02"}])
    assert again.status_code == 200, again.text
    # The answer shows every entry the records stand for, the stored one included.
    assert [c["key"] for c in again.json()["consumptions"]] == [
        "vm-42/2026-01-01",
        "vm-42/2026-01-02",
    ]
    assert total_count(client, metered) == 2
    changed = _put(client, metered, [{**record, "quantity": 2}])
    assert _errors(changed) == {(0, "consumptions[0].key", "key_reused")}
    assert total_count(client, metered) == 2


def test_put_on_an_unknown_or_foreign_subscription_saves_nothing_and_tells_nothing(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    foreign = new_metered_seller(client, name="Other")
    answers = []
    for contract_id in (UNKNOWN_ID, foreign.contract_id):
        response = _put(
            client, metered, [{"productId": metered.component_id, "quantity": 1}], contract_id
        )
        assert response.status_code in (404, 422), response.text
        answers.append((response.status_code, response.text.replace(contract_id, "?")))
    assert answers[0] == answers[1]
    assert total_count(client, foreign) == 0


def test_put_with_a_body_that_is_not_a_submission_is_422(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for body in ({}, {"subscriptionId": metered.contract_id}, {"consumptions": []}, []):
        problem(send(client, "PUT", metered.consumptions_path, metered, body), 422)
    problem(send(client, "PUT", metered.consumptions_path, metered, '{"subscriptionId": '), 400)


# -- POST: consumption report -------------------------------------------------------------


def test_the_report_sums_unbilled_and_billed_quantity_per_product_exactly(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    for quantity in (Decimal("1.5"), Decimal("2.25"), Decimal("0.1"), Decimal("0.2")):
        _post_usage(
            client,
            metered,
            metered.contract_id,
            component_id=metered.component_id,
            quantity=quantity,
        )
    assert _report(client, metered) == [
        {
            "subscriptionId": metered.contract_id,
            "customerId": metered.customer_id,
            "products": [
                {
                    "productId": metered.component_ids[0],
                    "itemCode": "ITEM-0",
                    "unbilledQuantity": Decimal("4.05"),  # no float's 4.050000000000001
                    "billedQuantity": 0,
                },
                {
                    "productId": metered.component_ids[1],
                    "itemCode": "ITEM-1",
                    "unbilledQuantity": 0,
                    "billedQuantity": 0,
                },
            ],
        }
    ]


def test_the_report_sums_quantities_near_the_bound_exactly(
    client: TestClient, database_kind: str, request: pytest.FixtureRequest
) -> None:
    metered = new_metered_seller(client)
    largest = Decimal(10) ** MAX_INTEGER_DIGITS - Decimal("0.000001")
    for _ in range(10):
        _post_usage(
            client,
            metered,
            metered.contract_id,
            component_id=metered.component_id,
            quantity=largest,
        )
    product = _report(client, metered)[0]["products"][0]
    assert product["unbilledQuantity"] == largest * 10


def test_the_report_filters_by_customer_and_by_subscription_ids(client: TestClient) -> None:
    metered = new_metered_seller(client, contracts=2)
    other_customer, other_contract = new_customer_contract(client, metered, "Initech")
    foreign = new_metered_seller(client, name="Other")

    def ids(**query: Any) -> list[str]:
        return sorted(s["subscriptionId"] for s in _report(client, metered, **query))

    everything = sorted([*metered.contract_ids, other_contract])
    assert ids() == everything
    assert ids(customerId=metered.customer_id) == sorted(metered.contract_ids)
    assert ids(customerId=other_customer) == [other_contract]
    assert ids(customerId=foreign.customer_id) == []
    assert ids(subscriptionIds=[other_contract, foreign.contract_id, UNKNOWN_ID]) == [
        other_contract
    ]
    assert ids(customerId=metered.customer_id, subscriptionIds=[other_contract]) == []
    assert ids(subscriptionIds=[]) == []


def test_the_report_counts_usage_due_in_the_from_to_window_only(client: TestClient) -> None:
    metered = new_metered_seller(client)
    for day, quantity in (("05", 1), ("15", 10), ("31", 100)):
        _post_usage(
            client,
            metered,
            metered.contract_id,
            component_id=metered.component_id,
            quantity=quantity,
            DueDate=f"2026-01-{day}T00:00:00Z",
        )

    def unbilled(**window: str) -> Decimal:
        product = _report(client, metered, **window)[0]["products"][0]
        assert product["productId"] == metered.component_id
        quantity: Decimal = product["unbilledQuantity"]
        return quantity

    assert unbilled() == 111
    assert unbilled(**{"from": "2026-01-15T00:00:00Z"}) == 110
    assert unbilled(to="2026-01-15T00:00:00Z") == 1  # `to` is exclusive
    assert unbilled(**{"from": "2026-01-05T00:00:00Z", "to": "2026-01-31T00:00:00Z"}) == 11
    assert unbilled(**{"from": "2026-01-15T02:00:00+02:00", "to": "2026-01-15T00:00:01"}) == 10


def test_the_report_refuses_unknown_fields(client: TestClient) -> None:
    metered = new_metered_seller(client)
    response = send(client, "POST", metered.consumptions_path, metered, {"customer": "x"})
    assert {e["code"] for e in problem(response, 422)["errors"]} == {"unknown_field"}


# -- OpenAPI ------------------------------------------------------------------------------


def test_both_older_endpoints_are_deprecated_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operations = paths["/api/sellers/{sellerId}/services/consumptions"]
    assert operations["put"]["deprecated"] is True
    assert operations["post"]["deprecated"] is True
    bulk = paths["/api/sellers/{sellerId}/services/bulkconsumptions"]["post"]
    assert not bulk.get("deprecated", False)
