"""What the API fuzzer (`test_fuzz.py`) found, each kept as the exact request it sent.

Most findings were the OpenAPI document disagreeing with answers that were right: every
success was documented as a JSON string, decimals as strings, errors as FastAPI's
`{"detail": [...]}` instead of problem+json, and 401, 403, 404 and 409 not at all. Two
were wrong answers: a 405's `Allow` header named only some methods of the resource, and
a long `Locale` answered 500 on PostgreSQL.
"""

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
    end_contract,
    new_priced_contract,
    post_usage,
)
from tests.factories import ADMIN, new_seller

PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


def _openapi(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200, response.text
    openapi: dict[str, Any] = response.json()
    return openapi


def _documented(client: TestClient, method: str, path: str) -> dict[str, Any]:
    """The responses the OpenAPI declares for the operation, by status code."""
    responses: dict[str, Any] = _openapi(client)["paths"][path][method.lower()]["responses"]
    return responses


def _is_documented_problem(client: TestClient, method: str, path: str, status: int) -> bool:
    content = _documented(client, method, path).get(str(status), {}).get("content", {})
    return content.get(PROBLEM, {}).get("schema") == {"$ref": "#/components/schemas/Problem"}


def _schema(client: TestClient, name: str) -> dict[str, Any]:
    schema: dict[str, Any] = _openapi(client)["components"]["schemas"][name]
    return schema


# -- the OpenAPI document ------------------------------------------------------------------


def test_openapi_documents_each_success_by_its_model_not_as_a_string(client: TestClient) -> None:
    # Found as: GET /healthz answered {"status":"ok"}, documented as {"type": "string"}.
    healthz = _documented(client, "GET", "/healthz")["200"]["content"]["application/json"]
    assert healthz["schema"] == {"$ref": "#/components/schemas/Health"}
    # Found as: POST /api/v1/customers {} answered the customer, documented as a string.
    created = _documented(client, "POST", "/api/v1/customers")["201"]["content"]
    assert created["application/json"]["schema"] == {"$ref": "#/components/schemas/CustomerOut"}


def test_openapi_documents_decimals_in_responses_as_json_numbers(client: TestClient) -> None:
    # Found as: GET /api/v1/invoices answered "Total": 3.57, documented as a string.
    invoice = _schema(client, "InvoiceOut")["properties"]
    assert invoice["Total"]["type"] == "number"
    assert invoice["TaxRate"]["type"] == "number"
    usage = _schema(client, "UsageOut")["properties"]
    assert usage["Quantity"]["type"] == "number"
    # Requests still take a decimal as a number or a string (SPEC §5).
    quantity = _schema(client, "NewUsage")["properties"]["Quantity"]
    assert {alternative.get("type") for alternative in quantity["anyOf"]} == {"number", "string"}


def test_openapi_documents_every_error_as_a_problem(client: TestClient) -> None:
    # Found as: POST /api/v1/customers without a body answered a 422 problem+json,
    # documented as FastAPI's application/json {"detail": [...]}.
    openapi = _openapi(client)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert list(response["content"]) == [PROBLEM], (method, path, status)


def test_openapi_documents_the_outage_problem_where_the_database_is_needed(
    client: TestClient,
) -> None:
    # Not found by the fuzzer (it never takes the database away), but documented with
    # the other problems: /readyz declared its 503 without a body schema.
    assert _is_documented_problem(client, "GET", "/readyz", 503)
    assert _is_documented_problem(client, "POST", "/api/v1/contracts/{contractId}/usage", 503)
    assert "503" not in _documented(client, "GET", "/healthz")


def test_an_absent_key_answers_a_documented_401(client: TestClient) -> None:
    # Found as: GET /api/v1/components/0660c47fe7f446e31862d2ef without a key.
    response = client.get("/api/v1/components/0660c47fe7f446e31862d2ef")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert _is_documented_problem(client, "GET", "/api/v1/components/{componentId}", 401)


def test_another_sellers_id_in_the_path_answers_a_documented_403(client: TestClient) -> None:
    # Found as: GET /api/sellers/<another seller's id> with a seller's key.
    acme, initech = new_seller(client, "Acme"), new_seller(client, "Initech")
    response = client.get(f"/api/sellers/{initech.seller_id}", headers=acme.headers)
    assert response.status_code == 403
    assert _is_documented_problem(client, "GET", "/api/sellers/{sellerId}", 403)


def test_an_unknown_id_answers_a_documented_404(client: TestClient) -> None:
    # Found as: GET /api/v1/plans/t with a seller's key.
    seller = new_seller(client)
    assert client.get("/api/v1/plans/t", headers=seller.headers).status_code == 404
    assert _is_documented_problem(client, "GET", "/api/v1/plans/{planId}", 404)


def test_preview_of_a_contract_with_its_final_invoice_answers_a_documented_409(
    client: TestClient,
) -> None:
    # Found as: GET /api/v1/contracts/<a contract ended on January 20th>/preview.
    contract = new_priced_contract(client, None, Metered("Transfer"))
    post_usage(client, contract, "3", "2026-01-10T00:00:00Z")
    end_contract(client, contract, "2026-01-20T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    response = client.get(f"{contract.path}/preview", headers=contract.headers)
    assert response.status_code == 409, response.text
    assert _is_documented_problem(client, "GET", "/api/v1/contracts/{contractId}/preview", 409)


def test_moving_the_clock_backwards_answers_a_documented_409(client: TestClient) -> None:
    # Found as: PUT /admin/clock {"now": "2000-01-01T00:00:00Z"}.
    response = client.put("/admin/clock", json={"now": "2000-01-01T00:00:00Z"}, headers=ADMIN)
    assert response.status_code == 409
    assert _is_documented_problem(client, "PUT", "/admin/clock", 409)


def test_openapi_documents_the_records_of_one_subscriptions_submission(
    client: TestClient,
) -> None:
    # Found as: every generated PUT /api/sellers/{sellerId}/services/consumptions was
    # refused, as its records were documented as anything at all (`{}`).
    submission = _schema(client, "SubscriptionSubmission")["properties"]["consumptions"]
    assert submission["items"] == {"$ref": "#/components/schemas/SubscriptionRecord"}
    record = _schema(client, "SubscriptionRecord")
    assert record["required"] == ["quantity"]
    assert set(record["properties"]) == {
        "productId",
        "itemCode",
        "quantity",
        "dueDate",
        "key",
        "description",
        "price",
    }


# -- answers -------------------------------------------------------------------------------


def test_a_locale_longer_than_thirty_five_characters_is_refused(client: TestClient) -> None:
    # Found on PostgreSQL as a 500 (the column holds 35 characters; SQLite took it).
    locale = (
        "bi-nFZSPpHe-pRb5ty5i-cITh6Tj-u2-6D3rCC-7EG1z3d9-Od076BaE-JY8YqdW2-QUs-EzGM6KgH-"
        "s0Mw-iAu0cah-To-yvtnm-ew-S5-M0EiOWKr-0m02vqES-qRIdeF2c-Pma62Rv6-44xi01K-pzwuz5h4"
    )
    body = {"TaxRate": 0, "FirstName": "", "Locale": locale, "ExternalCustomerId": "\u00bc"}
    response = client.post("/api/v1/customers", json=body, headers=new_seller(client).headers)
    assert response.status_code == 422, response.text
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("Locale", "too_long")]


def test_a_locale_of_thirty_five_characters_is_stored(client: TestClient) -> None:
    locale = "de-abcdefgh-abcdefgh-abcdefgh-abcde"
    assert len(locale) == 35
    seller = new_seller(client)
    response = client.post("/api/v1/customers", json={"Locale": locale}, headers=seller.headers)
    assert response.status_code == 201, response.text
    assert response.json()["Locale"] == locale


def test_an_invoice_prefix_is_checked_together_with_the_other_fields(client: TestClient) -> None:
    # Found while checking every pattern after the Locale: the prefix's pattern was not
    # anchored, so `ABC-` passed the first validation and was refused only after the
    # name's error had been answered alone (and the OpenAPI documented "contains a
    # letter or digit").
    response = client.post(
        "/admin/sellers", json={"name": "", "invoicePrefix": "ABC-"}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert {(e["field"], e["code"]) for e in response.json()["errors"]} == {
        ("name", "too_short"),
        ("invoicePrefix", "invalid_format"),
    }
    too_long = {"name": "Acme", "invoicePrefix": "A" * 21}
    response = client.post("/admin/sellers", json=too_long, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["invoicePrefix"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        # Found as: OPTIONS /api/v1/components answered 405 with `Allow: POST`.
        ("/api/v1/components", "GET, POST"),
        # Found as: OPTIONS /api/v1/components/<id> answered 405 with `Allow: GET`.
        ("/api/v1/components/0660c48d1f051d0d3f790640", "GET, PATCH"),
        # Found as: OPTIONS /admin/clock answered 405 with `Allow: GET`.
        ("/admin/clock", "GET, PUT"),
    ],
)
def test_method_not_allowed_names_every_method_of_the_resource(
    client: TestClient, path: str, allowed: str
) -> None:
    response = client.options(path, headers=new_seller(client).headers)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["allow"] == allowed
