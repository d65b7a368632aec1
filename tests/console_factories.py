"""The console's test world and signing in, over HTTP (a TestClient or an httpx.Client
against a served process: both speak the same API)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.billing_factories import (
    Metered,
    PricedContract,
    bill_at,
    move_clock,
    new_billing_seller,
    new_priced_contract,
    only_invoice,
    post_usage,
)
from tests.factories import SellerKey

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, html
    return match.group(1)


def sign_in(client: Any, seller: SellerKey) -> str:
    """Sign `client` in to the console with the seller's key; the session's CSRF token."""
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    response = client.post(
        "/console/sign-in",
        data={"api_key": seller.api_key, "csrf_token": csrf_of(form.text), "next": "/console"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/console")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


@dataclass(frozen=True)
class ConsoleWorld:
    contract: PricedContract
    invoice: dict[str, Any]
    task_id: str

    @property
    def seller(self) -> SellerKey:
        return self.contract.seller


def console_world(client: Any, name: str = "Acme Hosting") -> ConsoleWorld:
    """One customer, Globex, on storage at 0.10 per GB with 10 GB free a month, from
    1 January 2026: 25 GB in January, billed on 1 February (15 GB billable: 1.50 EUR),
    then 7 GB on 3 February; the clock ends on 15 February 2026. Plus a bulk submission
    with one record of quantity -1 (the caller runs the worker to fail it)."""
    seller = new_billing_seller(client, name)
    contract = new_priced_contract(client, seller, Metered(free_quota="10"))
    post_usage(client, contract, "25", "2026-01-10T09:00:00Z", Key="january-backup")
    bill_at(client, "2026-02-01T00:00:00Z")
    post_usage(client, contract, "7", "2026-02-03T09:00:00Z")
    move_clock(client, "2026-02-15T00:00:00Z")
    task = client.post(
        f"/api/sellers/{seller.seller_id}/services/bulkconsumptions",
        json={
            "consumptions": [
                {
                    "subscriptionId": contract.contract_id,
                    "productId": contract.component_id,
                    "quantity": -1,
                    "key": "=cmd",
                }
            ]
        },
        headers=seller.headers,
    )
    assert task.status_code == 202, task.text
    return ConsoleWorld(contract, only_invoice(client, contract), task.json()["taskId"])
