"""The bulk writer of usage entries (`UsageRepository.writer`), which applies bulk tasks:
it stores exactly what it is given, in order, all or nothing. On SQLite it hands chunks
to a second thread, each inserted from a JSON array; the chunks are made small here so
that a few entries cross several of them."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.exc import DBAPIError

from arrears.domain.usage import ProductOverride, UsageCandidate, UsageEntry
from arrears.store import sqlite as sqlite_store
from arrears.store.database import Database
from arrears.store.usage import KeyStored, UsageRepository

SELLER = "seller-writer"
TRANSFERRED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXAMPLES = itertools.count()
CHUNK = 4  # entries per SQLite statement in these tests (the service's is 10,000)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "_CHUNK", CHUNK)


def candidate(n: int, **values: object) -> UsageCandidate:
    fields: dict[str, object] = {
        "contract_id": f"contract-{n % 3}",
        "component_id": f"component-{n % 2}",
        "quantity": Decimal(n) + Decimal("0.000001"),
        "due_date": datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=n, microseconds=n),
        "key": f"key-{n}",
        **values,
    }
    return UsageCandidate(**fields)  # type: ignore[arg-type]


def write(
    database: Database, candidates: list[UsageCandidate], submission: str, *, per_call: int = 3
) -> int:
    """Write the candidates through one writer, `per_call` at a time; how many it wrote."""
    with database.write(bulk=True) as session:
        usage = UsageRepository(session, SELLER)
        with usage.writer(submission_id=submission, transferred_at=TRANSFERRED_AT) as writer:
            for start in range(0, len(candidates), per_call):
                writer.write(candidates[start : start + per_call])
    return writer.written


def stored(database: Database, submission: str) -> list[UsageEntry]:
    with database.read() as session:
        return UsageRepository(session, SELLER).entries_of_submission(submission)


def as_given(entry: UsageEntry) -> UsageCandidate:
    return UsageCandidate(
        entry.contract_id,
        entry.component_id,
        entry.quantity,
        entry.due_date,
        entry.key,
        entry.memo,
        entry.override,
    )


def inserting_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("arrears-insert")]


def test_entries_written_in_chunks_are_stored_as_given_and_in_order(database: Database) -> None:
    # 11 entries, written 3 at a time: chunks of 4, 4 and 3, one of them with override prices.
    candidates = [
        candidate(
            n,
            memo=None if n % 2 else f"memo {n}",
            override=ProductOverride(price_per_unit=Decimal("0.125")) if n == 5 else None,
        )
        for n in range(11)
    ]
    assert write(database, candidates, "submission-1") == 11
    entries = stored(database, "submission-1")
    assert [as_given(entry) for entry in entries] == candidates
    assert [entry.id for entry in entries] == sorted(entry.id for entry in entries)
    assert {(entry.transferred_at, entry.task_id) for entry in entries} == {
        (TRANSFERRED_AT, "submission-1")
    }
    assert inserting_threads() == []


def test_a_submission_of_less_than_a_chunk_is_stored_too(database: Database) -> None:
    candidates = [candidate(n) for n in range(CHUNK - 1)]
    assert write(database, candidates, "small") == CHUNK - 1
    assert [as_given(entry) for entry in stored(database, "small")] == candidates


# Text a key or memo may hold: any character but surrogates (not text), and on
# PostgreSQL, which cannot store it, U+0000 (bulk submissions refuse it on both).
def texts(database: Database) -> st.SearchStrategy[str]:
    excluded = "\x00" if not database.is_sqlite else ""
    characters = st.characters(blacklist_categories=("Cs",), blacklist_characters=excluded)
    return st.text(characters, max_size=40)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_keys_and_memos_of_any_text_are_stored_exactly(
    database: Database, data: st.DataObject
) -> None:
    memos = data.draw(st.lists(texts(database), min_size=CHUNK + 1, max_size=3 * CHUNK))
    submission = f"text-{next(EXAMPLES)}"  # keys new to every example
    candidates = [
        candidate(n, key=f"{submission}-{n}:{memo}", memo=memo) for n, memo in enumerate(memos)
    ]
    write(database, candidates, submission)
    assert [as_given(entry) for entry in stored(database, submission)] == candidates


def test_a_key_stored_before_raises_key_stored_and_keeps_nothing(database: Database) -> None:
    write(database, [candidate(9)], "earlier")
    later = [candidate(n) for n in range(12)]  # key-9 lies in the third chunk
    with pytest.raises(KeyStored):
        write(database, later, "later")
    assert stored(database, "later") == []
    assert inserting_threads() == []


def test_a_key_given_twice_in_different_chunks_raises_key_stored(database: Database) -> None:
    twice = [candidate(n) for n in range(8)] + [candidate(1)]
    with pytest.raises(KeyStored):
        write(database, twice, "twice")
    assert stored(database, "twice") == []


def test_a_failure_while_chunks_are_inserted_leaves_nothing_and_no_thread(
    database: Database,
) -> None:
    def write_then_fail() -> None:
        with database.write(bulk=True) as session:
            usage = UsageRepository(session, SELLER)
            with usage.writer(submission_id="failed", transferred_at=TRANSFERRED_AT) as writer:
                writer.write([candidate(n) for n in range(3 * CHUNK)])
                raise RuntimeError("the caller found a bad record")

    with pytest.raises(RuntimeError, match="bad record"):
        write_then_fail()
    assert stored(database, "failed") == []
    assert inserting_threads() == []


def test_a_database_error_while_a_chunk_is_inserted_reaches_the_caller_and_keeps_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database.is_sqlite:
        pytest.skip("PostgreSQL's writer streams one COPY in the caller's thread")
    broken = dict.fromkeys((True, False), "INSERT INTO no_such_table SELECT 1")
    monkeypatch.setattr(sqlite_store, "_INSERT_FROM_JSON", broken)
    with pytest.raises(DBAPIError, match="no_such_table"):
        write(database, [candidate(n) for n in range(3 * CHUNK)], "broken")
    assert stored(database, "broken") == []
    assert inserting_threads() == []
