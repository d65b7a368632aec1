"""SPEC §1: no request can read, change or even detect another seller's objects.

The sweep discovers every route from the app itself, so a new route is covered the day
it is added: seller A owns one object of each kind, and seller B calls every route with
A's ids in the path (and in id query parameters and request bodies). A route whose path
parameter the sweep cannot fill fails the sweep loudly, so that whoever adds it also
teaches the sweep which object it names.

What B must see:
- on a route that names an object in its path: 401, 403, 404 or 422, word for word the
  answer it would get for ids that do not exist;
- on a collection route (no path parameter): its own objects only (for example its own
  empty list, or a customer it created itself); an A id it sends is answered exactly
  like an unknown id;
- never any of A's ids, names or codes that B did not send itself;
- and A's objects are unchanged afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx2 import Response

from tests.factories import (
    SellerKey,
    new_component,
    new_contract,
    new_customer,
    new_plan,
    new_plan_variant,
    new_seller,
)

# The console has sessions, not API keys: tests/api/test_isolation_sweep_console.py sweeps it.
SKIPPED_PREFIXES = (
    "/admin",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/redoc",
    "/console",
)
NAMED_OBJECT_STATUSES = {401, 403, 404, 422}
_PATH_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    """The path template, e.g. `/api/v1/customers/{customerId}`."""
    id_query_parameters: tuple[str, ...]

    @property
    def path_parameters(self) -> list[str]:
        return _PATH_PARAMETER.findall(self.path)

    @property
    def takes_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Tenant:
    seller: SellerKey
    ids: dict[str, str]
    """Path and query parameter name -> the id of this tenant's object of that kind."""
    names: tuple[str, ...]
    """Names, codes and keys this tenant gave its objects."""

    @property
    def secrets(self) -> set[str]:
        # A short number (a usage entry id such as "1") occurs in any text by chance;
        # it is still used in paths, but not searched for in answers.
        ids = {id_ for id_ in self.ids.values() if not (id_.isdigit() and len(id_) < 6)}
        return ids | set(self.names) | {self.seller.api_key, self.seller.key_id}


# -- discovering the routes ---------------------------------------------------------------


def _api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route, including those of included routers."""
    try:
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415
    except ImportError:  # a FastAPI whose app.routes is already flat
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, route
        return
    # This FastAPI keeps included routers as nodes of app.routes; flatten them.
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.path is not None:
            yield context.path, context.original_route


def _operations(app: FastAPI) -> list[Operation]:
    documented = app.openapi()["paths"]
    operations = []
    for path, route in _api_routes(app):
        if path.startswith(SKIPPED_PREFIXES):
            continue
        for method in sorted(route.methods):
            parameters = documented.get(path, {}).get(method.lower(), {}).get("parameters", [])
            id_query = tuple(
                p["name"] for p in parameters if p["in"] == "query" and p["name"].endswith("Id")
            )
            operations.append(Operation(method, path, id_query))
    return operations


def _fill(template: str, values: dict[str, str], where: str = "") -> str:
    """`template` with each `{name}` replaced by `values[name]`; fails the test loudly
    for a name it has no value for."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            pytest.fail(
                f"The isolation sweep cannot fill the parameter {{{name}}} of "
                f"{where or template}: create an object of that kind for seller A in "
                "_tenant_a() and map the parameter to its id."
            )
        return values[name]

    return _PATH_PARAMETER.sub(value, template)


# -- the two sellers ----------------------------------------------------------------------


ALPHA_PROFILE = {
    "LegalName": "Alpha Storage Legal Ltd",
    "Address": {
        "Line1": "1 Alpha Way",
        "PostalCode": "EC1A 1BB",
        "City": "London",
        "Country": "GB",
    },
}


def _tenant_a(client: TestClient) -> Tenant:
    seller = new_seller(client, "Alpha Storage Ltd")
    customer = new_customer(
        client, seller, CompanyName="Alpha Customer GmbH", ExternalCustomerId="alpha-crm-7"
    )
    component = new_component(client, seller, "Alpha Disk", ItemCode="alpha-disk")
    plan = new_plan(client, seller, "Alpha Plan")
    variant = new_plan_variant(client, seller, plan["Id"], [component["Id"]], Name="Alpha Monthly")
    contract = new_contract(client, seller, customer["Id"], variant["Id"])
    usage = client.post(
        f"/api/v1/contracts/{contract['Id']}/usage",
        json={
            "DueDate": "2026-01-01T12:00:00Z",
            "ComponentId": component["Id"],
            "Quantity": 5,
            "Key": "alpha-usage-key",
            "Memo": "Alpha memo",
        },
        headers=seller.headers,
    )
    assert usage.status_code == 201, usage.text
    # A task whose record is invalid: the embedded worker fails it whenever it gets to
    # it, and saves nothing, so A's usage stays the same while the sweep runs.
    task = client.post(
        f"/api/sellers/{seller.seller_id}/services/bulkconsumptions",
        json={
            "consumptions": [
                {
                    "subscriptionId": contract["Id"],
                    "productId": component["Id"],
                    "quantity": -1,
                    "key": "alpha-bulk-key",
                }
            ]
        },
        headers=seller.headers,
    )
    assert task.status_code == 202, task.text
    # A one-off item billed at once: an invoice (A's usage above is not due yet).
    order = client.post(
        "/api/v1/orders",
        json={
            "ContractId": contract["Id"],
            "Cart": {
                "RatedItems": [{"Description": "Alpha setup", "Quantity": 1, "PricePerUnit": 49}]
            },
            "TriggerInterimBilling": True,
        },
        headers=seller.headers,
    )
    assert order.status_code == 201, order.text
    assert order.json()["InvoiceId"], order.text
    invoice_id = order.json()["InvoiceId"]
    note = client.post(
        f"/api/v1/invoices/{invoice_id}/creditnotes",
        json={"Reason": "Alpha goodwill", "Lines": [{"LineIndex": 0, "Amount": 1}]},
        headers=seller.headers,
    )
    assert note.status_code == 201, note.text
    payment = client.post(
        f"/api/v1/invoices/{invoice_id}/payments",
        json={"Amount": 10, "Reference": "alpha-payment-ref"},
        headers=seller.headers,
    )
    assert payment.status_code == 201, payment.text
    profile = client.put("/api/v1/seller", json=ALPHA_PROFILE, headers=seller.headers)
    assert profile.status_code == 200, profile.text
    discount = client.post(
        "/api/v1/discounts",
        json={"Name": "Alpha discount", "Percentage": 10, "AppliesTo": "All"},
        headers=seller.headers,
    )
    assert discount.status_code == 201, discount.text
    coupon = client.post(
        "/api/v1/coupons",
        json={"Code": "alpha-coupon", "DiscountId": discount.json()["Id"]},
        headers=seller.headers,
    )
    assert coupon.status_code == 201, coupon.text
    webhook = client.post(
        "/api/v1/webhooks",
        json={
            "Url": "https://hooks.alpha.invalid/arrears",
            "Events": ["*"],
            "Description": "Alpha hooks",
        },
        headers=seller.headers,
    )
    assert webhook.status_code == 201, webhook.text
    delivery = client.post(f"/api/v1/webhooks/{webhook.json()['Id']}/test", headers=seller.headers)
    assert delivery.status_code == 202, delivery.text
    ids = {
        "sellerId": seller.seller_id,
        "customerId": customer["Id"],
        "componentId": component["Id"],
        "planId": plan["Id"],
        "planVariantId": variant["Id"],
        "contractId": contract["Id"],
        "usageId": usage.json()["Id"],
        "taskId": task.json()["taskId"],
        "orderId": order.json()["Id"],
        "invoiceId": invoice_id,
        "creditNoteId": note.json()["Id"],
        "discountId": discount.json()["Id"],
        "couponId": coupon.json()["Id"],
        "webhookId": webhook.json()["Id"],
        "deliveryId": delivery.json()["Id"],
    }
    names = (
        "Alpha Storage Ltd",
        "Alpha Customer GmbH",
        "alpha-crm-7",
        "Alpha Disk",
        "alpha-disk",
        "Alpha Plan",
        "Alpha Monthly",
        "alpha-usage-key",
        "Alpha memo",
        "alpha-bulk-key",
        "Alpha setup",
        "Alpha goodwill",
        "alpha-payment-ref",
        "Alpha Storage Legal Ltd",
        "Alpha discount",
        "alpha-coupon",
        "hooks.alpha.invalid",
        "Alpha hooks",
        webhook.json()["Secret"],
    )
    return Tenant(seller, {k: str(v) for k, v in ids.items()}, names)


def _unknown(id_: str) -> str:
    """An id of the same shape that no object has."""
    return "9" * len(id_) if id_.isdigit() else "f" * len(id_)


def _order(ids: dict[str, str]) -> dict[str, Any]:
    return {
        "ContractId": ids["contractId"],
        "Cart": {
            "MeteredUsages": [{"ComponentId": ids["componentId"], "Quantity": 1}],
            "RatedItems": [{"Description": "Beta item", "Quantity": 1, "PricePerUnit": 1}],
        },
        "TriggerInterimBilling": True,
    }


# Bodies that get past validation, so that the handler really looks A's objects up. A
# route without one here is still swept with `{}`.
SampleBody = Callable[[dict[str, str]], dict[str, Any]]
SAMPLE_BODIES: dict[tuple[str, str], SampleBody] = {
    ("POST", "/api/v1/customers"): lambda ids: {
        "CompanyName": "Beta Customer",
        "ExternalCustomerId": "alpha-crm-7",
    },
    ("POST", "/api/v1/components"): lambda ids: {
        "Name": "Beta Disk",
        "Unit": "GB",
        "ItemCode": "alpha-disk",
    },
    ("PATCH", "/api/v1/components/{componentId}"): lambda ids: {"Name": "Hijacked"},
    ("POST", "/api/v1/plans"): lambda ids: {"Name": "Beta Plan"},
    ("POST", "/api/v1/planvariants"): lambda ids: {
        "PlanId": ids["planId"],
        "Name": "Beta Monthly",
        "Currency": "EUR",
        "BillingPeriod": {"Unit": "Month", "Quantity": 1},
        "MeteredComponents": [
            {"ComponentId": ids["componentId"], "Pricing": {"Model": "PerUnit", "PricePerUnit": 1}}
        ],
    },
    ("PATCH", "/api/v1/planvariants/{planVariantId}"): lambda ids: {"Name": "Hijacked"},
    ("POST", "/api/v1/contracts"): lambda ids: {
        "CustomerId": ids["customerId"],
        "PlanVariantId": ids["planVariantId"],
        "StartDate": "2026-01-01T00:00:00Z",
    },
    ("POST", "/api/v1/contracts/{contractId}/end"): lambda ids: {"EndDate": "2026-06-01T00:00:00Z"},
    ("POST", "/api/v1/contracts/{contractId}/usage"): lambda ids: {
        "DueDate": "2026-01-02T00:00:00Z",
        "ComponentId": ids["componentId"],
        "Quantity": 1,
    },
    ("PATCH", "/api/v1/customers/{customerId}"): lambda ids: {"CompanyName": "Hijacked"},
    ("PUT", "/api/v1/seller"): lambda ids: {
        "LegalName": "Beta Cloud Ltd",
        "Address": {
            "Line1": "2 Beta Road",
            "PostalCode": "1000",
            "City": "Brussels",
            "Country": "BE",
        },
    },
    ("POST", "/api/v1/invoices/{invoiceId}/creditnotes"): lambda ids: {
        "Reason": "Hijacked",
        "Lines": [{"LineIndex": 0, "Amount": 1}],
    },
    ("POST", "/api/v1/invoices/{invoiceId}/payments"): lambda ids: {
        "Amount": 1,
        "Reference": "beta-ref",
    },
    ("POST", "/api/v1/coupons"): lambda ids: {"Code": "beta", "DiscountId": ids["discountId"]},
    ("POST", "/api/v1/orders"): _order,
    ("POST", "/api/v1/orders/preview"): _order,
    ("POST", "/api/sellers/{sellerId}/services/bulkconsumptions"): lambda ids: {
        "consumptions": [
            {"subscriptionId": ids["contractId"], "productId": ids["componentId"], "quantity": 1}
        ]
    },
    ("POST", "/api/sellers/{sellerId}/services/consumptions"): lambda ids: {
        "customerId": ids["customerId"],
        "subscriptionIds": [ids["contractId"]],
    },
    ("POST", "/api/v1/webhooks"): lambda ids: {
        "Url": "https://hooks.beta.invalid/arrears",
        "Events": ["*"],
    },
    ("PATCH", "/api/v1/webhooks/{webhookId}"): lambda ids: {"Enabled": False},
    ("PUT", "/api/sellers/{sellerId}/services/consumptions"): lambda ids: {
        "subscriptionId": ids["contractId"],
        "consumptions": [{"productId": ids["componentId"], "quantity": 1}],
    },
}


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    body: bytes | None

    def text(self) -> str:
        return self.url + (self.body or b"").decode()


def _calls(operation: Operation, ids: dict[str, str]) -> list[Call]:
    """The requests the sweep makes on `operation`, with `ids` for A's objects."""
    path = _fill(operation.path, ids)
    # An id query parameter (`?customerId=`) names an object just like a path does.
    query = "&".join(
        f"{name}={_fill(f'{{{name}}}', ids, f'{operation} (query)')}"
        for name in operation.id_query_parameters
    )
    url = f"{path}?{query}" if query else path
    if not operation.takes_body:
        return [Call(operation.method, url, None)]
    bodies = [{}]
    sample = SAMPLE_BODIES.get((operation.method, operation.path))
    if sample is not None:
        bodies.append(sample(ids))
    return [Call(operation.method, url, _encode(body)) for body in bodies]


def _send(client: TestClient, call: Call, headers: dict[str, str]) -> Response:
    if call.body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    try:
        return client.request(call.method, call.url, content=call.body, headers=headers)
    except Exception as error:  # TestClient re-raises what would have been a 500
        pytest.fail(f"{call.method} {call.url} raised {error!r}")


def _mentions(text: str, id_: str) -> bool:
    return re.search(rf"\b{re.escape(id_)}\b", text) is not None


def _replace_ids(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    return text


def _snapshot(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    """Everything seller A can read about its objects."""
    ids, headers = tenant.ids, tenant.seller.headers
    urls = [
        f"/api/v1/customers/{ids['customerId']}",
        f"/api/v1/components/{ids['componentId']}",
        f"/api/v1/plans/{ids['planId']}",
        f"/api/v1/planvariants/{ids['planVariantId']}",
        f"/api/v1/contracts/{ids['contractId']}",
        f"/api/v1/contracts/{ids['contractId']}/usage",
        f"/api/sellers/{ids['sellerId']}",
        f"/api/v1/invoices/{ids['invoiceId']}",
        f"/api/v1/invoices/{ids['invoiceId']}/usage",
        f"/api/v1/invoices/{ids['invoiceId']}/payments",
        f"/api/v1/creditnotes/{ids['creditNoteId']}",
        "/api/v1/creditnotes",
        "/api/v1/seller",
        f"/api/v1/webhooks/{ids['webhookId']}",
        "/api/v1/webhooks",
        "/api/v1/invoices",
        "/api/v1/customers",
        "/api/v1/components",
        "/api/v1/plans",
        "/api/v1/planvariants",
        "/api/v1/contracts",
    ]
    snapshot = {}
    for url in urls:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, f"{url}: {response.text}"
        snapshot[url] = response.json()
    return snapshot


# -- the sweep ----------------------------------------------------------------------------


def test_another_seller_can_neither_read_change_nor_detect_any_object(
    client: TestClient,
) -> None:
    alpha = _tenant_a(client)
    beta = new_seller(client, "Beta Cloud")
    before = _snapshot(client, alpha)
    unknown_ids = {name: _unknown(id_) for name, id_ in alpha.ids.items()}
    twin_of = {id_: unknown_ids[name] for name, id_ in alpha.ids.items()}

    told: set[str] = set()  # what B has sent so far
    for operation in _operations(client.app):
        for call, unknown_call in zip(
            _calls(operation, alpha.ids), _calls(operation, unknown_ids), strict=True
        ):
            label = f"{call.method} {call.url} {call.body!r}"
            response = _send(client, call, beta.headers)
            if operation.path_parameters:
                assert response.status_code in NAMED_OBJECT_STATUSES, (
                    f"{label}: {response.status_code} {response.text}"
                )

            # B may read back what it wrote itself (a customer it gave A's
            # ExternalCustomerId), but nothing else of A's.
            sent = call.text()
            told |= {secret for secret in alpha.secrets if secret in sent}
            answer = response.text + " " + " ".join(response.headers.values())
            leaked = {s for s in alpha.secrets - told if s in answer}
            assert not leaked, f"{label} leaks {leaked}: {answer}"

            used = {id_: twin for id_, twin in twin_of.items() if _mentions(sent, id_)}
            if used:
                # A's ids and ids that do not exist must be answered alike.
                twin = _send(client, unknown_call, beta.headers)
                assert response.status_code == twin.status_code, (
                    f"{label}: {response.status_code} {response.text} but for unknown ids "
                    f"{twin.status_code} {twin.text}"
                )
                if response.status_code >= 400 or call.method == "GET":
                    assert _replace_ids(response.text, used) == twin.text, label

    assert _snapshot(client, alpha) == before
    # Seller B's own view holds nothing of A's.
    for path in ("customers", "components", "plans", "planvariants", "contracts"):
        listed = client.get(f"/api/v1/{path}", headers=beta.headers)
        assert not {s for s in alpha.secrets - told if s in listed.text}


def test_every_route_answers_401_without_a_valid_key(client: TestClient) -> None:
    alpha = _tenant_a(client)
    wrong = {"Authorization": f"Bearer {alpha.seller.api_key[:-4]}0000"}
    for operation in _operations(client.app):
        for call in _calls(operation, alpha.ids):
            for headers in ({}, wrong):
                response = _send(client, call, headers)
                assert response.status_code == 401, f"{operation} {headers}: {response.text}"
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"] == "Bearer"


def test_the_sweep_covers_every_documented_operation(client: TestClient) -> None:
    swept = {(op.method, op.path) for op in _operations(client.app)}
    documented = {
        (method.upper(), path)
        for path, item in client.app.openapi()["paths"].items()
        if not path.startswith(SKIPPED_PREFIXES)
        for method in item
    }
    assert documented <= swept
    # The routes of SPEC §3 and §4 at least, so that discovery cannot silently find none.
    assert {
        ("GET", "/api/v1/customers/{customerId}"),
        ("PATCH", "/api/v1/components/{componentId}"),
        ("GET", "/api/v1/plans/{planId}"),
        ("PATCH", "/api/v1/planvariants/{planVariantId}"),
        ("POST", "/api/v1/contracts/{contractId}/end"),
        ("GET", "/api/v1/contracts"),
        ("GET", "/api/sellers/{sellerId}"),
    } <= swept


def test_the_sweep_fails_loudly_on_a_path_parameter_it_cannot_fill() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"\{gizmoId\}"):
        _fill("/api/v1/gizmos/{gizmoId}", {"contractId": "c"})
    operation = Operation("GET", "/api/v1/things", ("gizmoId",))
    with pytest.raises(pytest.fail.Exception, match=r"\{gizmoId\}"):
        _calls(operation, {"contractId": "c"})
