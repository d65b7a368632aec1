"""Events written in the transaction of the change they report (SPEC §13, issue 20):
a committed change always has its event, a rolled-back one none, and the event's
`data` is exactly what the API answers for the object. Delivered to a real receiver on
loopback and verified with `standardwebhooks`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arrears.services import tasks, webhooks
from arrears.worker.runner import Worker
from tests.api.test_webhooks import (  # the fixtures of the endpoint tests
    client,
    deliveries,
    new_webhook,
    receiver,
    settings,
    worker,
)
from tests.billing_factories import bill_at, end_contract, new_priced_contract, post_usage
from tests.ingest_factories import send
from tests.webhook_receiver import Receiver

__all__ = ["client", "receiver", "settings", "worker"]


def exact_json(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def submit(client: TestClient, contract: Any, quantity: object) -> str:
    record = {
        "subscriptionId": contract.contract_id,
        "productId": contract.component_id,
        "quantity": quantity,
        "dueDate": "2026-01-10T00:00:00Z",
        "key": "vm-42/2026-01-10",
    }
    path = f"/api/sellers/{contract.seller.seller_id}/services/bulkconsumptions"
    response = send(client, "POST", path, contract.seller, {"consumptions": [record]})
    assert response.status_code == 202, response.text
    location: str = response.headers["Location"]
    return location


@pytest.mark.parametrize(
    ("quantity", "event_type"),
    [("12.5", "bulkconsumption.succeeded"), ("-3", "bulkconsumption.failed")],
)
def test_a_finished_task_arrives_signed_with_its_body_as_its_get_answers(
    client: TestClient, worker: Worker, receiver: Receiver, quantity: str, event_type: str
) -> None:
    contract = new_priced_contract(client)
    webhook = new_webhook(client, contract.seller, receiver.url, [event_type])
    location = submit(client, contract, quantity)
    assert worker.run_tasks() == 1
    assert worker.run_webhooks() == 1
    (received,) = receiver.received
    body = received.verified(str(webhook["Secret"]))
    assert body["type"] == event_type
    answer = client.get(location, headers=contract.headers)
    assert exact_json(received.body)["data"] == exact_json(answer.text)
    assert received.body.endswith(b'"data":' + answer.content + b"}")


def test_an_issued_invoice_arrives_signed_with_its_body_as_its_get_answers(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    contract = new_priced_contract(client, recurring_fee="9.90", tax_rate="19")
    webhook = new_webhook(client, contract.seller, receiver.url, ["invoice.finalized"])
    post_usage(client, contract, "12.5", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    assert worker.run_webhooks() == 1
    (received,) = receiver.received
    body = received.verified(str(webhook["Secret"]))
    assert (body["type"], body["timestamp"]) == ("invoice.finalized", "2026-02-01T00:00:00Z")
    invoice_id = body["data"]["Id"]
    answer = client.get(f"/api/v1/invoices/{invoice_id}", headers=contract.headers)
    assert exact_json(received.body)["data"] == exact_json(answer.text)
    assert received.body.endswith(b'"data":' + answer.content + b"}")


def test_an_endpoint_gets_only_the_events_it_subscribes_to(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    contract = new_priced_contract(client)
    new_webhook(client, contract.seller, receiver.url, ["bulkconsumption.failed"])
    submit(client, contract, "12.5")
    worker.run_tasks()
    bill_at(client, "2026-02-01T00:00:00Z")
    assert worker.run_webhooks() == 0
    assert receiver.received == []


def test_a_rolled_back_task_has_no_event_and_its_commit_has_one(
    client: TestClient, worker: Worker, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    contract = new_priced_contract(client)
    webhook = new_webhook(client, contract.seller, receiver.url)
    submit(client, contract, "12.5")
    written = webhooks.task_finished

    def written_then_failed(*args: Any) -> None:
        written(*args)
        raise RuntimeError("the worker dies before its commit")

    monkeypatch.setattr(tasks.webhooks, "task_finished", written_then_failed)
    with pytest.raises(RuntimeError):
        worker.run_tasks()
    assert worker.run_webhooks() == 0
    assert deliveries(client, contract.seller, webhook["Id"]) == []
    monkeypatch.undo()
    assert worker.run_tasks() == 1
    assert worker.run_webhooks() == 1
    (received,) = receiver.received
    assert received.verified(str(webhook["Secret"]))["type"] == "bulkconsumption.succeeded"


def test_an_ended_contract_arrives_signed_with_its_body_as_its_get_answers(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    contract = new_priced_contract(client)
    webhook = new_webhook(client, contract.seller, receiver.url, ["contract.ended"])
    ended = end_contract(client, contract, "2026-03-01T00:00:00Z")
    assert worker.run_webhooks() == 1
    (received,) = receiver.received
    body = received.verified(str(webhook["Secret"]))
    assert (body["type"], body["timestamp"]) == ("contract.ended", "2026-01-01T00:00:00Z")
    answer = client.get(contract.path, headers=contract.headers)
    assert exact_json(received.body)["data"] == exact_json(answer.text) == ended
    assert received.body.endswith(b'"data":' + answer.content + b"}")


def _issued_invoice(client: TestClient) -> tuple[Any, str]:
    contract = new_priced_contract(client, recurring_fee="9.90", tax_rate="19")
    post_usage(client, contract, "12.5", "2026-01-10T00:00:00Z")
    bill_at(client, "2026-02-01T00:00:00Z")
    invoices = client.get("/api/v1/invoices", headers=contract.headers).json()
    return contract, invoices[0]["Id"]


def _data_and_answer(received: Any, answer: Any) -> tuple[Any, Any]:
    return exact_json(received.body)["data"], exact_json(answer.text)


def test_a_payment_that_settles_an_invoice_arrives_as_invoice_paid(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    contract, invoice_id = _issued_invoice(client)
    webhook = new_webhook(client, contract.seller, receiver.url, ["invoice.paid"])
    invoice = exact_json(
        client.get(f"/api/v1/invoices/{invoice_id}", headers=contract.headers).text
    )
    path = f"/api/v1/invoices/{invoice_id}/payments"
    for amount, reference in (("10", "first"), (str(invoice["AmountDue"] - 10), "rest")):
        payment = {"Amount": amount, "Reference": reference}
        assert client.post(path, json=payment, headers=contract.headers).status_code == 201
    assert worker.run_webhooks() == 1  # the second payment settles it; the first did not
    (received,) = receiver.received
    assert received.verified(str(webhook["Secret"]))["type"] == "invoice.paid"
    answer = client.get(f"/api/v1/invoices/{invoice_id}", headers=contract.headers)
    data, got = _data_and_answer(received, answer)
    assert data == got
    assert data["PaymentStatus"] == "Paid"


def test_a_void_arrives_as_its_credit_note_then_invoice_voided(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    contract, invoice_id = _issued_invoice(client)
    events = ["invoice.voided", "creditnote.issued"]
    webhook = new_webhook(client, contract.seller, receiver.url, events)
    path = f"/api/v1/invoices/{invoice_id}/void"
    response = client.post(path, json={"Reason": "wrong plan"}, headers=contract.headers)
    assert response.status_code == 200, response.text
    assert worker.run_webhooks() == 2
    bodies = [r.verified(str(webhook["Secret"])) for r in receiver.received]
    assert sorted(b["type"] for b in bodies) == ["creditnote.issued", "invoice.voided"]
    by_type = {b["type"]: r for b, r in zip(bodies, receiver.received, strict=True)}
    note_id = exact_json(by_type["creditnote.issued"].body)["data"]["Id"]
    note = client.get(f"/api/v1/creditnotes/{note_id}", headers=contract.headers)
    assert _data_and_answer(by_type["creditnote.issued"], note)[0] == exact_json(note.text)
    invoice = client.get(f"/api/v1/invoices/{invoice_id}", headers=contract.headers)
    data, got = _data_and_answer(by_type["invoice.voided"], invoice)
    assert data == got
    assert data["PaymentStatus"] == "Voided"
