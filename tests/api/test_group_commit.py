"""Group commit (store/group_commit.py): concurrent single posts share one transaction
and one commit, each in its own savepoint, and each still gets exactly its own answer.

Two kinds of tests: real concurrent posts over HTTP, and units submitted to a
`GroupCommit` with one writer directly, while that writer is held busy, so that they are
sure to share one batch.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from arrears.domain.ids import new_id
from arrears.store.database import Database
from arrears.store.group_commit import GroupCommit
from arrears.store.sellers import SellerRecord, SellerRegistry
from arrears.store.tables import SellerRow, UsageEntryRow
from tests.ingest_factories import new_metered_seller, send, usage
from tests.threads import all_at_once

WAIT = 30  # seconds a test waits for the writer before it fails instead of hanging


def _stored_keys(database: Database) -> Counter[str | None]:
    with database.read() as session:
        return Counter(session.execute(select(UsageEntryRow.key)).scalars())


# -- over HTTP ----------------------------------------------------------------------------


def test_concurrent_posts_each_get_their_own_answer_and_store_each_key_once(
    client: TestClient, database: Database
) -> None:
    metered = new_metered_seller(client, contracts=2)
    other = new_metered_seller(client, name="Globex")
    contract, second = metered.contract_ids
    component = metered.component_id
    # Forty posts released together. Four keys are each posted five times with the
    # same values; key "split" twice with 1 and twice with 2; eight posts have no key;
    # eight are wrong in their own way.
    posts: list[tuple[str, str, dict[str, Any]]] = [
        *[("same", contract, usage(component, 5, Key=f"same-{n % 4}")) for n in range(20)],
        *[("split", contract, usage(component, 1 + n % 2, Key="split")) for n in range(4)],
        *[("keyless", second, usage(component, 3)) for _ in range(8)],
        *[("not in plan", contract, usage(metered.unmetered_component_id, 1, Key="bad-1"))] * 2,
        *[("before start", contract, usage(component, 1, DueDate="2025-12-31T00:00:00Z"))] * 2,
        *[("negative", second, usage(component, -1, Key="bad-2"))] * 2,
        *[("foreign contract", other.contract_id, usage(component, 1, Key="bad-3"))] * 2,
    ]

    def post(n: int) -> tuple[str, int, dict[str, Any]]:
        kind, contract_id, payload = posts[n]
        response = send(client, "POST", metered.usage_path(contract_id), metered, payload)
        return kind, response.status_code, response.json()

    answers = all_at_once(len(posts), post)

    by_kind: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for kind, status, body in answers:
        by_kind.setdefault(kind, []).append((status, body))
    for n in range(4):
        same = [(s, b) for s, b in by_kind["same"] if b["Key"] == f"same-{n}"]
        assert sorted(s for s, _ in same) == [200, 200, 200, 200, 201]
        assert len({b["Id"] for _, b in same}) == 1
    split = by_kind["split"]
    stored = [b for s, b in split if s == 201]
    assert len(stored) == 1
    replays = [b for s, b in split if s == 200]
    refused = [b for s, b in split if s == 409]
    assert len(replays) == 1
    assert len(refused) == 2
    assert replays[0]["Id"] == stored[0]["Id"]
    assert replays[0]["Quantity"] == stored[0]["Quantity"]
    assert {s for s, _ in by_kind["keyless"]} == {201}
    assert len({b["Id"] for _, b in by_kind["keyless"]}) == 8
    assert [s for s, _ in by_kind["not in plan"]] == [422, 422]
    assert [s for s, _ in by_kind["before start"]] == [422, 422]
    assert [s for s, _ in by_kind["negative"]] == [422, 422]
    assert [s for s, _ in by_kind["foreign contract"]] == [404, 404]

    expected: Counter[str | None] = Counter({f"same-{n}": 1 for n in range(4)})
    expected.update({"split": 1, None: 8})
    assert _stored_keys(database) == expected


# -- GroupCommit --------------------------------------------------------------------------


@pytest.fixture
def group(database: Database) -> Iterator[GroupCommit]:
    """Group commit on the test's database with one writer (PostgreSQL's databases
    have several, which would take units while the one is held)."""
    group = GroupCommit(database.write, writers=1)
    yield group
    group.close()


@contextmanager
def _writer_held(group: GroupCommit) -> Iterator[None]:
    """Keep the writer busy inside the block, so that every unit submitted in it waits
    and all of them run together in the next batch."""
    running, release = threading.Event(), threading.Event()

    def hold(session: Session) -> None:
        session.execute(text("SELECT 1"))  # so that its batch has a transaction to commit
        running.set()
        release.wait(WAIT)

    holder = group.submit(hold)
    assert running.wait(WAIT)
    try:
        yield
    finally:
        release.set()
        holder.result(WAIT)


def _add_seller(name: str, *, then: Callable[[], None] = lambda: None) -> Callable[[Session], str]:
    def work(session: Session) -> str:
        SellerRegistry(session).add(
            SellerRecord(new_id(), name, "EUR", "INV", datetime(2026, 1, 1, tzinfo=UTC))
        )
        then()
        return name

    return work


def _seller_names(database: Database) -> set[str]:
    with database.read() as session:
        return set(session.execute(select(SellerRow.name)).scalars())


class Refused(Exception):
    pass


def _refuse() -> None:
    raise Refused("this unit fails after its write")


def test_a_failing_unit_rolls_back_only_its_own_writes_in_the_shared_transaction(
    database: Database, group: GroupCommit
) -> None:
    sessions: list[int] = []

    def noting_session(work: Callable[[Session], str]) -> Callable[[Session], str]:
        def unit(session: Session) -> str:
            sessions.append(id(session))
            return work(session)

        return unit

    with _writer_held(group):
        first = group.submit(noting_session(_add_seller("First")))
        failing = group.submit(noting_session(_add_seller("Failing", then=_refuse)))
        last = group.submit(noting_session(_add_seller("Last")))

    assert first.result(WAIT) == "First"
    assert last.result(WAIT) == "Last"
    with pytest.raises(Refused):
        failing.result(WAIT)
    assert len(set(sessions)) == 1  # one transaction for the three
    assert _seller_names(database) == {"First", "Last"}


def test_no_unit_is_answered_before_the_commit_of_its_batch(
    database: Database, group: GroupCommit
) -> None:
    committing, release = threading.Event(), threading.Event()

    def hold_the_commit(session: Session) -> None:
        # The connection's commit, not the session's: that one fires for savepoints too.
        @event.listens_for(session.connection(), "commit", once=True)
        def _wait(_connection: Connection) -> None:
            committing.set()
            release.wait(WAIT)

    with _writer_held(group):
        stored = group.submit(_add_seller("Stored"))
        group.submit(hold_the_commit)

    assert committing.wait(WAIT)
    assert not stored.done()
    assert _seller_names(database) == set()
    release.set()
    assert stored.result(WAIT) == "Stored"
    assert _seller_names(database) == {"Stored"}


def test_when_the_commit_fails_every_unit_of_the_batch_gets_the_error_and_nothing_is_stored(
    database: Database, group: GroupCommit
) -> None:
    def break_the_commit(session: Session) -> None:
        @event.listens_for(session.connection(), "commit", once=True)
        def _fail(_connection: Connection) -> None:
            raise Refused("the commit fails")

    with _writer_held(group):
        units = [
            group.submit(_add_seller("Before")),
            group.submit(break_the_commit),
            group.submit(_add_seller("After")),
        ]

    for unit in units:
        with pytest.raises(Refused):
            unit.result(WAIT)
    assert _seller_names(database) == set()
    # The writer goes on: the next unit is stored.
    assert group.submit(_add_seller("Next")).result(WAIT) == "Next"
    assert _seller_names(database) == {"Next"}


def test_a_unit_that_loses_a_lock_race_runs_again_in_the_next_batch(
    database: Database, group: GroupCommit
) -> None:
    attempts: list[int] = []

    def deadlocked_once(session: Session) -> str:
        attempts.append(1)
        name = _add_seller("Retried")(session)
        if len(attempts) == 1:
            # What psycopg raises when PostgreSQL picks this transaction as the victim.
            raise OperationalError("INSERT ...", {}, psycopg.errors.DeadlockDetected())
        return name

    with _writer_held(group):
        retried = group.submit(deadlocked_once)
        other = group.submit(_add_seller("Other"))

    assert retried.result(WAIT) == "Retried"
    assert other.result(WAIT) == "Other"
    assert len(attempts) == 2
    assert _seller_names(database) == {"Retried", "Other"}


def test_a_unit_cancelled_before_its_batch_starts_never_runs(group: GroupCommit) -> None:
    ran: list[str] = []

    def note(session: Session) -> None:
        ran.append("ran")

    with _writer_held(group):
        cancelled: Future[None] = group.submit(note)
        assert cancelled.cancel()
        kept = group.submit(_add_seller("Kept"))

    assert kept.result(WAIT) == "Kept"
    assert ran == []


def test_grouped_writes_go_on_after_the_database_is_disposed_and_used_again(
    database: Database,
) -> None:
    assert database.write_grouped(_add_seller("Before")).result(WAIT) == "Before"
    database.dispose()
    assert database.write_grouped(_add_seller("After")).result(WAIT) == "After"
    with database.read() as session:
        assert session.execute(select(func.count(SellerRow.id))).scalar_one() == 2


def test_units_waiting_together_share_one_commit(database: Database, group: GroupCommit) -> None:
    commits: list[int] = []
    event.listen(database.engine, "commit", lambda _connection: commits.append(1))

    with _writer_held(group):
        units = [group.submit(_add_seller(f"Seller {n}")) for n in range(32)]

    assert [unit.result(WAIT) for unit in units] == [f"Seller {n}" for n in range(32)]
    assert len(_seller_names(database)) == 32
    assert len(commits) == 2  # the held batch's, then one for all thirty-two


def test_each_of_several_writers_commits_its_own_batch(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("SQLite has one write lock, so its databases have one writer")
    group = GroupCommit(database.write, writers=2)
    try:
        with _writer_held(group):
            # The other writer is free: it takes and commits this unit meanwhile.
            assert group.submit(_add_seller("Meanwhile")).result(WAIT) == "Meanwhile"
            assert _seller_names(database) == {"Meanwhile"}
    finally:
        group.close()
