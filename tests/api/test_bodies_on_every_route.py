"""SPEC §2 on every route that takes a body: a body nested 30,000 deep (far past any
decoder's recursion, within the 64 KiB the tests allow a body) is a clear `400`, and a
body that repeats a key a `422` naming it: never a `500`, nor a silent choice."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.factories import ADMIN, new_seller
from tests.ingest_factories import problem

THIRTY_THOUSAND = 30_000
NESTED = '{"consumptions": [' + "[" * THIRTY_THOUSAND + "]" * THIRTY_THOUSAND + "]}"
REPEATED = '{"consumptions": [], "consumptions": []}'


def _routes_with_bodies(client: TestClient) -> list[tuple[str, str]]:
    """Every operation whose OpenAPI declares a request body (the bulk route's too)."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]


def _filled(template: str, seller_id: str = "s") -> str:
    path = template.replace("{sellerId}", seller_id)
    return re.sub(r"\{[^}]+\}", "0" * 24, path)


def test_every_route_that_takes_a_body_is_found(client: TestClient) -> None:
    found = _routes_with_bodies(client)
    assert ("POST", "/api/v1/contracts/{contractId}/usage") in found
    assert ("POST", "/api/sellers/{sellerId}/services/bulkconsumptions") in found
    assert ("PUT", "/api/sellers/{sellerId}/services/consumptions") in found
    assert ("POST", "/admin/sellers") in found
    assert len(found) >= 10


def _send(client: TestClient, method: str, template: str, body: str) -> object:
    seller = new_seller(client)
    headers = ADMIN if template.startswith("/admin") else seller.headers
    return client.request(
        method,
        _filled(template, seller.seller_id),
        content=body,
        headers={**headers, "Content-Type": "application/json"},
    )


def test_a_body_nested_thirty_thousand_deep_is_400_on_every_route(
    client: TestClient,
) -> None:
    answers = {
        (method, path): _send(client, method, path, NESTED)
        for method, path in _routes_with_bodies(client)
    }
    for (method, path), response in answers.items():
        body = problem(response, 400)  # type: ignore[arg-type]
        assert [e["code"] for e in body["errors"]] == ["too_deep"], (method, path)


def test_a_body_that_repeats_a_key_is_422_naming_it_on_every_route(client: TestClient) -> None:
    answers = {
        (method, path): _send(client, method, path, REPEATED)
        for method, path in _routes_with_bodies(client)
    }
    for (method, path), response in answers.items():
        errors = problem(response, 422)["errors"]  # type: ignore[arg-type]
        assert {"field": "consumptions", "code": "duplicate_key"} in [
            {"field": e["field"], "code": e["code"]} for e in errors
        ], (method, path, errors)


@pytest.mark.parametrize("body", [NESTED, REPEATED])
def test_a_dry_run_answers_the_same_as_a_submission(client: TestClient, body: str) -> None:
    seller = new_seller(client)
    path = f"/api/sellers/{seller.seller_id}/services/bulkconsumptions"
    headers = {**seller.headers, "Content-Type": "application/json"}
    submitted = client.post(path, content=body, headers=headers)
    dry = client.post(path + "?dryRun=true", content=body, headers=headers)
    assert (dry.status_code, dry.json()["errors"]) == (
        submitted.status_code,
        submitted.json()["errors"],
    )
