"""The OpenAPI is fit for generators (SPEC §2): unique schema names, decimals declared as
decimals, enumerations as enums, typed pricing and periods, declared response headers,
operation ids that read as verbs. tests/api/test_generated_client.py runs a generator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.store.database import Database
from tests.conftest import ADMIN_TOKEN, CLOCK_START


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The OpenAPI of an app with every surface on: admin, test clock, metrics."""
    folder = tmp_path_factory.mktemp("openapi")
    settings = Settings(
        database_url="unused://",
        admin_token=ADMIN_TOKEN,
        test_clock=CLOCK_START.isoformat(),
        metrics=True,
    )
    app = create_app(settings, database=Database(f"sqlite:///{folder / 'unused.db'}"))
    answer: dict[str, Any] = TestClient(app).get("/openapi.json").json()
    return answer


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def _walk(node: Any, at: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield at, node
        for key, value in node.items():
            yield from _walk(value, f"{at}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{at}/{index}")


def test_every_schema_name_is_unique_and_unsuffixed(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    suffixed = [name for name in schemas if re.search(r"-(Input|Output)$", name)]
    assert suffixed == []
    titles = [schema.get("title", name) for name, schema in schemas.items()]
    assert sorted(titles) == sorted(set(titles))


def test_no_number_is_a_float(spec: dict[str, Any]) -> None:
    floats = [
        at
        for at, node in _walk(spec)
        if node.get("type") == "number" and node.get("format") != "decimal"
    ]
    assert floats == []


def _request_schemas(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every request body, and every component schema that one refers to, at any depth."""
    bodies = [
        (f"{method} {path}", operation["requestBody"])
        for method, path, operation in _operations(spec)
        if "requestBody" in operation
    ]
    names: set[str] = set()
    todo = [body for _, body in bodies]
    while todo:
        for _, node in _walk(todo.pop()):
            name = node.get("$ref", "").rpartition("/")[2]
            if name and name not in names:
                names.add(name)
                todo.append(spec["components"]["schemas"][name])
    return bodies + [(name, spec["components"]["schemas"][name]) for name in sorted(names)]


def test_a_decimal_in_a_request_is_a_number_or_a_string(spec: dict[str, Any]) -> None:
    numbers_only = []
    for name, schema in _request_schemas(spec):
        for at, node in _walk(schema, name):
            branches = node.get("anyOf", node.get("oneOf", []))
            formats = {b.get("type"): b.get("format") for b in branches}
            if "number" in formats and formats.get("string") != "decimal":
                numbers_only.append(at)
            if node.get("type") == "number" and not at.endswith(tuple("0123456789")):
                numbers_only.append(at)  # a number that is not a branch of a union
    assert numbers_only == []
    quantity = spec["components"]["schemas"]["NewUsage"]["properties"]["Quantity"]
    assert quantity["anyOf"] == [
        {"type": "number", "format": "decimal"},
        {"type": "string", "format": "decimal"},
    ]


def test_a_decimal_in_a_response_is_a_number(spec: dict[str, Any]) -> None:
    quantity = spec["components"]["schemas"]["UsageOut"]["properties"]["Quantity"]
    assert (quantity["type"], quantity["format"]) == ("number", "decimal")


VERBS = [
    "get",
    "list",
    "create",
    "change",
    "delete",
    "end",
    "preview",
    "bill",
    "submit",
    "report",
    "revoke",
    "move",
    "run",
    "void",
    "rotate",
    "send",
    "retry",
]


def test_every_operation_id_is_a_camel_case_verb(spec: dict[str, Any]) -> None:
    pattern = re.compile(rf"^({'|'.join(VERBS)})([A-Z][a-z0-9]*)+$")
    ids = [operation["operationId"] for _, _, operation in _operations(spec)]
    assert [i for i in ids if not pattern.match(i)] == []
    assert len(ids) == len(set(ids))
    assert {"createUsage", "getInvoice", "listInvoices", "createSeller"} <= set(ids)


def test_the_bulk_submission_declares_its_location(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/sellers/{sellerId}/services/bulkconsumptions"]["post"]
    assert "Location" in operation["responses"]["202"]["headers"]


def test_every_retry_after_that_is_sent_is_declared(spec: dict[str, Any]) -> None:
    undeclared = [
        (method, path, status)
        for method, path, operation in _operations(spec)
        if operation.get("security")
        for status, response in operation["responses"].items()
        if status in ("429", "503") and "Retry-After" not in response.get("headers", {})
    ]
    assert undeclared == []


def test_a_paged_list_declares_its_total_count(spec: dict[str, Any]) -> None:
    operation = spec["paths"]["/api/v1/invoices"]["get"]
    assert "X-Total-Count" in operation["responses"]["200"]["headers"]


@pytest.mark.parametrize(
    ("schema", "field", "enum"),
    [
        ("LineOut", "Kind", "LineKind"),
        ("InvoiceOut", "Kind", "InvoiceKind"),
        ("InvoiceOut", "Status", "InvoiceState"),
        ("TaskOut", "message", "TaskStatus"),
        ("ContractOut", "Status", "ContractStatus"),
        ("BillingPeriodOut", "Unit", "PeriodUnit"),
        ("BillingPeriod", "Unit", "PeriodUnit"),
        ("NewPlanVariant", "Currency", "Currency"),
        ("NewSeller", "currency", "Currency"),
    ],
)
def test_an_enumeration_is_an_enum(
    spec: dict[str, Any], schema: str, field: str, enum: str
) -> None:
    schemas = spec["components"]["schemas"]
    assert schemas[schema]["properties"][field]["$ref"] == f"#/components/schemas/{enum}"
    assert schemas[enum]["type"] == "string"
    assert schemas[enum]["enum"]


@pytest.mark.parametrize(
    ("schema", "suffix"), [("NewMeteredComponent", ""), ("MeteredComponentOut", "Out")]
)
def test_pricing_is_one_of_its_models_by_model(
    spec: dict[str, Any], schema: str, suffix: str
) -> None:
    pricing = spec["components"]["schemas"][schema]["properties"]["Pricing"]
    models = ("PerUnit", "Graduated", "Volume", "Package")
    assert pricing["discriminator"] == {
        "propertyName": "Model",
        "mapping": {m: f"#/components/schemas/{m}Pricing{suffix}" for m in models},
    }
    assert len(pricing["oneOf"]) == 4


def test_a_billing_period_is_typed(spec: dict[str, Any]) -> None:
    period = spec["components"]["schemas"]["NewPlanVariant"]["properties"]["BillingPeriod"]
    assert period["$ref"] == "#/components/schemas/BillingPeriod"
    fields = spec["components"]["schemas"]["BillingPeriod"]["properties"]
    assert fields["Quantity"]["type"] == "integer"
