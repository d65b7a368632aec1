"""SPEC §13 and §14: webhooks in the console: the seller's endpoints (URL, events,
enabled or disabled and why, failing deliveries), an endpoint's deliveries, "Retry now"
(the API's retry: the event is due again at once), and the failing endpoints on the
overview. Deliveries go to a real receiving server on loopback, as in
tests/api/test_webhooks.py; the test clock drives every attempt."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.webhook_delivery import HttpSender
from arrears.services.webhook_secrets import SecretBox
from arrears.store.database import Database
from arrears.worker.runner import WebhookSending, Worker
from tests.api.test_webhooks import KEY, deliveries, new_webhook, send_test
from tests.billing_factories import app_without_worker
from tests.console_factories import sign_in
from tests.factories import SellerKey, new_seller
from tests.webhook_receiver import Receiver, receiving


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


@dataclass(frozen=True)
class Failing:
    """A seller whose endpoint answered its test event with 500, and the failed attempt."""

    seller: SellerKey
    webhook_id: str
    delivery_id: str
    token: str


@pytest.fixture
def failing(client: TestClient, worker: Worker, receiver: Receiver) -> Failing:
    seller = new_seller(client, "Acme Hosting")
    webhook = new_webhook(client, seller, receiver.url, ["invoice.finalized"])
    receiver.answer(500)
    delivery = send_test(client, seller, webhook["Id"])
    assert worker.run_webhooks() == 1
    token = sign_in(client, seller)
    return Failing(seller, str(webhook["Id"]), str(delivery["Id"]), token)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("\xa0", " ")


def _retry(client: TestClient, failing: Failing, **form: str) -> object:
    path = f"/console/webhooks/{failing.webhook_id}/deliveries/{failing.delivery_id}/retry"
    return client.post(path, data=form, follow_redirects=False)


def test_the_webhooks_page_lists_each_endpoint_with_its_events_state_and_failing_deliveries(
    client: TestClient, failing: Failing, receiver: Receiver
) -> None:
    other = new_webhook(client, failing.seller, receiver.url + "/other")
    patched = client.patch(
        f"/api/v1/webhooks/{other['Id']}", json={"Enabled": False}, headers=failing.seller.headers
    )
    assert patched.status_code == 200, patched.text
    response = client.get("/console/webhooks")
    assert response.status_code == 200, response.text
    text = _text(response.text)
    assert f"{receiver.url} billing system invoice.finalized Enabled 1" in text
    assert f"{receiver.url}/other billing system * Disabled: Disabled by the seller. 0" in text
    assert "2 endpoints" in text


def test_an_endpoints_page_lists_its_deliveries_with_status_attempt_response_and_next_attempt(
    client: TestClient, failing: Failing
) -> None:
    response = client.get(f"/console/webhooks/{failing.webhook_id}?sort=due")
    assert response.status_code == 200, response.text
    text = _text(response.text)
    assert "Failing deliveries 1" in text
    text = text[text.index("Deliveries to this endpoint") :]
    # Oldest first: the failed first attempt (500, next attempt 5 seconds later), then
    # the second, waiting for then.
    assert re.search(r"webhook\.test \S+ Failed .*? 1 Jan 1, 2026.*? 500 Jan 1, 2026", text)
    assert text.index("Failed") < text.index("Pending")
    newest_first = _text(client.get(f"/console/webhooks/{failing.webhook_id}").text)
    newest_first = newest_first[newest_first.index("Deliveries to this endpoint") :]
    assert newest_first.index("Pending") < newest_first.index("Failed")
    assert "2 deliveries" in text


def test_retry_now_makes_the_delivery_due_now(
    client: TestClient, failing: Failing, worker: Worker, receiver: Receiver
) -> None:
    assert worker.run_webhooks() == 0  # the next attempt is due in 5 seconds
    response = _retry(client, failing, csrf_token=failing.token)
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    page = client.get(response.headers["location"])  # type: ignore[attr-defined]
    assert "The delivery is due now" in page.text
    assert worker.run_webhooks() == 1  # at the same clock's now
    listed = deliveries(client, failing.seller, failing.webhook_id)
    assert [(d["Attempt"], d["Status"]) for d in listed] == [(2, "Succeeded"), (1, "Failed")]


def test_a_retry_without_the_csrf_token_is_refused(
    client: TestClient, failing: Failing, worker: Worker
) -> None:
    response = _retry(client, failing)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert worker.run_webhooks() == 0  # nothing was brought forward


def test_another_sellers_session_gets_404_on_the_endpoint_and_its_delivery(
    client: TestClient, failing: Failing, worker: Worker
) -> None:
    beta = new_seller(client, "Beta Cloud")
    token = sign_in(client, beta)
    assert client.get(f"/console/webhooks/{failing.webhook_id}").status_code == 404
    assert _retry(client, failing, csrf_token=token).status_code == 404  # type: ignore[attr-defined]
    assert "No webhook endpoints." in client.get("/console/webhooks").text
    assert worker.run_webhooks() == 0


def test_the_overview_shows_failing_webhook_endpoints(
    client: TestClient, failing: Failing, receiver: Receiver
) -> None:
    new_webhook(client, failing.seller, receiver.url + "/quiet")  # enabled, never failed
    text = _text(client.get("/console").text)
    assert (
        f"Failing webhook endpoints Endpoint State Failing deliveries {receiver.url} Enabled 1"
        in text
    )
    assert "/quiet" not in text
