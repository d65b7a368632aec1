"""SPEC §6: `GET .../bulkconsumptions?message=&skip=&take=` lists the seller's tasks,
newest first, each as its `GET` answers without `errors`."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from tests.factories import new_seller
from tests.ingest_factories import (
    MeteredSeller,
    new_metered_seller,
    problem,
    record,
    run_bulk,
)


def _listing(client: TestClient, metered: MeteredSeller, query: str = "") -> Response:
    return client.get(f"{metered.bulk_path}{query}", headers=metered.headers)


def _listed(client: TestClient, metered: MeteredSeller, query: str = "") -> list[dict[str, Any]]:
    response = _listing(client, metered, query)
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def _good(metered: MeteredSeller, key: str) -> list[dict[str, Any]]:
    return [record(metered.contract_id, metered.component_id, 1, key=key)]


def _bad(metered: MeteredSeller) -> list[dict[str, Any]]:
    return [record(metered.contract_id, metered.component_id, -1)]


def test_tasks_are_listed_newest_first_each_as_its_get_answers_without_errors(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    first = run_bulk(client, metered, _good(metered, "one"))
    second = run_bulk(client, metered, _bad(metered))
    third = run_bulk(client, metered, _good(metered, "three"))
    listed = _listed(client, metered)
    assert [task["taskId"] for task in listed] == [
        third["taskId"],
        second["taskId"],
        first["taskId"],
    ]
    without_errors = [{k: v for k, v in t.items() if k != "errors"} for t in (third, second, first)]
    assert listed == without_errors
    assert second["errors"]  # the failed task has errors, and the listing shows none


def test_message_lists_only_the_tasks_in_that_state(client: TestClient) -> None:
    metered = new_metered_seller(client)
    run_bulk(client, metered, _good(metered, "one"))
    failed = run_bulk(client, metered, _bad(metered))
    run_bulk(client, metered, _good(metered, "two"))
    assert [t["taskId"] for t in _listed(client, metered, "?message=Failed")] == [failed["taskId"]]
    assert len(_listed(client, metered, "?message=Successful")) == 2
    assert _listed(client, metered, "?message=Processing") == []


def test_skip_and_take_page_the_tasks_and_x_total_count_holds_their_number(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    ids = [run_bulk(client, metered, _good(metered, f"k{n}"))["taskId"] for n in range(5)]
    response = _listing(client, metered, "?skip=1&take=2")
    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == "5"
    assert [t["taskId"] for t in response.json()] == [ids[3], ids[2]]


def test_an_unknown_message_is_a_422_naming_message(client: TestClient) -> None:
    metered = new_metered_seller(client)
    errors = problem(_listing(client, metered, "?message=Done"), 422)["errors"]
    assert [e["field"] for e in errors] == ["message"]


def test_another_sellers_tasks_are_never_listed(client: TestClient) -> None:
    alice = new_metered_seller(client, name="Alice")
    bob = new_metered_seller(client, name="Bob")
    run_bulk(client, alice, _good(alice, "alice"))
    assert _listed(client, bob) == []


def test_listing_with_a_key_of_another_seller_is_403_and_without_a_key_401(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    other = new_seller(client, "Other")
    assert client.get(metered.bulk_path, headers=other.headers).status_code == 403
    assert client.get(metered.bulk_path).status_code == 401
