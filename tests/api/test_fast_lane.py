"""The fast lane (api/fast_lane.py) answers a single usage post and `GET /healthz` as
their routes do: the same answer, the same errors, all of them at once.

A post sent as `application/json; charset=utf-8`, or a request with a query string,
is left to the route: each test sends the same request both ways and compares."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy.exc import OperationalError

from arrears.api import auth
from tests.ingest_factories import (
    MeteredSeller,
    exact,
    new_metered_seller,
    problem,
    send,
    usage,
)

ROUTE_ONLY = {"Content-Type": "application/json; charset=utf-8"}
UNKNOWN_ID = "0" * 24
# Fields that differ between two stored entries of the same values.
OWN_FIELDS = ("Id", "TransferredAt", "Key")


def _lane_and_route(
    client: TestClient, metered: MeteredSeller, payload: object, contract_id: str | None = None
) -> tuple[Response, Response]:
    path = metered.usage_path(contract_id)
    lane = send(client, "POST", path, metered, payload)
    route = send(client, "POST", path, metered, payload, **ROUTE_ONLY)
    return lane, route


def _without_own_fields(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = exact(response)
    return {name: value for name, value in body.items() if name not in OWN_FIELDS}


def _problem_without_instance(response: Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    body.pop("instance", None)
    return body


def test_a_valid_post_is_answered_as_its_route_answers_it(client: TestClient) -> None:
    metered = new_metered_seller(client)
    path = metered.usage_path()
    payload = usage(metered.component_id, Decimal("12.50"), Memo="eu-west backup")

    lane = send(client, "POST", path, metered, payload | {"Key": "lane"})
    route = send(client, "POST", path, metered, payload | {"Key": "route"}, **ROUTE_ONLY)

    assert (lane.status_code, route.status_code) == (201, 201)
    assert _without_own_fields(lane) == _without_own_fields(route)
    assert exact(lane)["Quantity"] == Decimal("12.50")
    assert lane.headers["content-type"] == route.headers["content-type"] == "application/json"
    assert "x-request-id" in lane.headers


def test_a_replayed_key_is_answered_200_with_the_stored_entry(client: TestClient) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.component_id, 3, Key="vm-7")

    first, replay = _lane_and_route(client, metered, payload)

    assert (first.status_code, replay.status_code) == (201, 200)
    assert exact(first) == exact(replay)


def test_a_body_with_many_faults_gets_the_routes_problem_naming_every_one(
    client: TestClient,
) -> None:
    metered = new_metered_seller(client)
    payload = usage(metered.unmetered_component_id, "1.1234567", Colour="blue")
    payload["DueDate"] = "2001-01-01T00:00:00Z"  # before the contract started

    lane, route = _lane_and_route(client, metered, payload)

    errors = problem(lane, 422)["errors"]
    assert {e["field"] for e in errors} >= {"Quantity", "Colour", "DueDate", "ComponentId"}
    assert _problem_without_instance(lane) == _problem_without_instance(route)


def test_a_repeated_key_is_refused_as_the_route_refuses_it(client: TestClient) -> None:
    metered = new_metered_seller(client)
    body = (
        f'{{"DueDate": "2026-01-15T00:00:00Z", "ComponentId": "{metered.component_id}", '
        '"Quantity": 1, "Quantity": 2}'
    )

    lane, route = _lane_and_route(client, metered, body)

    assert {e["code"] for e in problem(lane, 422)["errors"]} == {"duplicate_key"}
    assert _problem_without_instance(lane) == _problem_without_instance(route)


def test_a_body_that_is_not_json_is_the_routes_problem(client: TestClient) -> None:
    metered = new_metered_seller(client)

    lane, route = _lane_and_route(client, metered, '{"DueDate": ')

    assert lane.status_code == route.status_code
    assert _problem_without_instance(lane) == _problem_without_instance(route)


def test_a_post_to_an_unknown_contract_is_a_404_problem(client: TestClient) -> None:
    metered = new_metered_seller(client)

    lane, route = _lane_and_route(client, metered, usage(metered.component_id), UNKNOWN_ID)

    problem(lane, 404)
    assert _problem_without_instance(lane) == _problem_without_instance(route)


def test_a_post_with_an_unknown_api_key_is_a_401_problem(client: TestClient) -> None:
    metered = new_metered_seller(client)
    headers = {"Authorization": "Bearer not-a-key", "Content-Type": "application/json"}

    response = client.post(metered.usage_path(), json=usage(metered.component_id), headers=headers)

    problem(response, 401)


def test_a_post_whose_key_lookup_meets_an_outage_is_the_routes_503_problem(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    metered = new_metered_seller(client)
    lost = psycopg.OperationalError("server closed the connection unexpectedly")

    async def unreachable(*_args: object) -> str:
        raise OperationalError("SELECT ...", {}, lost)

    monkeypatch.setattr(auth, "seller_of_key", unreachable)
    lane, route = _lane_and_route(client, metered, usage(metered.component_id))

    assert (lane.status_code, route.status_code) == (503, 503)
    assert _problem_without_instance(lane) == _problem_without_instance(route)


def test_healthz_is_answered_as_its_route_answers_it(client: TestClient) -> None:
    lane = client.get("/healthz")
    route = client.get("/healthz?from=the-route")

    assert (lane.status_code, route.status_code) == (200, 200)
    assert lane.content == route.content == b'{"status":"ok"}'
    assert lane.headers["content-type"] == route.headers["content-type"]
