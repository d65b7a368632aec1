"""The daily usage rollup (`usage_days`) equals a fresh GROUP BY over the stored entries
after any mix of writes and deletes, through every write path of the usage repository;
a rolled-back write leaves it as it was, and migration 0017 fills it from the entries
already stored."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from arrears.domain.usage import UsageCandidate
from arrears.store import schema
from arrears.store import sqlite as sqlite_store
from arrears.store.database import Database
from arrears.store.dialect import dialect_of
from arrears.store.tables import UsageDayRow, UsageEntryRow
from arrears.store.usage import KeyStored, UsageRepository
from arrears.store.usage_days import day_sums, rebuild

SELLERS = ("seller-a", "seller-b")
TRANSFERRED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Around midnight UTC, so that entries fall on either side of a day's boundary.
MIDNIGHT = datetime(2026, 2, 2, tzinfo=UTC)
SUBMISSIONS = itertools.count()
# The largest quantity accepted: its sum over a few entries passes 2**63 millionths.
LARGEST = Decimal("999999999999.999999")

Totals = dict[tuple[str, str, str], tuple[int, Decimal]]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SQLite writer's chunks small enough that a few entries cross several of them.
    monkeypatch.setattr(sqlite_store, "_CHUNK", 4)


def fresh_group_by(database: Database) -> Totals:
    """(seller, component, UTC day) -> (entries, quantity), summed in Python from every
    stored entry."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    sums: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    with database.read() as session:
        rows = session.execute(
            select(
                UsageEntryRow.seller_id,
                UsageEntryRow.component_id,
                UsageEntryRow.due_date,
                UsageEntryRow.quantity,
            )
        )
        for seller, component, due, quantity in rows:
            key = (seller, component, due.astimezone(UTC).strftime("%Y-%m-%d"))
            counts[key] += 1
            sums[key] += quantity
    return {key: (count, sums[key]) for key, count in counts.items()}


def rollup(database: Database) -> Totals:
    """The same, as the rollup holds it (summed over shards; empty days left out)."""
    out: Totals = {}
    with database.read() as session:
        counts = {
            (seller, component, day): int(entries)
            for seller, component, day, entries in session.execute(
                text(
                    "SELECT seller_id, component_id, day, SUM(entries) FROM usage_days "
                    "GROUP BY seller_id, component_id, day HAVING SUM(entries) <> 0"
                )
            )
        }
        connection = session.connection()
        for seller in SELLERS:
            for component, day, quantity in day_sums(
                connection, dialect_of(session).rollup, seller, "0000", "9999"
            ):
                out[(seller, component, day)] = (counts.pop((seller, component, day)), quantity)
    assert counts == {}, "days with entries but no sum"
    return out


def candidate(n: int, *, key: str | None, quantity: Decimal) -> UsageCandidate:
    return UsageCandidate(
        contract_id=f"contract-{n % 3}",
        component_id=f"component-{n % 2}",
        quantity=quantity,
        due_date=MIDNIGHT + timedelta(hours=7 * n - 20, microseconds=n),
        key=key,
    )


# One write: (path, seller, [(n, key or None, quantity)]); or a delete: ("delete", seller, i).
quantities = st.sampled_from([Decimal(0), Decimal("0.000001"), Decimal("2.5"), LARGEST])
entries = st.lists(
    st.tuples(
        st.integers(0, 8),
        st.one_of(st.none(), st.sampled_from([f"k{i}" for i in range(6)])),
        quantities,
    ),
    min_size=1,
    max_size=9,
)
writes = st.tuples(
    st.sampled_from(["insert_one", "insert_new", "writer", "delete", "rolled_back"]),
    st.sampled_from(SELLERS),
    entries,
)


def apply(
    database: Database, path: str, seller: str, batch: list[tuple[int, str | None, Decimal]]
) -> None:
    candidates = [candidate(n, key=key, quantity=q) for n, key, q in batch]
    submission = f"sub-{next(SUBMISSIONS)}"
    kwargs = {"submission_id": submission, "transferred_at": TRANSFERRED_AT}
    if path == "delete":
        with database.write() as session:
            usage = UsageRepository(session, seller)
            stored = session.execute(
                select(UsageEntryRow.contract_id, UsageEntryRow.id)
                .where(UsageEntryRow.seller_id == seller)
                .order_by(UsageEntryRow.id)
            ).all()
            for contract_id, entry_id in stored[: len(batch)]:
                usage.delete_unbilled(contract_id, entry_id)
        return
    try:
        with database.write(bulk=path == "writer") as session:
            usage = UsageRepository(session, seller)
            if path == "insert_one":
                for c in candidates:  # a key already stored is skipped
                    usage.insert_one(c, **kwargs)  # type: ignore[arg-type]
            elif path == "writer":
                with usage.writer(**kwargs) as writer:  # type: ignore[arg-type]
                    for start in range(0, len(candidates), 3):
                        writer.write(candidates[start : start + 3])
            else:  # insert_new, or anything rolled back after it
                usage.insert_new(candidates, **kwargs)  # type: ignore[arg-type]
                if path == "rolled_back":
                    raise RollBack
    except (KeyStored, RollBack):
        pass


class RollBack(Exception):
    pass


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(writes, min_size=1, max_size=8))
def test_the_rollup_equals_a_fresh_group_by_after_any_writes_and_deletes(
    database: Database, steps: list[tuple[str, str, list[tuple[int, str | None, Decimal]]]]
) -> None:
    with database.write() as session:  # each example starts from no usage
        session.execute(text("DELETE FROM usage_entries"))
        session.execute(text("DELETE FROM usage_days"))
    for path, seller, batch in steps:
        apply(database, path, seller, batch)
        assert rollup(database) == fresh_group_by(database), (path, seller, batch)


def test_a_repeated_key_in_one_batch_is_counted_once(database: Database) -> None:
    apply(database, "insert_new", SELLERS[0], [(1, "same", Decimal(3))] * 2)
    apply(database, "insert_one", SELLERS[0], [(1, "same", Decimal(3))])
    assert rollup(database) == fresh_group_by(database)
    assert list(rollup(database).values()) == [(1, Decimal(3))]


def test_sums_past_64_bits_of_millionths_stay_exact(database: Database) -> None:
    apply(database, "writer", SELLERS[0], [(0, None, LARGEST)] * 20)
    apply(database, "insert_new", SELLERS[0], [(0, None, LARGEST)] * 20)
    assert rollup(database) == {(SELLERS[0], "component-0", "2026-02-01"): (40, LARGEST * 40)}


def test_migration_0017_fills_the_rollup_from_the_stored_entries(database: Database) -> None:
    for path in ("insert_new", "writer", "insert_one"):
        apply(database, path, SELLERS[0], [(n, None, Decimal(n) / 4) for n in range(7)])
    apply(database, "writer", SELLERS[1], [(0, None, LARGEST)] * 10)
    expected = fresh_group_by(database)
    schema.downgrade(database, "0016")
    schema.upgrade(database)
    assert rollup(database) == expected
    with database.read() as session:
        shards = set(session.execute(select(UsageDayRow.shard)).scalars())
    assert shards == {0}
    with database.write() as session:  # summing afresh finds the same
        rebuild(session.connection(), dialect_of(session).rollup)
    assert rollup(database) == expected


def test_bulk_inserts_of_a_hundred_entries_and_more_add_what_they_stored(
    database: Database,
) -> None:
    # From 100 entries on, PostgreSQL inserts by COPY; a key already stored makes the
    # COPY fail and the batch go again, skipping it.
    apply(database, "writer", SELLERS[0], [(n, f"w{n}", Decimal(n)) for n in range(250)])
    apply(database, "insert_one", SELLERS[0], [(3, "stored", Decimal(7))])
    again = [(n, f"n{n}", Decimal("0.5")) for n in range(150)] + [(3, "stored", Decimal(7))]
    apply(database, "insert_new", SELLERS[0], again)
    assert rollup(database) == fresh_group_by(database)
    assert sum(count for count, _ in rollup(database).values()) == 250 + 1 + 150
