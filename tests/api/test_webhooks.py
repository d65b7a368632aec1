"""Webhooks (SPEC §13, issue 20) on SQLite and PostgreSQL: endpoints over HTTP, and
deliveries to a real receiving server on loopback, verified with `standardwebhooks`
the way a seller's receiver verifies them. The test clock drives every retry: the
worker sends only what is due at the clock's now."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.webhook_delivery import HttpSender, SendFailed, measure_pending
from arrears.services.webhook_secrets import SecretBox, SecretsUnreadable
from arrears.store.database import Database
from arrears.store.tables import WebhookEndpointRow
from arrears.worker.runner import WebhookSending, Worker
from tests.api.test_metrics import moved, scrape
from tests.billing_factories import app_without_worker
from tests.factories import SellerKey, new_seller
from tests.threads import all_at_once
from tests.webhook_receiver import Receiver, receiving

KEY = Fernet.generate_key().decode()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True, "webhooks_secrets_key": KEY})


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


@pytest.fixture
def worker(database: Database, clock: TestClock) -> Worker:
    sending = WebhookSending(box=SecretBox(KEY), sender=HttpSender(allow_private=True))
    return Worker(database, clock, webhooks=sending)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def new_webhook(
    client: TestClient, seller: SellerKey, url: str, events: list[str] | None = None
) -> dict[str, object]:
    body = {"Url": url, "Events": events or ["*"], "Description": "billing system"}
    response = client.post("/api/v1/webhooks", json=body, headers=seller.headers)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def send_test(client: TestClient, seller: SellerKey, webhook_id: object) -> dict[str, object]:
    response = client.post(f"/api/v1/webhooks/{webhook_id}/test", headers=seller.headers)
    assert response.status_code == 202, response.text
    delivery: dict[str, object] = response.json()
    return delivery


def deliveries(
    client: TestClient, seller: SellerKey, webhook_id: object, query: str = ""
) -> list[dict[str, object]]:
    response = client.get(
        f"/api/v1/webhooks/{webhook_id}/deliveries?{query}", headers=seller.headers
    )
    assert response.status_code == 200, response.text
    listed: list[dict[str, object]] = response.json()
    return listed


def test_a_webhook_is_created_with_a_secret_shown_only_then(client: TestClient) -> None:
    seller = new_seller(client)
    created = new_webhook(client, seller, "https://hooks.example.com/arrears")
    assert str(created["Secret"]).startswith("whsec_")
    assert created["Enabled"] is True
    assert created["Events"] == ["*"]
    read = client.get(f"/api/v1/webhooks/{created['Id']}", headers=seller.headers).json()
    assert "Secret" not in read
    assert read == {k: v for k, v in created.items() if k != "Secret"}
    listed = client.get("/api/v1/webhooks", headers=seller.headers)
    assert listed.json() == [read]
    assert listed.headers["X-Total-Count"] == "1"


def test_another_sellers_webhook_answers_404(client: TestClient) -> None:
    owner, other = new_seller(client, "Owner"), new_seller(client, "Other")
    webhook = new_webhook(client, owner, "https://hooks.example.com/")
    path = f"/api/v1/webhooks/{webhook['Id']}"
    assert client.get(path, headers=other.headers).status_code == 404
    assert client.patch(path, json={"Enabled": False}, headers=other.headers).status_code == 404
    assert client.delete(path, headers=other.headers).status_code == 404
    assert client.post(f"{path}/rotatesecret", headers=other.headers).status_code == 404
    assert client.get(f"{path}/deliveries", headers=other.headers).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://10.1.2.3/hooks",
        "http://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
    ],
)
def test_loopback_and_private_targets_are_refused_unless_allowed(
    database: Database, clock: TestClock, url: str
) -> None:
    settings = Settings(
        database_url="unused://", admin_token="test-admin-token", webhooks_secrets_key=KEY
    )
    with TestClient(app_without_worker(settings, database, clock)) as client:
        seller = new_seller(client)
        body = {"Url": url, "Events": ["invoice.finalized"]}
        response = client.post("/api/v1/webhooks", json=body, headers=seller.headers)
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["errors"]] == ["private_target"]


def test_every_bad_field_is_named_at_once(client: TestClient) -> None:
    seller = new_seller(client)
    body = {"Url": "ftp://hooks.example.com", "Events": ["invoice.finalized", "invoice.eaten"]}
    response = client.post("/api/v1/webhooks", json=body, headers=seller.headers)
    assert response.status_code == 422
    fields = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert fields == {("Url", "invalid_url"), ("Events[1]", "unknown_event")}
    assert client.get("/api/v1/webhooks", headers=seller.headers).json() == []


def test_a_test_event_arrives_signed_as_standard_webhooks(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    delivery = send_test(client, seller, webhook["Id"])
    assert delivery["Status"] == "Pending"
    assert worker.run_webhooks() == 1
    (received,) = receiver.received
    body = received.verified(str(webhook["Secret"]))
    assert body["type"] == "webhook.test"
    assert body["data"] == {"WebhookId": webhook["Id"]}
    assert received.headers["webhook-id"] == delivery["EventId"]
    (made,) = deliveries(client, seller, webhook["Id"])
    assert (made["Status"], made["StatusCode"], made["ResponseBody"]) == ("Succeeded", 200, "ok")


def test_500_twice_then_200_is_three_attempts_of_one_event_driven_by_the_clock(
    client: TestClient, worker: Worker, receiver: Receiver, clock: TestClock
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    receiver.answer(500, 500)
    send_test(client, seller, webhook["Id"])
    assert worker.run_webhooks() == 1
    assert worker.run_webhooks() == 0  # the next attempt is due in 5 seconds
    clock.move_to(clock.now() + timedelta(seconds=5))
    assert worker.run_webhooks() == 1
    clock.move_to(clock.now() + timedelta(seconds=59))
    assert worker.run_webhooks() == 0  # due one minute after the second attempt
    clock.move_to(clock.now() + timedelta(seconds=1))
    assert worker.run_webhooks() == 1
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
    for received in receiver.received:
        received.verified(str(webhook["Secret"]))
    listed = deliveries(client, seller, webhook["Id"])
    assert [(d["Attempt"], d["Status"], d["StatusCode"]) for d in listed] == [
        (3, "Succeeded", 200),
        (2, "Failed", 500),
        (1, "Failed", 500),
    ]
    assert listed[2]["NextAttemptAt"] == "2026-01-01T00:00:05Z"
    assert listed[1]["NextAttemptAt"] == "2026-01-01T00:01:05Z"
    assert listed[0]["NextAttemptAt"] is None
    failed = deliveries(client, seller, webhook["Id"], "status=Failed")
    assert [d["Attempt"] for d in failed] == [2, 1]


def test_a_receivers_answer_is_kept_to_1_KiB(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    receiver.answer(500)
    send_test(client, seller, webhook["Id"])
    worker.run_webhooks()
    (failed,) = deliveries(client, seller, webhook["Id"], "status=Failed")
    assert failed["ResponseBody"] == "x" * 1024


def test_a_receiver_down_for_three_days_is_disabled_with_a_reason_and_retry_delivers(
    client: TestClient, worker: Worker, receiver: Receiver, clock: TestClock
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    receiver.down()
    first = send_test(client, seller, webhook["Id"])
    path = f"/api/v1/webhooks/{webhook['Id']}"
    attempts = 0
    while client.get(path, headers=seller.headers).json()["Enabled"]:
        attempts += worker.run_webhooks()
        clock.move_to(clock.now() + timedelta(minutes=30))
    # 5 s, 1 min, 10 min, 1 h, 6 h, then every 12 h, and a last one at three days.
    assert attempts == 12
    disabled = client.get(path, headers=seller.headers).json()
    assert disabled["DisabledReason"].startswith(
        "Every delivery from 2026-01-01T00:00:00Z to 2026-01-04T00:00:00Z (3 days) failed"
    )
    assert disabled["DisabledAt"] == "2026-01-04T00:00:00Z"
    assert worker.run_webhooks() == 0
    receiver.up()
    enabled = client.patch(path, json={"Enabled": True}, headers=seller.headers).json()
    assert (enabled["Enabled"], enabled["DisabledReason"]) == (True, None)
    response = client.post(f"{path}/deliveries/{first['Id']}/retry", headers=seller.headers)
    assert response.status_code == 202
    assert (response.json()["Attempt"], response.json()["Status"]) == (13, "Pending")
    assert worker.run_webhooks() == 1
    (received,) = receiver.received
    assert received.headers["webhook-id"] == first["EventId"]
    received.verified(str(webhook["Secret"]))


def test_a_rotated_secret_signs_beside_the_new_one_for_24_hours(
    client: TestClient, worker: Worker, receiver: Receiver, clock: TestClock
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    path = f"/api/v1/webhooks/{webhook['Id']}"
    rotated = client.post(f"{path}/rotatesecret", headers=seller.headers).json()
    assert rotated["PreviousSecretExpiresAt"] == "2026-01-02T00:00:00Z"
    send_test(client, seller, webhook["Id"])
    worker.run_webhooks()
    clock.move_to(clock.now() + timedelta(hours=24))
    send_test(client, seller, webhook["Id"])
    worker.run_webhooks()
    during, after = receiver.received
    during.verified(str(webhook["Secret"]))
    during.verified(rotated["Secret"])
    after.verified(rotated["Secret"])
    with pytest.raises(Exception, match="No matching signature"):
        after.verified(str(webhook["Secret"]))


def test_a_deleted_webhook_gets_nothing_more(
    client: TestClient, worker: Worker, receiver: Receiver
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    send_test(client, seller, webhook["Id"])
    path = f"/api/v1/webhooks/{webhook['Id']}"
    assert client.delete(path, headers=seller.headers).status_code == 204
    assert worker.run_webhooks() == 0
    assert receiver.received == []
    assert client.get(path, headers=seller.headers).status_code == 404


def test_two_workers_on_postgresql_send_each_of_500_attempts_once(
    client: TestClient, database: Database, clock: TestClock, receiver: Receiver
) -> None:
    if database.is_sqlite:
        pytest.skip("several workers at once is a PostgreSQL setup (SPEC §9)")
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    event_ids = {send_test(client, seller, webhook["Id"])["EventId"] for _ in range(500)}
    workers = [
        Worker(
            database,
            clock,
            webhooks=WebhookSending(box=SecretBox(KEY), sender=HttpSender(allow_private=True)),
        )
        for _ in range(2)
    ]
    # Four delivery threads in each worker, all released together.
    made = all_at_once(8, lambda n: workers[n % 2].run_webhooks())
    assert sum(made) == 500
    assert all(m > 0 for m in made[:2])
    sent = [r.headers["webhook-id"] for r in receiver.received]
    assert len(sent) == 500
    assert set(sent) == event_ids
    succeeded = deliveries(client, seller, webhook["Id"], "status=Succeeded&take=500")
    assert len(succeeded) == 500
    assert {d["Attempt"] for d in succeeded} == {1}


def test_metrics_count_deliveries_by_outcome_and_show_how_long_the_oldest_waits(
    client: TestClient, worker: Worker, receiver: Receiver, clock: TestClock
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    before = scrape(client)
    receiver.answer(503)
    send_test(client, seller, webhook["Id"])
    send_test(client, seller, webhook["Id"])
    worker.run_webhooks()
    clock.move_to(clock.now() + timedelta(seconds=65))
    worker.run_webhooks()  # the failed one's retry, due 5 seconds after its failure
    receiver.down()
    send_test(client, seller, webhook["Id"])
    clock.move_to(clock.now() + timedelta(seconds=30))
    assert measure_pending(worker.database, clock) == 30.0
    after = scrape(client)
    total = "arrears_webhook_deliveries_total"
    assert moved(before, after, total, outcome="succeeded") == 2
    assert moved(before, after, total, outcome="failed") == 1
    assert after[("arrears_webhook_pending_age_seconds", frozenset())] == 30.0


def test_the_database_holds_secrets_only_encrypted_under_the_key_from_the_environment(
    client: TestClient, database: Database
) -> None:
    seller = new_seller(client)
    webhook = new_webhook(client, seller, "https://hooks.example.com/")
    with database.read() as session:
        (stored,) = session.execute(select(WebhookEndpointRow.secret)).scalars()
    secret = str(webhook["Secret"])
    assert secret.encode() not in stored
    assert base64.b64decode(secret.removeprefix("whsec_")) not in stored
    assert SecretBox(KEY).open(stored) == secret
    with pytest.raises(SecretsUnreadable):
        SecretBox(Fernet.generate_key().decode()).open(stored)


def test_a_host_name_that_resolves_to_loopback_is_refused_before_sending(
    receiver: Receiver,
) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")
    with pytest.raises(SendFailed, match="loopback or private"):
        HttpSender(allow_private=False).post(url, {}, b"{}")
    assert receiver.received == []


def test_an_attempt_that_cannot_be_sent_is_recorded_as_failed_and_retried(
    client: TestClient, database: Database, clock: TestClock, receiver: Receiver
) -> None:
    class Broken:
        def post(self, url: str, headers: object, body: bytes) -> object:
            raise UnicodeError("label too long")

    seller = new_seller(client)
    webhook = new_webhook(client, seller, receiver.url)
    send_test(client, seller, webhook["Id"])
    sending = WebhookSending(SecretBox(KEY), Broken())  # type: ignore[arg-type]
    broken = Worker(database, clock, webhooks=sending)
    assert broken.run_webhooks() == 1
    listed = deliveries(client, seller, webhook["Id"])
    assert [(d["Attempt"], d["Status"]) for d in listed] == [(2, "Pending"), (1, "Failed")]
    assert listed[1]["Error"] == "The attempt could not be sent (UnicodeError)."
