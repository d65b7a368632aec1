"""SPEC §1 and §14: the tenant-isolation sweep, over the console's routes.

Every console route is discovered from the app, as in tests/api/test_isolation_sweep.py,
whose seller A (one object of each kind) this sweep reuses. Seller B, signed in to the
console, opens every page with A's ids in the path: it must get exactly what it gets for
ids that do not exist (404, word for word), and never anything of A's it did not send.
Without a session every page sends to sign-in, and no form is taken without its token;
with B's token, every form posted to A's ids is that same 404, asked or confirmed, and A's
objects stay as they were.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.test_isolation_sweep import (
    Operation,
    _api_routes,
    _fill,
    _replace_ids,
    _snapshot,
    _tenant_a,
    _unknown,
)
from tests.console_factories import sign_in
from tests.factories import new_seller

PUBLIC = {("GET", "/console/sign-in"), ("POST", "/console/sign-in")}

FORM = {
    "url": "https://hooks.beta.invalid/",
    "events": "*",
    "description": "Beta hooks",
    "enabled": "false",
    "reason": "Beta reason",
    "line": "1",
    "amount": "1",
    "reference": "beta-payment-ref",
}
"""Every field a console form takes, filled in well: each form gets as far as it can."""


def _console_operations(client: TestClient) -> list[Operation]:
    operations = [
        Operation(method, path, ())
        for path, route in _api_routes(client.app)  # type: ignore[arg-type]
        if path.startswith("/console")
        for method in sorted(route.methods)
    ]
    assert len(operations) >= 10, operations  # discovery found the pages
    return operations


def test_another_sellers_session_reaches_nothing_of_the_first_on_any_console_page(
    client: TestClient,
) -> None:
    alpha = _tenant_a(client)
    beta = new_seller(client, "Beta Cloud")
    token = sign_in(client, beta)
    unknown_ids = {name: _unknown(id_) for name, id_ in alpha.ids.items()}
    swept = 0
    for operation in _console_operations(client):
        if (operation.method, operation.path) in PUBLIC:
            continue
        if operation.method == "POST":
            # No form is taken without the session's token (sign-out included).
            refused = client.post(operation.path, data={}, follow_redirects=False)
            assert refused.status_code == 403, operation
            continue
        url = _fill(operation.path, alpha.ids)
        response = client.get(url, follow_redirects=False)
        leaked = {s for s in alpha.secrets if s in response.text and s not in url}
        assert not leaked, f"{operation} leaks {leaked}"
        if operation.path_parameters:
            assert response.status_code == 404, f"{operation}: {response.text}"
            twin = client.get(_fill(operation.path, unknown_ids), follow_redirects=False)
            used = {alpha.ids[name]: unknown_ids[name] for name in operation.path_parameters}
            assert _replace_ids(response.text, used) == twin.text, operation
        else:
            assert response.status_code == 200, f"{operation}: {response.text}"
        swept += 1
    assert swept >= 8
    # B's session is still whole: the refused forms changed nothing.
    assert client.post("/console/sign-out", data={"csrf_token": token}).status_code == 200


def test_another_sellers_forms_with_its_own_token_reach_nothing_of_the_first(
    client: TestClient,
) -> None:
    alpha = _tenant_a(client)
    beta = new_seller(client, "Beta Cloud")
    token = sign_in(client, beta)
    before = _snapshot(client, alpha)
    unknown_ids = {name: _unknown(id_) for name, id_ in alpha.ids.items()}
    swept = 0
    for operation in _console_operations(client):
        if operation.method != "POST" or not operation.path_parameters:
            continue
        used = {alpha.ids[name]: unknown_ids[name] for name in operation.path_parameters}
        for confirmed in ({}, {"confirmed": "yes"}):  # asked first, then acting
            form = {"csrf_token": token, **FORM, **confirmed}
            url = _fill(operation.path, alpha.ids)
            response = client.post(url, data=form, follow_redirects=False)
            assert response.status_code == 404, f"{operation}: {response.text}"
            twin = client.post(_fill(operation.path, unknown_ids), data=form)
            assert _replace_ids(response.text, used) == twin.text, operation
        swept += 1
    assert swept >= 7  # retry; credit, void, payment; edit, rotate, delete an endpoint
    assert _snapshot(client, alpha) == before


def test_every_console_page_without_a_session_sends_to_sign_in(client: TestClient) -> None:
    alpha = _tenant_a(client)
    for operation in _console_operations(client):
        if (operation.method, operation.path) in PUBLIC:
            continue
        url = _fill(operation.path, alpha.ids)
        response = client.request(operation.method, url, follow_redirects=False)
        assert response.status_code == 303, operation
        assert response.headers["location"].startswith("/console/sign-in"), operation


@pytest.mark.parametrize("path", ["/console/sign-in"])
def test_the_sign_in_page_is_the_one_page_open_without_a_session(
    client: TestClient, path: str
) -> None:
    assert client.get(path).status_code == 200
