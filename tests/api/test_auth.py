"""SPEC §1: API keys, the admin token, and 401/403."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from arrears.store.database import Database
from arrears.store.tables import ApiKeyRow
from tests.factories import ADMIN, new_seller


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    return body


def test_a_new_sellers_key_reads_its_own_profile(client: TestClient) -> None:
    seller = new_seller(client, name="Acme")
    response = client.get(f"/api/sellers/{seller.seller_id}", headers=seller.headers)
    assert response.status_code == 200
    assert response.json()["name"] == "Acme"
    assert response.json()["currency"] == "EUR"
    assert response.json()["createdAt"] == "2026-01-01T00:00:00Z"


def test_missing_key_is_401(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.get(f"/api/sellers/{seller.seller_id}")
    _problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_key_is_401(client: TestClient) -> None:
    seller = new_seller(client)
    wrong_secret = seller.api_key[:-4] + "0000"
    for key in (wrong_secret, "garbage", "arr__", f"arr_{seller.key_id}_", "Bearer"):
        response = client.get(
            f"/api/sellers/{seller.seller_id}", headers={"Authorization": f"Bearer {key}"}
        )
        _problem(response, 401)


def test_a_key_of_another_scheme_is_401(client: TestClient) -> None:
    seller = new_seller(client)
    response = client.get(
        f"/api/sellers/{seller.seller_id}", headers={"Authorization": f"Basic {seller.api_key}"}
    )
    _problem(response, 401)


def test_revoked_key_is_401_and_other_keys_still_work(client: TestClient) -> None:
    seller = new_seller(client)
    second = client.post(f"/admin/sellers/{seller.seller_id}/keys", headers=ADMIN)
    assert second.status_code == 201
    second_key = {"Authorization": f"Bearer {second.json()['apiKey']}"}

    revoked = client.delete(
        f"/admin/sellers/{seller.seller_id}/keys/{seller.key_id}", headers=ADMIN
    )
    assert revoked.status_code == 204

    body = _problem(client.get(f"/api/sellers/{seller.seller_id}", headers=seller.headers), 401)
    assert "revoked" in body["detail"]
    assert client.get(f"/api/sellers/{seller.seller_id}", headers=second_key).status_code == 200


def test_revoking_a_key_twice_or_another_sellers_key_is_404(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    url = f"/admin/sellers/{alice.seller_id}/keys/{bob.key_id}"
    _problem(client.delete(url, headers=ADMIN), 404)
    assert (
        client.delete(
            f"/admin/sellers/{alice.seller_id}/keys/{alice.key_id}", headers=ADMIN
        ).status_code
        == 204
    )
    _problem(
        client.delete(f"/admin/sellers/{alice.seller_id}/keys/{alice.key_id}", headers=ADMIN), 404
    )


def test_a_key_of_seller_a_on_seller_b_path_is_403(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    body = _problem(client.get(f"/api/sellers/{bob.seller_id}", headers=alice.headers), 403)
    assert "Bob" not in str(body)
    # An id that does not exist answers exactly the same: nothing to tell them apart.
    unknown = _problem(client.get("/api/sellers/0000", headers=alice.headers), 403)
    assert unknown == body


def test_admin_endpoints_need_the_admin_token(client: TestClient) -> None:
    payload = {"name": "Acme"}
    _problem(client.post("/admin/sellers", json=payload), 401)
    _problem(
        client.post("/admin/sellers", json=payload, headers={"Authorization": "Bearer no"}), 401
    )
    seller = new_seller(client)
    # A seller's key is not the admin token.
    _problem(client.post("/admin/sellers", json=payload, headers=seller.headers), 401)


def test_the_api_key_is_stored_only_as_a_hash(client: TestClient, database: Database) -> None:
    seller = new_seller(client)
    secret = seller.api_key.rsplit("_", 1)[1]
    with database.read() as session:
        stored = session.execute(select(ApiKeyRow.secret_sha256)).scalars().all()
    assert stored
    assert all(secret not in value for value in stored)


def test_new_keys_for_an_unknown_seller_are_404(client: TestClient) -> None:
    _problem(client.post("/admin/sellers/nope/keys", headers=ADMIN), 404)
