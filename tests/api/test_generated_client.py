"""A client generated from the app's own `/openapi.json` works (SPEC §2, "OpenAPI is fit
for generators"): `openapi-python-client` generates it without a warning, and a flow
through it, from a new seller to its invoice, parses every answer, decimals exactly.

The generated client runs as a user would run it; only its transport is the app in
process instead of a socket, and its JSON decoder reads numbers as `Decimal`, as
docs/api-conventions.md tells its users to do.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from arrears.api.app import create_app
from arrears.config import Settings
from arrears.store.database import Database
from tests.conftest import ADMIN_TOKEN, CLOCK_START

PACKAGE = "arrears_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the app's `/openapi.json`, imported."""
    folder = tmp_path_factory.mktemp("generated")
    settings = Settings(
        database_url="unused://", admin_token=ADMIN_TOKEN, test_clock=CLOCK_START.isoformat()
    )
    app = create_app(settings, database=Database(f"sqlite:///{folder / 'unused.db'}"))
    spec = folder / "openapi.json"
    spec.write_bytes(TestClient(app).get("/openapi.json").content)
    config = folder / "config.json"
    # No ruff run over the output; documents (SPEC §12) are bytes to the generator.
    binary = dict.fromkeys(("application/pdf", "application/xml"), "application/octet-stream")
    config.write_text(json.dumps({"post_hooks": [], "content_type_overrides": binary}))
    run = subprocess.run(  # noqa: S603 (our own interpreter, our own arguments)
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            f"--path={spec}",
            f"--output-path={folder / PACKAGE}",
            f"--config={config}",
            "--meta=none",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    said = run.stdout + run.stderr
    assert run.returncode == 0, said
    # It drops what it cannot generate (once: UsageOut, OrderOut) with a warning only.
    assert "Warning" not in said, said
    assert "Unable to" not in said, said
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


class InProcess(httpx.BaseTransport):
    """The app behind the test client, as an httpx transport for the generated client."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.client.request(
            request.method, str(request.url), headers=dict(request.headers), content=request.read()
        )
        return httpx.Response(
            answer.status_code, headers=list(answer.headers.multi_items()), content=answer.content
        )


def exact_decimals(response: httpx.Response) -> None:
    """An httpx response hook: JSON numbers with a fraction read as `Decimal`."""
    response.read()
    response.json = lambda **kwargs: json.loads(  # type: ignore[method-assign]
        response.content, parse_float=Decimal, **kwargs
    )


def _client(generated: ModuleType, client: TestClient, token: str) -> Any:
    return generated.AuthenticatedClient(
        base_url="http://testserver",
        token=token,
        raise_on_unexpected_status=True,
        httpx_args={
            "transport": InProcess(client),
            "event_hooks": {"response": [exact_decimals]},
        },
    )


def _api(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def _parsed(response: Any, status: int, kind: type) -> Any:
    assert response.status_code == status, response.content
    assert isinstance(response.parsed, kind), response.parsed
    return response.parsed


BIG = "999999999999.999999"


def test_a_generated_client_runs_the_whole_flow_and_keeps_decimals_exact(
    generated: ModuleType, client: TestClient
) -> None:
    m = importlib.import_module(f"{PACKAGE}.models")
    admin = _client(generated, client, ADMIN_TOKEN)
    created = _api(generated, "admin.create_seller").sync_detailed(
        client=admin, body=m.NewSeller(name="Acme")
    )
    seller = _parsed(created, 201, m.IssuedKey)
    api = _client(generated, client, seller.api_key)

    customer = _parsed(
        _api(generated, "catalog.create_customer").sync_detailed(
            client=api, body=m.NewCustomer(company_name="Initech", tax_rate="19.5")
        ),
        201,
        m.CustomerOut,
    )
    assert customer.tax_rate == Decimal("19.5")
    plan = _parsed(
        _api(generated, "catalog.create_plan").sync_detailed(
            client=api, body=m.NewPlan(name="Pro")
        ),
        201,
        m.PlanOut,
    )
    component = _parsed(
        _api(generated, "catalog.create_component").sync_detailed(
            client=api, body=m.NewComponent(name="Storage", unit="GB", item_code="gb")
        ),
        201,
        m.ComponentOut,
    )
    # A float with few digits crosses JSON exactly (its repr is the shortest that reads
    # back as it), so numbers are fine here; a long decimal goes as a string (below).
    graduated = m.GraduatedPricing(
        model="Graduated",
        tiers=[
            m.PricingTier(up_to=1000, price_per_unit=0.000002),
            m.PricingTier(up_to=None, price_per_unit=0.000001),
        ],
    )
    variant = _parsed(
        _api(generated, "catalog.create_plan_variant").sync_detailed(
            client=api,
            body=m.NewPlanVariant(
                plan_id=plan.id,
                name="Pro monthly",
                currency=m.Currency.EUR,
                billing_period=m.BillingPeriod(unit=m.PeriodUnit.MONTH, quantity=1),
                recurring_fee="0.10",
                metered_components=[
                    m.NewMeteredComponent(
                        component_id=component.id, pricing=graduated, free_quota="0.5"
                    )
                ],
            ),
        ),
        201,
        m.PlanVariantOut,
    )
    assert variant.billing_period.unit == m.PeriodUnit.MONTH
    metered = variant.metered_components[0]
    assert isinstance(metered.pricing, m.GraduatedPricingOut)
    assert [t.up_to for t in metered.pricing.tiers] == [1000, None]
    assert metered.pricing.tiers[0].price_per_unit == Decimal("0.000002")
    assert metered.free_quota == Decimal("0.5")

    contract = _parsed(
        _api(generated, "contracts.create_contract").sync_detailed(
            client=api,
            body=m.NewContract(
                customer_id=customer.id, plan_variant_id=variant.id, start_date=CLOCK_START
            ),
        ),
        201,
        m.ContractOut,
    )
    assert contract.status == m.ContractStatus.ACTIVE

    usage = _parsed(
        _api(generated, "usage.create_usage").sync_detailed(
            contract.id,
            client=api,
            body=m.NewUsage(
                due_date=CLOCK_START,
                component_id=component.id,
                quantity=BIG,
                product_override=m.ProductOverride(name="Storage (EU)"),
            ),
        ),
        201,
        m.UsageOut,
    )
    assert usage.quantity == Decimal(BIG)
    assert usage.product_override.name == "Storage (EU)"

    submitted = _api(generated, "consumption.submit_bulk_consumptions").sync_detailed(
        seller.seller_id,
        client=api,
        body=m.BulkSubmission(
            consumptions=[
                m.BulkRecord(
                    subscription_id=contract.id,
                    item_code="gb",
                    quantity="12.000001",
                    due_date=CLOCK_START,
                    key="bulk-1",
                )
            ]
        ),
    )
    task = _parsed(submitted, 202, m.TaskOut)
    assert submitted.headers["Location"].endswith(f"/bulkconsumptions/{task.task_id}")
    done = task
    for _ in range(30):  # each answer comes once the task finishes, or after 10 s
        done = _parsed(
            _api(generated, "consumption.get_bulk_consumption_task").sync_detailed(
                seller.seller_id, task.task_id, client=api, wait=10
            ),
            200,
            m.TaskOut,
        )
        if done.message != m.TaskStatus.PROCESSING:
            break
    assert (done.message, done.saved_records) == (m.TaskStatus.SUCCESSFUL, 1)

    order = _parsed(
        _api(generated, "orders.create_order").sync_detailed(
            client=api,
            body=m.NewOrder(
                contract_id=contract.id,
                cart=m.Cart(
                    metered_usages=[
                        m.MeteredUsageIn(component_id=component.id, quantity="0.000001")
                    ]
                ),
            ),
        ),
        201,
        m.OrderOut,
    )
    assert order.metered_usages[0].quantity == Decimal("0.000001")

    _parsed(
        _api(generated, "test_clock.move_clock").sync_detailed(
            client=admin, body=m.ClockState(now=datetime(2026, 1, 2, tzinfo=UTC))
        ),
        200,
        m.ClockState,
    )
    interim = _parsed(
        _api(generated, "invoices.bill_interim").sync_detailed(contract.id, client=api),
        201,
        m.InvoiceOut,
    )
    assert (interim.kind, interim.status) == (m.InvoiceKind.INTERIM, m.InvoiceState.FINALIZED)
    [line] = [line for line in interim.lines if line.kind == m.LineKind.USAGE]
    assert line.quantity == Decimal(BIG) + Decimal("12.000001") + Decimal("0.000001")

    invoice = _parsed(
        _api(generated, "invoices.get_invoice").sync_detailed(interim.id, client=api),
        200,
        m.InvoiceOut,
    )
    assert (invoice.total, invoice.tax_rate) == (interim.total, Decimal("19.5"))
    listed = _api(generated, "invoices.list_invoices").sync_detailed(client=api)
    assert [i.id for i in _parsed(listed, 200, list)] == [interim.id]
    assert listed.headers["X-Total-Count"] == "1"
    billed = _parsed(
        _api(generated, "invoices.list_invoice_usage").sync_detailed(interim.id, client=api),
        200,
        list,
    )
    assert sorted(u.quantity for u in billed) == [
        Decimal("0.000001"),
        Decimal("12.000001"),
        Decimal(BIG),
    ]


def test_a_generated_client_reads_a_problem(generated: ModuleType, client: TestClient) -> None:
    m = importlib.import_module(f"{PACKAGE}.models")
    admin = _client(generated, client, ADMIN_TOKEN)
    refused = _api(generated, "admin.create_seller").sync_detailed(
        client=admin, body=m.NewSeller(name="")
    )
    problem = _parsed(refused, 422, m.Problem)
    assert [error.field for error in problem.errors] == ["name"]


def test_the_generated_package_has_a_method_per_operation(generated: ModuleType) -> None:
    spec = json.loads((Path(generated.__file__).parent.parent / "openapi.json").read_text())
    operations = {
        operation["operationId"] for path in spec["paths"].values() for operation in path.values()
    }
    modules = {
        module.stem
        for module in Path(generated.__file__).parent.glob("api/*/*.py")
        if module.stem != "__init__"
    }
    assert {_snake(name) for name in operations} == modules


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
