"""SPEC §2: every error is problem+json naming every bad field; nothing answers 500."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import ADMIN


def _errors(response, status: int) -> list[dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body.get("errors", [])


def _post_seller(client: TestClient, body: bytes | str) -> object:
    return client.post(
        "/admin/sellers",
        content=body,
        headers={**ADMIN, "Content-Type": "application/json"},
    )


def test_malformed_json_is_400_problem(client: TestClient) -> None:
    errors = _errors(_post_seller(client, '{"name": "Acme"'), 400)
    assert errors[0]["code"] == "malformed_json"


def test_nan_and_infinity_are_malformed_json(client: TestClient) -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        _errors(_post_seller(client, f'{{"name": {literal}}}'), 400)


def test_every_bad_field_is_named_at_once(client: TestClient) -> None:
    response = client.post(
        "/admin/sellers",
        json={"name": 5, "currency": "XYZ", "invoicePrefix": "inv-", "colour": "red"},
        headers=ADMIN,
    )
    errors = {(error["field"], error["code"]) for error in _errors(response, 422)}
    assert errors == {
        ("name", "not_a_string"),
        ("currency", "unknown_currency"),
        ("invoicePrefix", "invalid_format"),
        ("colour", "unknown_field"),
    }


def test_missing_required_field_is_named(client: TestClient) -> None:
    errors = _errors(client.post("/admin/sellers", json={}, headers=ADMIN), 422)
    assert errors == [{"field": "name", "code": "required", "message": "Field required"}]


def test_a_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    for body in ("[]", "null", "3", '"name"'):
        _errors(_post_seller(client, body), 422)


def test_oversize_body_is_413_problem(client: TestClient) -> None:
    big = '{"name": "' + "x" * (65 * 1024) + '"}'
    _errors(_post_seller(client, big), 413)


def test_oversize_body_without_content_length_is_413_problem(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(
        "/admin/sellers", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"}
    )
    _errors(response, 413)


def test_unknown_route_is_404_problem(client: TestClient) -> None:
    _errors(client.get("/api/v1/nothing-here"), 404)


def test_wrong_method_is_405_problem(client: TestClient) -> None:
    _errors(client.delete("/healthz"), 405)


def test_every_response_carries_a_request_id(client: TestClient) -> None:
    ok = client.get("/healthz")
    assert len(ok.headers["x-request-id"]) == 32
    echoed = client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    unsafe = client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["x-request-id"] != "a b\tc"
    assert client.get("/nothing").headers["x-request-id"]
