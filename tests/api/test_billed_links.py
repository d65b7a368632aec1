"""billed_usage's primary key is the guarantee that no entry is billed twice: a second
link of the same entry is a `Conflict` (the billing transaction rolls back), whether it
goes as a COPY (PostgreSQL) or an `executemany` (SQLite)."""

from __future__ import annotations

import pytest

from arrears.domain.errors import Conflict
from arrears.store.database import Database
from arrears.store.invoices import InvoiceRepository

SELLER = "s" * 24


def test_an_entry_linked_to_a_second_invoice_is_a_conflict_and_the_first_link_stays(
    database: Database,
) -> None:
    with database.write() as session:
        InvoiceRepository(session, SELLER).link_usage([("invoice-1", [7, 8])])
    with pytest.raises(Conflict), database.write() as session:
        InvoiceRepository(session, SELLER).link_usage([("invoice-2", [9, 8])])
    with database.read() as session:
        links = session.connection().exec_driver_sql(
            "SELECT usage_id, invoice_id FROM billed_usage ORDER BY usage_id"
        )
        assert links.all() == [(7, "invoice-1"), (8, "invoice-1")]
