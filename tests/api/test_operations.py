"""SPEC §9: health, readiness, OpenAPI and the test clock."""

from __future__ import annotations

from fastapi.testclient import TestClient

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.store.database import Database
from tests.factories import ADMIN


def test_healthz_and_readyz_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings, clock) -> None:  # type: ignore[no-untyped-def]
    unreachable = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, database=unreachable, clock=clock)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/admin/sellers" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_test_clock_stands_still_until_moved(client: TestClient) -> None:
    assert client.get("/admin/clock", headers=ADMIN).json() == {"now": "2026-01-01T00:00:00Z"}
    moved = client.put("/admin/clock", json={"now": "2026-02-01T12:00:00+02:00"}, headers=ADMIN)
    assert moved.json() == {"now": "2026-02-01T10:00:00Z"}
    assert client.get("/admin/clock", headers=ADMIN).json() == {"now": "2026-02-01T10:00:00Z"}


def test_test_clock_without_offset_is_utc(client: TestClient) -> None:
    moved = client.put("/admin/clock", json={"now": "2026-03-01T00:00:00"}, headers=ADMIN)
    assert moved.json() == {"now": "2026-03-01T00:00:00Z"}


def test_test_clock_never_moves_backwards(client: TestClient) -> None:
    client.put("/admin/clock", json={"now": "2026-02-01T00:00:00Z"}, headers=ADMIN)
    back = client.put("/admin/clock", json={"now": "2026-01-15T00:00:00Z"}, headers=ADMIN)
    assert back.status_code == 409
    assert back.headers["content-type"] == "application/problem+json"
    assert client.get("/admin/clock", headers=ADMIN).json() == {"now": "2026-02-01T00:00:00Z"}


def test_moving_the_clock_backwards_names_its_instant_in_utc_with_z(client: TestClient) -> None:
    client.put("/admin/clock", json={"now": "2026-02-01T00:00:00Z"}, headers=ADMIN)
    back = client.put("/admin/clock", json={"now": "2026-01-15T00:00:00Z"}, headers=ADMIN)
    assert back.status_code == 409
    assert "The clock is at 2026-02-01T00:00:00Z;" in back.json()["detail"]


def test_a_number_for_the_clocks_now_is_a_422_naming_now_not_a_unix_time(
    client: TestClient,
) -> None:
    for now in (1, 1_800_000_000, 1.5):
        response = client.put("/admin/clock", json={"now": now}, headers=ADMIN)
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["now"]
    assert client.get("/admin/clock", headers=ADMIN).json() == {"now": "2026-01-01T00:00:00Z"}


def test_clock_endpoints_do_not_exist_without_the_test_clock(database: Database) -> None:
    settings = Settings(database_url="unused://", admin_token="t", test_clock=None)
    with TestClient(create_app(settings, database=database)) as client:
        response = client.get("/admin/clock", headers={"Authorization": "Bearer t"})
    assert response.status_code == 404


def test_admin_endpoints_do_not_exist_without_the_admin_token(database: Database) -> None:
    settings = Settings(database_url="unused://", admin_token=None)
    with TestClient(create_app(settings, database=database)) as client:
        response = client.post("/admin/sellers", json={"name": "Acme"})
        assert response.status_code == 404
        assert "/admin/sellers" not in client.get("/openapi.json").json()["paths"]
