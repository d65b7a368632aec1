"""SPEC §10: an interim invoice voided at any point of its period leaves the period
billed as if it had never been issued: over every interleaving of usage, interim
invoices and voids, the period's invoices that are not voided charge exactly the price
of its whole usage, free quota granted once, and bill each entry exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.store.database import Database
from tests.billing_factories import (
    Metered,
    app_without_worker,
    bill_at,
    invoices_of,
    move_clock,
    new_billing_seller,
    new_priced_contract,
    post_usage,
    usage_entries,
)
from tests.correction_factories import void

FREE = Decimal(100)
PRICE = Decimal("0.10")

Step = tuple[str, int]
steps = st.lists(
    st.one_of(
        st.tuples(st.just("use"), st.integers(1, 80)),
        st.tuples(st.just("interim"), st.just(0)),
        st.tuples(st.just("void"), st.integers(0, 5)),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def app(settings: Settings, database: Database, clock: TestClock) -> FastAPI:
    return app_without_worker(settings, database, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_voided_interim_invoices_leave_the_period_priced_once(
    client: TestClient, clock: TestClock, plan: list[Step]
) -> None:
    # Each example has a contract of its own, starting where the clock stands (it only
    # moves forward) at a whole hour, one month long.
    start = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    seller = new_billing_seller(client)
    contract = new_priced_contract(client, seller, Metered(free_quota=str(FREE)), start=_iso(start))
    interims: list[str] = []
    voided: set[str] = set()
    used = Decimal(0)
    for hour, (action, value) in enumerate(plan, start=1):
        now = start + timedelta(hours=hour)
        move_clock(client, _iso(now))
        if action == "use":
            post_usage(client, contract, str(value), _iso(now))
            used += value
        elif action == "interim":
            response = client.post(f"{contract.path}/interimbilling", headers=contract.headers)
            assert response.status_code in (201, 204), response.text
            if response.status_code == 201:
                interims.append(response.json()["Id"])
        elif interims:
            invoice_id = interims.pop(value % len(interims))
            void(client, contract, invoice_id)
            voided.add(invoice_id)
    bill_at(client, _iso(start + relativedelta(months=1)))

    issued = invoices_of(client, contract)
    assert {i["Id"] for i in issued if i["PaymentStatus"] == "Voided"} == voided
    standing = [i for i in issued if i["Id"] not in voided]
    charged = sum((line["Amount"] for invoice in standing for line in invoice["Lines"]), Decimal(0))
    assert charged == (max(used - FREE, Decimal(0)) * PRICE).quantize(Decimal("0.01"))
    billed_on = [entry["InvoiceId"] for entry in usage_entries(client, contract)]
    assert set(billed_on) <= {invoice["Id"] for invoice in standing}
    assert None not in billed_on
