"""SPEC §7: the scheduler bills a batch of contracts at once (`_bill_batch`: several
periods of many contracts in one transaction); a contract billed on its own
(`bill_due`: final invoices, contracts another worker holds, a failed batch) is a batch
of one period of one contract. Both take the same road (`services.invoicing`) and must
issue the same invoices, whatever the usage: late entries, override prices, an earlier
interim invoice in the period, pending rated items, several periods caught up.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.services.billing import run_billing
from arrears.services.contract_billing import bill_due
from arrears.store.database import Database
from tests.billing_factories import (
    PricedContract,
    app_without_worker,
    bill_at,
    bill_interim_at,
    move_clock,
    new_contract_on,
    new_storage_and_calls_contract,
    post_usage,
    send_json,
)
from tests.conftest import POSTGRES_SERVER
from tests.e2e.billed import assert_each_entry_billed_once, invoices, twin_of, unbilled_count

BILLED_AT = datetime(2026, 4, 1, tzinfo=UTC)
OVERRIDE = {"PricePerUnit": Decimal("2.50"), "Name": "Premium storage"}


def _seed(settings: Settings, database: Database, clock: TestClock) -> list[PricedContract]:
    """Six contracts from January 1 with every kind of usage, January billed; at the
    billing time each is due for February and March."""
    with TestClient(app_without_worker(settings, database, clock)) as client:
        first = new_storage_and_calls_contract(client)
        contracts = [first] + [
            replace(
                first,
                contract_id=new_contract_on(
                    client, first.seller, first.customer_id, first.plan_variant_id
                ),
            )
            for _ in range(5)
        ]
        calls = first.component_ids[1]
        for n, contract in enumerate(contracts):
            post_usage(client, contract, f"{n + 3}.5", "2026-01-10T00:00:00Z")
        bill_at(client, "2026-02-01T00:00:00Z")

        for n, contract in enumerate(contracts):
            post_usage(client, contract, f"{40 + n}", "2026-02-05T00:00:00Z", calls)
        for contract in contracts[::2]:  # an interim invoice shares February's quota, tiers
            bill_interim_at(client, contract, "2026-02-10T00:00:00Z")

        move_clock(client, "2026-03-31T12:00:00Z")
        for n, contract in enumerate(contracts):
            post_usage(client, contract, "2", "2026-01-20T00:00:00Z")  # late: January's
            post_usage(client, contract, "3", "2026-02-01T00:00:00Z")  # on time: February's
            post_usage(client, contract, f"{75 + n}.25", "2026-02-20T00:00:00Z", calls)
            post_usage(client, contract, "8", "2026-02-20T00:00:00Z")
            post_usage(client, contract, "1.5", "2026-02-21T00:00:00Z", ProductOverride=OVERRIDE)
            post_usage(client, contract, "4", "2026-03-01T00:00:00Z")  # at the boundary
            post_usage(client, contract, f"{n + 11}", "2026-03-15T00:00:00Z")
            post_usage(client, contract, "500", "2026-03-16T00:00:00Z", calls)
        for contract in contracts[1::3]:  # a rated item waits for the next invoice
            order = {
                "ContractId": contract.contract_id,
                "Cart": {
                    "RatedItems": [
                        {"Description": "Setup", "Quantity": 1, "PricePerUnit": Decimal("49")}
                    ]
                },
            }
            response = send_json(client, "POST", "/api/v1/orders", contract, order)
            assert response.status_code == 201, response.text
    return contracts


def test_a_batch_of_contracts_is_billed_exactly_as_each_contract_billed_on_its_own(
    settings: Settings,
    database: Database,
    clock: TestClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    contracts = _seed(settings, database, clock)
    with twin_of(database, POSTGRES_SERVER) as one_by_one:
        billed_clock = TestClock(BILLED_AT)
        with caplog.at_level(logging.WARNING, logger="arrears.billing"):
            run = run_billing(database, billed_clock)
        assert not caplog.records, "the batch fell back to billing contracts one by one"
        alone = sum(
            len(bill_due(one_by_one, billed_clock, c.seller.seller_id, c.contract_id))
            for c in contracts
        )

        batched, _ = invoices(database)
        reference, _ = invoices(one_by_one)
        assert run.invoices == alone == 2 * len(contracts)
        assert batched == reference
        for billed in (database, one_by_one):
            assert_each_entry_billed_once(billed)
            assert unbilled_count(billed) == 0
        # Every kind of line was made: late, override, earlier interim, rated item.
        lines = [line for per in batched.values() for invoice in per for line in invoice[-1]]
        assert any(line[6] for line in lines)  # late
        assert any(line[2] == "Premium storage" for line in lines)
        assert any(line[0] == "RatedItem" for line in lines)
        assert {invoice[0] for per in batched.values() for invoice in per} == {
            "Interim",
            "Regular",
        }
