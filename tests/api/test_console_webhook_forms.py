"""SPEC §13 and §14: creating and changing webhook endpoints in the console, over the
API's own models and service: a new endpoint and its secret shown once, editing its URL,
events, description and state, rotating its secret and deleting it after asking. A bad
field is refused with the API's message for it, beside the field, the form filled in
again; private targets only with ARREARS_WEBHOOKS_ALLOW_PRIVATE; every form takes its
CSRF token; another seller's endpoint is a 404."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.webhook_delivery import HttpSender
from arrears.services.webhook_secrets import SecretBox
from arrears.store.database import Database
from arrears.worker.runner import WebhookSending, Worker
from tests.api.test_webhooks import KEY, new_webhook, send_test
from tests.billing_factories import app_without_worker
from tests.console_factories import sign_in
from tests.factories import SellerKey, new_seller
from tests.webhook_receiver import receiving

PUBLIC_URL = "https://hooks.example.com/arrears"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """As configured by default: webhooks go to public addresses only."""
    return settings.model_copy(update={"webhooks_secrets_key": KEY})


@pytest.fixture
def client(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    with TestClient(app_without_worker(settings, database, clock)) as test_client:
        yield test_client


@pytest.fixture
def allowing(settings: Settings, database: Database, clock: TestClock) -> Iterator[TestClient]:
    """The same service with ARREARS_WEBHOOKS_ALLOW_PRIVATE=1."""
    allowed = settings.model_copy(update={"webhooks_allow_private": True})
    with TestClient(app_without_worker(allowed, database, clock)) as test_client:
        yield test_client


@pytest.fixture
def seller(client: TestClient) -> SellerKey:
    return new_seller(client, "Acme Hosting")


@pytest.fixture
def token(client: TestClient, seller: SellerKey) -> str:
    return sign_in(client, seller)


def _text(page: str) -> str:
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("\xa0", " ")
    return html.unescape(text)


def _secret(page: str) -> str:
    match = re.search(r'<code id="secret">(whsec_[^<]+)</code>', page)
    assert match, page
    return match.group(1)


def _create(client: TestClient, token: str, **form: Any) -> Any:
    data = {"csrf_token": token, "url": PUBLIC_URL, "events": ["*"], **form}
    return client.post("/console/webhooks", data=data, follow_redirects=False)


def _webhooks(client: TestClient, seller: SellerKey) -> list[dict[str, Any]]:
    listed = client.get("/api/v1/webhooks", headers=seller.headers)
    assert listed.status_code == 200, listed.text
    webhooks: list[dict[str, Any]] = listed.json()
    return webhooks


def _api_messages(client: TestClient, seller: SellerKey, body: dict[str, Any]) -> list[str]:
    refused = client.post("/api/v1/webhooks", json=body, headers=seller.headers)
    assert refused.status_code == 422, refused.text
    return [error["message"] for error in refused.json()["errors"]]


def _field_errors(page: str, field: str) -> list[str]:
    """The messages shown beside `field` (its error paragraphs)."""
    found = re.findall(rf'<p class="field-error" id="{field}-error-\d+">(.*?)</p>', page, re.S)
    return [_text(message).removeprefix(" ").removeprefix("Error: ") for message in found]


def test_an_endpoint_created_in_the_console_shows_its_secret_once_and_is_listed(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    form = client.get("/console/webhooks/new")
    assert form.status_code == 200, form.text
    created = _create(
        client,
        token,
        events=["invoice.finalized", "invoice.paid"],
        description="Accounting system",
    )
    assert created.status_code == 201, created.text
    secret = _secret(created.text)
    assert "it is not shown again" in created.text
    (webhook,) = _webhooks(client, seller)
    assert webhook["Url"] == PUBLIC_URL
    assert webhook["Events"] == ["invoice.finalized", "invoice.paid"]
    assert webhook["Description"] == "Accounting system"
    assert webhook["Enabled"] is True
    listed = _text(client.get("/console/webhooks").text)
    assert f"{PUBLIC_URL} Accounting system invoice.finalized, invoice.paid Enabled 0" in listed
    page = client.get(f"/console/webhooks/{webhook['Id']}").text
    assert secret not in page
    assert secret not in client.get("/console/webhooks").text


def test_a_private_url_and_an_unknown_event_get_the_apis_messages_beside_their_fields(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    url, events = "http://127.0.0.1:8080/hooks", ["invoice.paid", "invoice.lost"]
    refused = _create(client, token, url=url, events=events, description="Back office")
    assert refused.status_code == 422, refused.text
    api = _api_messages(client, seller, {"Url": url, "Events": events})
    assert len(api) == 2
    assert _field_errors(refused.text, "url") == [api[0]]
    assert "loopback or private address" in api[0]
    assert _field_errors(refused.text, "events") == [api[1]]
    assert "'invoice.lost' is no event" in api[1]
    # Filled in again as posted, each bad field marked.
    assert f'value="{url}"' in refused.text
    assert re.search(r'value="invoice.paid" checked', refused.text)
    assert 'value="Back office"' in refused.text
    assert re.search(r'id="url" [^>]*aria-invalid="true"', refused.text)
    assert _webhooks(client, seller) == []


def test_a_form_with_no_event_and_too_long_a_description_gets_the_apis_messages(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    # The API reads the body's shape first (the description's length), then the rules.
    long = "d" * 501
    too_long = _create(client, token, description=long)
    assert too_long.status_code == 422
    assert _field_errors(too_long.text, "description") == _api_messages(
        client, seller, {"Url": PUBLIC_URL, "Events": ["*"], "Description": long}
    )
    assert "at most 500 characters" in too_long.text
    no_event = _create(client, token, events=[])
    assert no_event.status_code == 422
    assert _field_errors(no_event.text, "events") == _api_messages(
        client, seller, {"Url": PUBLIC_URL, "Events": []}
    )
    assert _webhooks(client, seller) == []


def test_a_private_target_is_taken_when_the_operator_allows_private_targets(
    allowing: TestClient, seller: SellerKey
) -> None:
    token = sign_in(allowing, seller)
    created = _create(allowing, token, url="http://127.0.0.1:8080/hooks")
    assert created.status_code == 201, created.text
    assert [w["Url"] for w in _webhooks(allowing, seller)] == ["http://127.0.0.1:8080/hooks"]


def test_editing_changes_url_events_description_and_state(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    webhook = new_webhook(client, seller, PUBLIC_URL)
    path = f"/console/webhooks/{webhook['Id']}"
    form = client.get(f"{path}/edit")
    assert form.status_code == 200, form.text
    assert f'value="{PUBLIC_URL}"' in form.text
    assert 'value="billing system"' in form.text
    assert re.search(r'value="true" checked', form.text)
    saved = client.post(
        f"{path}/edit",
        data={
            "csrf_token": token,
            "url": "https://hooks.example.com/v2",
            "events": ["contract.ended"],
            "description": "",
            "enabled": "false",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{path}?changed=1"
    assert "The endpoint is saved." in client.get(saved.headers["location"]).text
    (changed,) = _webhooks(client, seller)
    assert changed["Url"] == "https://hooks.example.com/v2"
    assert changed["Events"] == ["contract.ended"]
    assert changed["Description"] == ""
    assert (changed["Enabled"], changed["DisabledReason"]) == (False, "Disabled by the seller.")
    enabled = client.post(
        f"{path}/edit",
        data={"csrf_token": token, "url": changed["Url"], "events": "contract.ended"}
        | {"enabled": "true"},
        follow_redirects=False,
    )
    assert enabled.status_code == 303, enabled.text
    (again,) = _webhooks(client, seller)
    assert (again["Enabled"], again["DisabledReason"]) == (True, None)


def test_an_edit_with_a_bad_url_shows_the_form_again_and_changes_nothing(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    webhook = new_webhook(client, seller, PUBLIC_URL)
    path = f"/console/webhooks/{webhook['Id']}/edit"
    form = {"csrf_token": token, "url": "ftp://files.example.com/", "events": "*"}
    refused = client.post(path, data=form | {"description": "New words"})
    assert refused.status_code == 422, refused.text
    api = client.patch(
        f"/api/v1/webhooks/{webhook['Id']}",
        json={"Url": "ftp://files.example.com/"},
        headers=seller.headers,
    )
    assert _field_errors(refused.text, "url") == [api.json()["errors"][0]["message"]]
    assert 'value="ftp://files.example.com/"' in refused.text
    assert 'value="New words"' in refused.text
    (unchanged,) = _webhooks(client, seller)
    assert (unchanged["Url"], unchanged["Description"]) == (PUBLIC_URL, "billing system")


def test_an_edit_sends_only_what_changed_so_a_kept_private_url_is_not_checked_again(
    client: TestClient, allowing: TestClient, seller: SellerKey, token: str
) -> None:
    # Made while private targets were allowed; the service now refuses new ones.
    private = "http://127.0.0.1:8080/hooks"
    webhook = new_webhook(allowing, seller, private)
    saved = client.post(
        f"/console/webhooks/{webhook['Id']}/edit",
        data={"csrf_token": token, "url": private, "events": "*", "description": "Renamed"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    (changed,) = _webhooks(client, seller)
    assert (changed["Url"], changed["Description"]) == (private, "Renamed")


def test_rotating_asks_first_then_shows_a_secret_that_signs_beside_the_old_for_24_hours(
    allowing: TestClient, seller: SellerKey, database: Database, clock: TestClock
) -> None:
    token = sign_in(allowing, seller)
    with receiving() as receiver:
        created = _create(allowing, token, url=receiver.url)
        first = _secret(created.text)
        (webhook,) = _webhooks(allowing, seller)
        path = f"/console/webhooks/{webhook['Id']}/rotatesecret"
        asked = allowing.post(path, data={"csrf_token": token})
        assert asked.status_code == 200, asked.text
        assert "Rotate the signing secret?" in asked.text
        assert "whsec_" not in asked.text
        rotated = allowing.post(path, data={"csrf_token": token, "confirmed": "yes"})
        assert rotated.status_code == 200, rotated.text
        second = _secret(rotated.text)
        assert second != first
        assert "Previous secret signs until Jan 2, 2026, 12:00:00 AM UTC" in _text(rotated.text)
        send_test(allowing, seller, webhook["Id"])
        sending = WebhookSending(box=SecretBox(KEY), sender=HttpSender(allow_private=True))
        assert Worker(database, clock, webhooks=sending).run_webhooks() == 1
        (received,) = receiver.received
        received.verified(first)
        received.verified(second)


def test_deleting_asks_first_then_forgets_the_endpoint(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    webhook = new_webhook(client, seller, PUBLIC_URL)
    path = f"/console/webhooks/{webhook['Id']}/delete"
    asked = client.post(path, data={"csrf_token": token})
    assert asked.status_code == 200, asked.text
    assert "Delete the endpoint?" in asked.text
    assert len(_webhooks(client, seller)) == 1
    deleted = client.post(
        path, data={"csrf_token": token, "confirmed": "yes"}, follow_redirects=False
    )
    assert deleted.status_code == 303, deleted.text
    assert deleted.headers["location"] == "/console/webhooks?deleted=1"
    assert "The endpoint is deleted." in client.get(deleted.headers["location"]).text
    assert _webhooks(client, seller) == []
    assert client.get(f"/console/webhooks/{webhook['Id']}").status_code == 404


def test_every_webhook_form_without_its_csrf_token_is_refused_and_changes_nothing(
    client: TestClient, seller: SellerKey, token: str
) -> None:
    webhook = new_webhook(client, seller, PUBLIC_URL)
    path = f"/console/webhooks/{webhook['Id']}"
    for action, form in (
        ("/console/webhooks", {"url": "https://other.example.com/", "events": "*"}),
        (f"{path}/edit", {"url": "https://other.example.com/", "events": "*"}),
        (f"{path}/rotatesecret", {"confirmed": "yes"}),
        (f"{path}/delete", {"confirmed": "yes"}),
    ):
        for wrong in ({}, {"csrf_token": "0" * len(token)}):
            refused = client.post(action, data=form | wrong, follow_redirects=False)
            assert refused.status_code == 403, (action, wrong)
    (kept,) = _webhooks(client, seller)
    assert kept == {k: v for k, v in webhook.items() if k != "Secret"}


def test_another_sellers_session_gets_404_on_each_form_of_the_endpoint(
    client: TestClient, seller: SellerKey
) -> None:
    webhook = new_webhook(client, seller, PUBLIC_URL)
    beta = new_seller(client, "Beta Cloud")
    token = sign_in(client, beta)
    path = f"/console/webhooks/{webhook['Id']}"
    assert client.get(f"{path}/edit").status_code == 404
    edit = {"csrf_token": token, "url": "https://beta.example.com/", "events": "*"}
    assert client.post(f"{path}/edit", data=edit).status_code == 404
    assert client.post(f"{path}/edit", data=edit | {"url": "bad"}).status_code == 404
    for action in ("rotatesecret", "delete"):
        for confirmed in ({}, {"confirmed": "yes"}):
            form = {"csrf_token": token} | confirmed
            assert client.post(f"{path}/{action}", data=form).status_code == 404, action
    (kept,) = _webhooks(client, seller)
    assert kept == {k: v for k, v in webhook.items() if k != "Secret"}
    assert _webhooks(client, beta) == []


class _Fields(HTMLParser):
    """The form's fields (not hidden) and the ids its labels name."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []
        self.labelled: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in {"input", "select", "textarea"} and attributes.get("type") != "hidden":
            self.fields.append(str(attributes.get("id")))
        if tag == "label":
            self.labelled.add(str(attributes.get("for")))


@pytest.mark.parametrize("page", ["new", "edit"])
def test_every_field_of_the_webhook_forms_has_a_label(
    client: TestClient, seller: SellerKey, token: str, page: str
) -> None:
    webhook = new_webhook(client, seller, PUBLIC_URL)
    path = "/console/webhooks/new" if page == "new" else f"/console/webhooks/{webhook['Id']}/edit"
    parser = _Fields()
    parser.feed(client.get(path).text)
    assert len(parser.fields) >= 10  # URL, every event and `*`, description (and state)
    assert set(parser.fields) <= parser.labelled
    assert "None" not in parser.fields
