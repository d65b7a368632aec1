"""SPEC §5/§7: usage and a contract's final invoice take turns. Usage entries have no
foreign keys; reading a contract's terms to insert usage locks the contract (key share,
PostgreSQL) until the insert commits, and billing locks it for update. So usage being
inserted when the final invoice is issued lands on that invoice, and usage inserted
after it sees the contract closed (409) — none is stored unbilled on a closed contract.

SQLite has one writer at a time, so the two cannot overlap there at all."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from arrears.config import Settings
from arrears.domain.clock import TestClock
from arrears.domain.usage import UsageCandidate
from arrears.services.contract_billing import bill_due, issue_next_due
from arrears.store.database import Database
from arrears.store.unit_of_work import UnitOfWork
from arrears.store.usage import UsageRepository
from tests.billing_factories import (
    PricedContract,
    app_without_worker,
    billed_ids,
    end_contract,
    invoices_of,
    new_priced_contract,
)
from tests.threads import until_blocked

ENDED = "2026-01-20T00:00:00Z"
AFTER_THE_END = TestClock(datetime(2026, 1, 21, tzinfo=UTC))


@pytest.fixture
def contract(settings: Settings, database: Database, clock: TestClock) -> PricedContract:
    if database.is_sqlite:
        pytest.skip("SQLite has one write lock: usage and billing never overlap")
    with TestClient(app_without_worker(settings, database, clock)) as client:
        priced = new_priced_contract(client)
        end_contract(client, priced, ENDED)
        return priced


def _candidate(contract: PricedContract) -> UsageCandidate:
    return UsageCandidate(
        contract_id=contract.contract_id,
        component_id=contract.component_id,
        quantity=Decimal("7"),
        due_date=datetime(2026, 1, 10, tzinfo=UTC),
        key="in-flight",
    )


def test_usage_being_inserted_when_the_final_invoice_is_issued_is_billed_on_it(
    settings: Settings, database: Database, clock: TestClock, contract: PricedContract
) -> None:
    seller_id = contract.seller.seller_id
    with ThreadPoolExecutor(1) as pool:
        with database.write() as session:
            usage = UsageRepository(session, seller_id)
            assert not usage.contract_terms([contract.contract_id])[contract.contract_id].closed
            billing = pool.submit(
                bill_due, database, AFTER_THE_END, seller_id, contract.contract_id
            )
            until_blocked(database, billing)
            inserted = usage.insert_new(
                [_candidate(contract)], submission_id="in-flight", transferred_at=clock.now()
            )
            assert inserted == 1
        [final] = billing.result(timeout=30)

    assert final.draft.kind.value == "Final"
    with TestClient(app_without_worker(settings, database, clock)) as client:
        [invoice] = invoices_of(client, contract)
        assert len(billed_ids(invoice)) == 1


def test_usage_inserted_while_the_final_invoice_is_issued_sees_the_contract_closed(
    database: Database, contract: PricedContract
) -> None:
    seller_id = contract.seller.seller_id

    def terms_closed() -> bool:
        with database.write() as session:
            terms = UsageRepository(session, seller_id).contract_terms([contract.contract_id])
            return terms[contract.contract_id].closed

    with ThreadPoolExecutor(1) as pool:
        with database.write() as session:
            final = issue_next_due(
                UnitOfWork(session, seller_id), AFTER_THE_END, contract.contract_id
            )
            assert final is not None
            reading = pool.submit(terms_closed)
            until_blocked(database, reading)
        assert reading.result(timeout=30) is True
