"""SPEC §1: no request can read, change or detect another seller's objects."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.factories import new_seller


def test_a_seller_never_sees_another_sellers_profile(client: TestClient) -> None:
    alice = new_seller(client, "Alice")
    bob = new_seller(client, "Bob")
    response = client.get(f"/api/sellers/{alice.seller_id}", headers=bob.headers)
    assert response.status_code == 403
    assert "Alice" not in response.text
