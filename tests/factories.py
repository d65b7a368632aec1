"""Small typed factories: each makes one object over HTTP and returns what tests need."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass(frozen=True)
class SellerKey:
    seller_id: str
    key_id: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def new_seller(client: TestClient, name: str = "Acme", currency: str = "EUR") -> SellerKey:
    response = client.post(
        "/admin/sellers",
        json={"name": name, "currency": currency, "invoicePrefix": "INV"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return SellerKey(body["sellerId"], body["keyId"], body["apiKey"])
