"""Factories of the corrections tests (SPEC §10): the invoice of the spec's numbers,
credit notes, payments and voids sent over HTTP."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from httpx2 import Response

from tests.billing_factories import (
    Json,
    Metered,
    PricedContract,
    bill_at,
    new_priced_contract,
    only_invoice,
    post_usage,
    send_json,
)
from tests.factories import SellerKey
from tests.ingest_factories import exact


def invoice_of_89_35(
    client: TestClient, seller: SellerKey | None = None
) -> tuple[PricedContract, Json]:
    """A January invoice with 19 % tax: Storage 500 GB at 0.10 = 50.00, Traffic
    284.5 GB at 0.10 = 28.45, the fee 10.90; 89.35 + 16.98 tax = 106.33."""
    contract = new_priced_contract(
        client, seller, Metered("Storage"), Metered("Traffic"), recurring_fee="10.90", tax_rate="19"
    )
    post_usage(client, contract, "500", "2026-01-10T00:00:00Z", contract.component_ids[0])
    post_usage(client, contract, "284.5", "2026-01-11T00:00:00Z", contract.component_ids[1])
    bill_at(client, "2026-02-01T00:00:00Z")
    return contract, only_invoice(client, contract)


def credit_raw(
    client: TestClient, who: SellerKey | PricedContract, invoice_id: str, body: Json
) -> Response:
    return send_json(client, "POST", f"/api/v1/invoices/{invoice_id}/creditnotes", who, body)


def credit(
    client: TestClient,
    who: SellerKey | PricedContract,
    invoice_id: str,
    *lines: tuple[int, str],
    reason: str = "Goodwill",
) -> Json:
    """A credit note of `(LineIndex, Amount)`s; without lines, of all that is left."""
    body: Json = {"Reason": reason}
    if lines:
        body["Lines"] = [{"LineIndex": i, "Amount": Decimal(a)} for i, a in lines]
    response = credit_raw(client, who, invoice_id, body)
    assert response.status_code == 201, response.text
    note: Json = exact(response)
    return note


def pay_raw(
    client: TestClient,
    who: SellerKey | PricedContract,
    invoice_id: str,
    amount: str,
    reference: str,
) -> Response:
    body = {"Amount": Decimal(amount), "Reference": reference, "PaidAt": "2026-02-10T00:00:00Z"}
    return send_json(client, "POST", f"/api/v1/invoices/{invoice_id}/payments", who, body)


def note_totals(note: Json) -> tuple[str, str, str]:
    """(Subtotal, TaxAmount, Total) as written in the JSON text."""
    return str(note["Subtotal"]), str(note["TaxAmount"]), str(note["Total"])


def void_raw(
    client: TestClient,
    who: SellerKey | PricedContract,
    invoice_id: str,
    reason: str = "Wrong quantity",
) -> Response:
    return send_json(client, "POST", f"/api/v1/invoices/{invoice_id}/void", who, {"Reason": reason})


def void(client: TestClient, who: SellerKey | PricedContract, invoice_id: str) -> Json:
    response = void_raw(client, who, invoice_id)
    assert response.status_code == 200, response.text
    body: Json = exact(response)
    return body


BALANCE_FIELDS = ("PaymentStatus", "AmountCredited", "AmountPaid", "AmountDue")


def as_issued(invoice: Json) -> Json:
    """The invoice without what payments and corrections change."""
    return {key: value for key, value in invoice.items() if key not in BALANCE_FIELDS}


def delete_usage(client: TestClient, contract: PricedContract, usage_id: str) -> None:
    response = client.delete(f"{contract.usage_path}/{usage_id}", headers=contract.headers)
    assert response.status_code == 204, response.text
