"""Usage entries in storage: set-based lookups and bulk inserts for ingestion."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Protocol, TypeVar

import msgspec
import psycopg
from psycopg.errors import UniqueViolation
from sqlalchemy import (
    BigInteger,
    Connection,
    Dialect,
    Select,
    any_,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError

from arrears.domain.errors import Conflict, NotFound
from arrears.domain.ids import UsageIds
from arrears.domain.paging import Page, PageRequest
from arrears.domain.usage import (
    ContractTerms,
    UsageCandidate,
    UsageEntry,
    product_override,
)
from arrears.store.database import driver_connection, driver_errors
from arrears.store.tables import (
    BilledUsageRow,
    ComponentRow,
    ContractRow,
    MeteredComponentRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository

__all__ = ["KeyStored", "UsageFilter", "UsageRepository", "UsageWriter", "usage_entry"]

# Bound parameters per lookup statement: far below SQLite's and PostgreSQL's limits.
_LOOKUP_CHUNK = 2_000

_USAGE = UsageEntryRow.__table__
_QUANTITY = _USAGE.c.quantity.type  # an ExactDecimal: its exact SQLite sums
_BILLED = BilledUsageRow.__table__
_CONTRACTS = ContractRow.__table__
_METERED = MeteredComponentRow.__table__
# The columns an insert writes, in the order of the rows `_driver_rows` builds: those
# that every entry of a submission shares, then each entry's own (its id first, drawn by
# `UsageIds`: the database numbers nothing, see docs/api-conventions.md, "Ids"). A batch without
# override prices leaves out the last three (NULL by default): binding a None costs the
# sqlite3 module more than binding a value.
_SHARED = ("seller_id", "transferred_at", "submission_id")
_OWN = ("id", "contract_id", "component_id", "quantity", "due_date", "key", "memo")
_OVERRIDES = ("override_price", "override_name", "override_description")
_INSERTED = (*_SHARED, *_OWN, *_OVERRIDES)
_PLAIN = len(_INSERTED) - len(_OVERRIDES)
_PLACEHOLDERS = {"sqlite": "?", "postgresql": "%s"}
# The statements name only the constants above: nothing of a request is formatted in.
# By (dialect, with overrides). `ON CONFLICT` names no constraint: a stored key is
# skipped, and so is an id that another submission's run of random ids holds already
# (rare: the caller sees the shortfall, as for a stored key, and tries again with new ids).
_INSERT_SKIPPING_STORED = {
    (dialect, overrides): f"INSERT INTO {_USAGE.name} ({', '.join(columns)}) "  # noqa: S608
    f"VALUES ({', '.join(placeholder for _ in columns)}) "
    "ON CONFLICT DO NOTHING"
    for dialect, placeholder in _PLACEHOLDERS.items()
    for overrides, columns in ((True, _INSERTED), (False, _INSERTED[:_PLAIN]))
}
_IDS_BY_KEY_POSTGRESQL = text(
    "SELECT u.id FROM json_array_elements(CAST(:pairs AS json)) AS wanted(pair) "
    "JOIN usage_entries AS u "
    "ON u.contract_id = wanted.pair ->> 0 AND u.key = wanted.pair ->> 1 "
    "WHERE u.seller_id = :seller_id"
)
_IDS_BY_KEY_SQLITE = (
    "SELECT u.id FROM (VALUES {values}) AS wanted JOIN usage_entries AS u "
    "ON u.contract_id = wanted.column1 AND u.key = wanted.column2 WHERE u.seller_id = ?"
)
_COPY = f"COPY {_USAGE.name} ({', '.join(_INSERTED)}) FROM STDIN BINARY"
# COPY's binary format needs the PostgreSQL type of every column (in `_INSERTED` order).
_COPY_TYPES = (
    "varchar", "timestamptz", "varchar",
    "int8", "varchar", "varchar", "numeric", "timestamptz", "varchar", "varchar",
    "numeric", "varchar", "varchar",
)  # fmt: skip
# SQLite: a chunk of entries inserted by one statement that reads them from a JSON array
# of their own columns (`UsageRepository._own_rows`), the shared ones bound once. By
# whether the rows hold the override columns (a row without them reads as NULLs).
# `WHERE true` tells SQLite's parser that `ON CONFLICT` is not a join's `ON`.
_INSERT_FROM_JSON = {
    overrides: f"INSERT INTO {_USAGE.name} ({', '.join(columns)}) "  # noqa: S608
    f"SELECT {', '.join('?' for _ in _SHARED)}, "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns) - len(_SHARED)))
    + " FROM json_each(?) WHERE true ON CONFLICT DO NOTHING"
    for overrides, columns in ((True, _INSERTED), (False, _INSERTED[:_PLAIN]))
}

# One post of the contract usage API, the hot path of single writes. Driver-level SQL:
# SQLAlchemy's statement machinery costs several times what SQLite takes to run these.
# A stored key (or a taken id) is skipped: the new row's id comes back from the same
# statement only if it was inserted (both databases have RETURNING).
_INSERT_ONE = {
    dialect: f"{_INSERT_SKIPPING_STORED[dialect, True]} RETURNING id" for dialect in _PLACEHOLDERS
}
# The contract is locked as `UsageRepository.contract_terms` locks them.
_TERMS_OF_ONE = {
    dialect: "SELECT c.start_date, c.end_date, c.final_invoice_id, m.component_id "  # noqa: S608
    "FROM contracts AS c LEFT JOIN metered_components AS m "
    "ON m.plan_variant_id = c.plan_variant_id "
    f"WHERE c.seller_id = {placeholder} AND c.id = {placeholder}{lock}"
    for dialect, placeholder, lock in (
        ("sqlite", "?", ""),
        ("postgresql", "%s", " FOR KEY SHARE OF c"),
    )
}

_json = msgspec.json.Encoder()
# From this many rows on, an insert is a bulk insert: COPY on PostgreSQL, a larger page
# cache on SQLite. Below it, a plain INSERT answers sooner (COPY costs a few round trips).
_BULK_ROWS = 100
# SQLite's page cache during a bulk insert (a negative `cache_size` counts KiB).
_BULK_CACHE_KIB = -64 * 1024
# Entries per statement of a SQLite bulk insert (`_SqliteWriter`): enough that what each
# statement costs besides its rows is small, few enough that the first starts soon.
# 10,000 was fastest of 2,000, 5,000, 10,000 and 20,000 for 100,000 entries.
_SQLITE_CHUNK = 10_000
# Chunks handed over and not yet inserted, at most: the inserting thread always has the
# next at hand, and the memory they hold stays bounded.
_SQLITE_QUEUED = 2

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[tuple[T, ...]]:
    """`items` in tuples of at most `size` (itertools.batched arrived in Python 3.12)."""
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """`?from=&to=&billed=` of a usage listing; `to` is exclusive."""

    due_from: datetime | None = None
    due_to: datetime | None = None
    billed: bool | None = None


class UsageRepository(TenantRepository):
    @property
    def _dialect(self) -> str:
        return self._session.get_bind().dialect.name

    # -- references, resolved set-based --------------------------------------------------

    def contract_terms(self, contract_ids: Iterable[str]) -> dict[str, ContractTerms]:
        """The terms of those of `contract_ids` that are this seller's (two queries).

        On PostgreSQL the contracts stay locked in key-share mode until the transaction
        ends (SQLite's write lock does the same for the whole database): billing, which
        locks a contract for update, waits for usage inserted under these terms and then
        bills it, or is waited for, and these terms then show its final invoice. Usage
        entries have no foreign keys; this lock is what keeps each insert consistent
        with its contract (see `UsageEntryRow`)."""
        wanted = sorted(set(contract_ids))  # one lock order for every submission
        contracts: list[Any] = []
        for chunk in batched(wanted, _LOOKUP_CHUNK):
            contracts.extend(
                self._session.execute(
                    select(
                        ContractRow.id,
                        ContractRow.plan_variant_id,
                        ContractRow.start_date,
                        ContractRow.end_date,
                        ContractRow.final_invoice_id,
                    )
                    .where(ContractRow.seller_id == self.seller_id, ContractRow.id.in_(chunk))
                    .order_by(ContractRow.id)
                    .with_for_update(read=True, key_share=True)
                )
            )
        variants = {row.plan_variant_id for row in contracts}
        metered: dict[str, set[str]] = defaultdict(set)
        for chunk in batched(variants, _LOOKUP_CHUNK):
            query = select(MeteredComponentRow.plan_variant_id, MeteredComponentRow.component_id)
            for variant_id, component_id in self._session.execute(
                query.where(MeteredComponentRow.plan_variant_id.in_(chunk))
            ):
                metered[variant_id].add(component_id)
        return {
            row.id: ContractTerms(
                contract_id=row.id,
                start_date=row.start_date,
                end_date=row.end_date,
                component_ids=frozenset(metered[row.plan_variant_id]),
                closed=row.final_invoice_id is not None,
            )
            for row in contracts
        }

    def terms_of(self, contract_id: str) -> ContractTerms | None:
        """The terms of this seller's contract `contract_id`, or None (one query)."""
        connection = self._session.connection()
        rows = connection.exec_driver_sql(
            _TERMS_OF_ONE[connection.dialect.name], (self.seller_id, contract_id)
        ).all()
        if not rows:
            return None
        instant = _instant_from_driver(connection.dialect)
        start_date, end_date, final_invoice_id, _ = rows[0]
        return ContractTerms(
            contract_id=contract_id,
            start_date=instant(start_date),
            end_date=instant(end_date),
            component_ids=frozenset(row[3] for row in rows if row[3] is not None),
            closed=final_invoice_id is not None,
        )

    def component_ids_by_item_code(self, item_codes: Iterable[str]) -> dict[str, str]:
        wanted = set(item_codes)
        found: dict[str, str] = {}
        for chunk in batched(wanted, _LOOKUP_CHUNK):
            query = select(ComponentRow.item_code, ComponentRow.id).where(
                ComponentRow.seller_id == self.seller_id, ComponentRow.item_code.in_(chunk)
            )
            found.update({code: id_ for code, id_ in self._session.execute(query) if code})
        return found

    def stored_by_key(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], UsageEntry]:
        """The stored entries with these (contract id, key) pairs, found with a few queries
        however many pairs and contracts there are."""
        ids = self._ids_by_key(list(keys))  # a pair given twice only finds its id twice
        if not ids:
            return {}
        return {
            (row.contract_id, row.key or ""): usage_entry(row, row.invoice_id)
            for row in self._entries_by_id(ids)
        }

    def _ids_by_key(self, pairs: list[tuple[str, str]]) -> list[int]:
        """The ids of this seller's entries with these pairs; each pair probes the unique
        (contract_id, key) index."""
        if not pairs:
            return []
        connection = self._session.connection()
        if self._dialect == "postgresql":
            # One statement however many pairs: they travel as one JSON array (psycopg
            # writes that faster than two text arrays).
            parameters = {"pairs": _json.encode(pairs).decode(), "seller_id": self.seller_id}
            return list(connection.execute(_IDS_BY_KEY_POSTGRESQL, parameters).scalars())
        # SQLite's JSON functions cut text at a NUL character, which a key may hold, so the
        # pairs go as a VALUES list per chunk, bound through the driver: SQLAlchemy takes
        # seconds to compile 100,000 bound values. (`IN (VALUES ...)` would scan the table
        # once per chunk instead of probing the index.)
        ids: list[int] = []
        for chunk in batched(pairs, _LOOKUP_CHUNK):
            statement = _IDS_BY_KEY_SQLITE.format(values=", ".join(["(?, ?)"] * len(chunk)))
            parameters = (*chain.from_iterable(chunk), self.seller_id)
            ids.extend(id_ for (id_,) in connection.exec_driver_sql(statement, parameters))
        return ids

    def _entries_by_id(self, ids: list[int]) -> Iterator[Any]:
        """Rows of this seller's entries with these ids (each once), in one query: the
        ids travel as one array (PostgreSQL) or one JSON array of integers (SQLite)."""
        if self._dialect == "postgresql":
            among = _USAGE.c.id == any_(bindparam("ids", ids, type_=ARRAY(BigInteger)))
        else:
            listed = func.json_each(bindparam("ids", _json.encode(ids).decode()))
            among = _USAGE.c.id.in_(select(listed.table_valued("value").c.value))
        query = (
            select(_USAGE, _BILLED.c.invoice_id)
            .outerjoin(_BILLED, _BILLED.c.usage_id == _USAGE.c.id)
            .where(_USAGE.c.seller_id == self.seller_id, among)
        )
        return iter(self._session.execute(query))

    # -- writes -------------------------------------------------------------------------

    def insert_one(
        self, candidate: UsageCandidate, *, submission_id: str, transferred_at: datetime
    ) -> UsageEntry | None:
        """Insert one entry and return it as stored; None, changing nothing, when the
        contract already has an entry with the candidate's key, or (rarely) another entry
        has the random id drawn for it."""
        (row,) = self._driver_rows(
            [candidate], UsageIds(), submission_id, transferred_at, overrides=True
        )
        entry_id = (
            self._session.connection()
            .exec_driver_sql(_INSERT_ONE[self._dialect], row)
            .scalar_one_or_none()
        )
        if entry_id is None:
            return None
        override = candidate.override
        # The stored values are these: the column types store decimals and instants
        # exactly (`_driver_rows` refuses anything they would have to round).
        return UsageEntry(
            id=entry_id,
            contract_id=candidate.contract_id,
            component_id=candidate.component_id,
            quantity=candidate.quantity,
            due_date=candidate.due_date,
            transferred_at=transferred_at,
            key=candidate.key,
            memo=candidate.memo,
            override=product_override(override.price_per_unit, override.name, override.description)
            if override
            else None,
            task_id=submission_id,
        )

    def insert_new(
        self,
        candidates: Sequence[UsageCandidate],
        *,
        submission_id: str,
        transferred_at: datetime,
    ) -> int:
        """Insert the candidates, their ids ascending in their order; a (contract, key) that
        is already stored is skipped, not overwritten, and so is (rarely) a candidate whose
        random id another entry has. Returns how many rows were inserted."""
        if not candidates:
            return 0
        ids = UsageIds()
        if self._dialect == "postgresql" and len(candidates) >= _BULK_ROWS:
            return self._copy(
                self._driver_rows(candidates, ids, submission_id, transferred_at, overrides=True)
            )
        with _larger_page_cache(self._session.connection(), len(candidates)):
            return self._insert_skipping_stored(candidates, ids, submission_id, transferred_at)

    @contextmanager
    def writer(self, *, submission_id: str, transferred_at: datetime) -> Iterator[UsageWriter]:
        """A `UsageWriter` for one submission, in this transaction. Leaving the block
        without an exception writes what is still held back, and may raise `KeyStored`."""
        if self._dialect == "postgresql":
            with _CopyWriter(self, submission_id, transferred_at) as writer:
                yield writer
            return
        with (
            _larger_page_cache(self._session.connection(), _BULK_ROWS),
            _SqliteWriter(self, submission_id, transferred_at) as writer,
        ):
            yield writer

    def _driver_rows(
        self,
        candidates: Sequence[UsageCandidate],
        ids: UsageIds,
        submission_id: str,
        transferred_at: datetime,
        *,
        overrides: bool,
    ) -> list[tuple[Any, ...]]:
        """Rows in `_INSERTED` order, in the forms the driver takes; without the override
        columns unless `overrides`."""
        shared = self._shared_values(submission_id, transferred_at)
        return [shared + own for own in self._own_rows(candidates, ids, overrides=overrides)]

    def _shared_values(self, submission_id: str, transferred_at: datetime) -> tuple[Any, ...]:
        """The `_SHARED` columns of a submission's entries, in the forms the driver takes."""
        transferred = _USAGE.c.transferred_at.type.to_driver(transferred_at, self._dialect)
        return (self.seller_id, transferred, submission_id)

    def _own_rows(
        self, candidates: Sequence[UsageCandidate], ids: UsageIds, *, overrides: bool
    ) -> list[tuple[Any, ...]]:
        """Each entry's own columns (`_OWN`, then `_OVERRIDES` if `overrides`) in the
        forms the driver takes. Converting here once per value, with the column types'
        own conversions, costs a fraction of SQLAlchemy's per-row bind processing, which
        took longer than the insert itself."""
        dialect = self._dialect
        quantity, price = _USAGE.c.quantity.type.to_driver, _USAGE.c.override_price.type.to_driver
        instant = _USAGE.c.due_date.type.to_driver
        rows = [
            (
                id_,
                c.contract_id,
                c.component_id,
                quantity(c.quantity, dialect),
                instant(c.due_date, dialect),
                c.key,
                c.memo,
            )
            for id_, c in zip(ids.take(len(candidates)), candidates, strict=True)
        ]
        if not overrides:
            return rows
        return [
            (*row, None, None, None)
            if (o := c.override) is None
            else (*row, price(o.price_per_unit, dialect), o.name, o.description)
            for row, c in zip(rows, candidates, strict=True)
        ]

    def _insert_skipping_stored(
        self,
        candidates: Sequence[UsageCandidate],
        ids: UsageIds,
        submission_id: str,
        transferred_at: datetime,
    ) -> int:
        """One `executemany` of `INSERT ... ON CONFLICT DO NOTHING`; how many were inserted."""
        overrides = any(c.override is not None for c in candidates)
        rows = self._driver_rows(
            candidates, ids, submission_id, transferred_at, overrides=overrides
        )
        statement = _INSERT_SKIPPING_STORED[self._dialect, overrides]
        return int(self._session.connection().exec_driver_sql(statement, rows).rowcount)

    def _copy(self, rows: list[tuple[Any, ...]]) -> int:
        """COPY the rows (PostgreSQL); how many were inserted.

        COPY is several times faster than INSERT, but cannot skip stored keys. Callers
        have looked the keys up already, so it normally succeeds; if a concurrent
        transaction stored one of them meanwhile, the unique index refuses the COPY: roll
        back to the savepoint and insert again, skipping the stored keys."""
        try:
            with self._session.begin_nested(), self._driver_cursor() as cursor:
                with driver_errors(_COPY), cursor.copy(_COPY) as copy:
                    copy.set_types(_COPY_TYPES)
                    for row in rows:
                        copy.write_row(row)
                return int(cursor.rowcount)
        except IntegrityError as error:
            if not _key_taken(error):
                raise
            statement = _INSERT_SKIPPING_STORED[self._dialect, True]
            return int(self._session.connection().exec_driver_sql(statement, rows).rowcount)

    def _driver_cursor(self) -> psycopg.Cursor[Any]:
        cursor: psycopg.Cursor[Any] = driver_connection(self._session).cursor()
        return cursor

    def entries_of_submission(self, submission_id: str) -> list[UsageEntry]:
        query = self._scoped_usage().where(UsageEntryRow.submission_id == submission_id)
        return [
            usage_entry(row, invoice_id)
            for row, invoice_id in self._session.execute(query.order_by(UsageEntryRow.id))
        ]

    def count_of_submission(self, submission_id: str) -> int:
        query = select(func.count()).where(
            UsageEntryRow.seller_id == self.seller_id,
            UsageEntryRow.submission_id == submission_id,
        )
        return int(self._session.execute(query).scalar_one())

    def delete_unbilled(self, contract_id: str, entry_id: int) -> None:
        # Billing reads and links a contract's entries under the contract's row lock;
        # holding it in share mode here makes a delete and a billing of the same contract
        # take turns, so an entry billing has read is never deleted under it. (SQLite's
        # write lock already serializes them.)
        self._session.execute(
            select(ContractRow.id)
            .where(ContractRow.seller_id == self.seller_id, ContractRow.id == contract_id)
            .with_for_update(read=True)
        )
        entry = self.entry(contract_id, entry_id)
        if entry.invoice_id is not None:
            raise Conflict(f"Usage entry {entry_id} is billed on invoice {entry.invoice_id}.")
        self._session.execute(
            delete(UsageEntryRow).where(
                UsageEntryRow.seller_id == self.seller_id, UsageEntryRow.id == entry_id
            )
        )

    # -- reads --------------------------------------------------------------------------

    def entry(self, contract_id: str, entry_id: int) -> UsageEntry:
        query = self._scoped_usage().where(
            UsageEntryRow.contract_id == contract_id, UsageEntryRow.id == entry_id
        )
        found = self._session.execute(query).one_or_none()
        if found is None:
            raise NotFound(f"Contract {contract_id} has no usage entry {entry_id}.")
        return usage_entry(*found)

    def entries(
        self, contract_id: str, usage_filter: UsageFilter, page: PageRequest
    ) -> Page[UsageEntry]:
        query = self._scoped_usage().where(UsageEntryRow.contract_id == contract_id)
        if usage_filter.due_from is not None:
            query = query.where(UsageEntryRow.due_date >= usage_filter.due_from)
        if usage_filter.due_to is not None:
            query = query.where(UsageEntryRow.due_date < usage_filter.due_to)
        if usage_filter.billed is not None:
            billed = BilledUsageRow.usage_id.is_not(None)
            query = query.where(billed if usage_filter.billed else ~billed)
        total = self._session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        rows = self._session.execute(
            # Latest due date first; on one due date, the latest submission first (their
            # ids are time-ordered), and within a submission the last entry first (ids
            # ascend in submission order). Usage ids alone are not ordered in time.
            query.order_by(
                UsageEntryRow.due_date.desc(),
                UsageEntryRow.submission_id.desc(),
                UsageEntryRow.id.desc(),
            )
            .offset(page.skip)
            .limit(page.take)
        )
        return Page(items=[usage_entry(*row) for row in rows], total=total)

    def quantities(
        self, contract_ids: Sequence[str], *, due_from: datetime | None, due_to: datetime | None
    ) -> list[tuple[str, str, bool, Any]]:
        """(contract, component, billed, total quantity) per group, for consumption reports."""
        if not contract_ids:
            return []
        billed = BilledUsageRow.usage_id.is_not(None)
        query = (
            select(UsageEntryRow.contract_id, UsageEntryRow.component_id, billed, *self._sum())
            .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .where(UsageEntryRow.seller_id == self.seller_id)
            .group_by(UsageEntryRow.contract_id, UsageEntryRow.component_id, billed)
        )
        if due_from is not None:
            query = query.where(UsageEntryRow.due_date >= due_from)
        if due_to is not None:
            query = query.where(UsageEntryRow.due_date < due_to)
        out: list[tuple[str, str, bool, Any]] = []
        for chunk in batched(contract_ids, _LOOKUP_CHUNK):
            for contract_id, component_id, is_billed, *sums in self._session.execute(
                query.where(UsageEntryRow.contract_id.in_(chunk))
            ):
                out.append((contract_id, component_id, bool(is_billed), self._total(sums)))
        return out

    def _sum(self) -> list[Any]:
        if self._dialect != "sqlite":
            return [func.sum(UsageEntryRow.quantity)]
        # SQLite holds quantities as integers scaled by 10**6: summing them as they are
        # would overflow 64 bits past 9.2e12 units; summed in parts, never.
        return _QUANTITY.sqlite_sums(UsageEntryRow.quantity)

    def _total(self, sums: list[Any]) -> Decimal:
        if self._dialect != "sqlite":
            return Decimal(sums[0])
        return _QUANTITY.sqlite_total(*sums)

    def _scoped_usage(self) -> Select[tuple[UsageEntryRow, str | None]]:
        """This seller's entries, each with the id of the invoice that billed it."""
        return (
            select(UsageEntryRow, BilledUsageRow.invoice_id)
            .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .where(UsageEntryRow.seller_id == self.seller_id)
        )


class KeyStored(Exception):
    """An entry written by a `UsageWriter` has a key its contract already holds: stored
    before, or earlier in the same submission. The transaction must be rolled back."""


class UsageWriter(Protocol):
    """Writes one submission's new entries chunk by chunk, while the caller validates
    the next chunk, in the caller's transaction. Every entry must be new: a key that its
    contract already holds raises `KeyStored` (from a later `write`, or by the end of the
    `UsageRepository.writer` block), and the caller rolls back."""

    written: int

    def write(self, candidates: Sequence[UsageCandidate]) -> None: ...


class _SqliteWriter:
    """Chunks of entries are inserted by a second thread, each by one statement that
    reads them from a JSON array (`_INSERT_FROM_JSON`), while the caller validates the
    next chunk. The sqlite3 module lets go of the GIL while a statement runs; an
    `executemany` would take it back to bind every row, and the two threads would wait
    for each other at every row. A stored key is skipped, and the shortfall seen.

    A submission of one chunk or less is inserted in the caller's thread, at the end."""

    def __init__(self, usage: UsageRepository, submission_id: str, transferred_at: datetime):
        self._usage = usage
        self._connection = usage._session.connection()
        self._shared = usage._shared_values(submission_id, transferred_at)
        self._ids = UsageIds()
        self._held: list[tuple[Any, ...]] = []
        self._held_overrides = False
        # Each chunk handed over: how many rows its insert inserts, and how many it held.
        self._inserting: deque[tuple[Future[int], int]] = deque()
        self._thread: ThreadPoolExecutor | None = None
        self.written = 0

    def __enter__(self) -> _SqliteWriter:
        return self

    def write(self, candidates: Sequence[UsageCandidate]) -> None:
        overrides = any(c.override is not None for c in candidates)
        self._held.extend(self._usage._own_rows(candidates, self._ids, overrides=overrides))
        self._held_overrides |= overrides
        if len(self._held) >= _SQLITE_CHUNK:
            self._send()

    def _send(self) -> None:
        rows, overrides = self._held, self._held_overrides
        self._held, self._held_overrides = [], False
        while len(self._inserting) >= _SQLITE_QUEUED:
            self._collect()
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="arrears-insert")
        self._inserting.append((self._thread.submit(self._insert, rows, overrides), len(rows)))

    def _insert(self, rows: list[tuple[Any, ...]], overrides: bool) -> int:
        array = _json.encode(rows)
        if b"\\u0000" in array:
            # SQLite's JSON functions cut text at a NUL character; bind such rows instead.
            statement = _INSERT_SKIPPING_STORED["sqlite", overrides]
            bound = [self._shared + row for row in rows]
            return int(self._connection.exec_driver_sql(statement, bound).rowcount)
        statement, parameters = _INSERT_FROM_JSON[overrides], (*self._shared, array.decode())
        return int(self._connection.exec_driver_sql(statement, parameters).rowcount)

    def _collect(self) -> None:
        future, rows = self._inserting.popleft()
        inserted = future.result()
        self.written += inserted
        if inserted != rows:
            raise KeyStored

    def __exit__(self, *failure: Any) -> None:
        try:
            if failure[0] is None:
                self._finish()
        finally:
            if self._thread is not None:
                # No statement may still run when the caller goes on (to roll back).
                self._thread.shutdown(wait=True, cancel_futures=True)

    def _finish(self) -> None:
        if self._thread is None:  # one chunk at most: no thread to hand it to
            held = len(self._held)
            self.written = self._insert(self._held, self._held_overrides) if held else 0
            if self.written != held:
                raise KeyStored
            return
        if self._held:
            self._send()
        while self._inserting:
            self._collect()


class _CopyWriter:
    """All chunks stream through one binary COPY, which PostgreSQL applies in its own
    process while the caller validates what follows. A handful of entries go as one
    INSERT instead, which answers sooner than a COPY."""

    def __init__(self, usage: UsageRepository, submission_id: str, transferred_at: datetime):
        self._usage = usage
        self._ids = UsageIds()
        self._submission = (submission_id, transferred_at)
        self._held: list[UsageCandidate] = []  # until there are enough for a COPY
        self._copying = ExitStack()
        self._copy: psycopg.Copy | None = None
        self.written = 0

    def __enter__(self) -> _CopyWriter:
        return self

    def write(self, candidates: Sequence[UsageCandidate]) -> None:
        if self._copy is None:
            self._held.extend(candidates)
            if len(self._held) < _BULK_ROWS:
                return
            candidates, self._held = self._held, []
            cursor = self._copying.enter_context(self._usage._driver_cursor())
            self._copying.enter_context(driver_errors(_COPY))
            self._copy = self._copying.enter_context(cursor.copy(_COPY))
            self._copy.set_types(_COPY_TYPES)
        rows = self._usage._driver_rows(candidates, self._ids, *self._submission, overrides=True)
        for row in rows:
            self._copy.write_row(row)
        self.written += len(candidates)

    def __exit__(self, *failure: Any) -> None:
        # Ending the COPY after an exception makes PostgreSQL abort it; the exception
        # goes on, and the caller rolls back.
        try:
            self._copying.__exit__(*failure)
        except IntegrityError as error:
            if _key_taken(error):
                raise KeyStored from None
            raise
        if failure[0] is None and self._held:
            held, self._held = self._held, []
            self.written += _insert_all_new(self._usage, held, self._ids, self._submission)


def _insert_all_new(
    usage: UsageRepository,
    candidates: Sequence[UsageCandidate],
    ids: UsageIds,
    submission: tuple[str, datetime],
) -> int:
    """Insert the candidates, every one of them new, or raise `KeyStored`."""
    inserted = usage._insert_skipping_stored(candidates, ids, *submission)
    if inserted != len(candidates):
        raise KeyStored
    return inserted


def _key_taken(error: IntegrityError) -> bool:
    """A unique index refused a row: the (contract, key) index, its key being stored
    already, or (rarely) the primary key, another submission's run of random ids holding
    its id. Either way the submission is tried again, looking keys up first, with new ids."""
    return isinstance(error.orig, UniqueViolation)


@contextmanager
def _larger_page_cache(connection: Connection, rows: int) -> Iterator[None]:
    """For `_BULK_ROWS` rows or more, a 64 MiB SQLite page cache for the block, then the
    connection's own size again.

    SQLite's default of 2 MiB cannot hold the index pages that inserting tens of
    thousands of entries touches in random key order, so it evicts and reads them again:
    the insert takes about 1.6 times as long. (The setting belongs to the connection;
    restoring it keeps pooled connections small.)"""
    if rows < _BULK_ROWS:
        yield
        return
    previous = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
    connection.exec_driver_sql(f"PRAGMA cache_size = {_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(previous)}")


def usage_entry(row: Any, invoice_id: str | None = None) -> UsageEntry:
    """A stored entry from a `UsageEntryRow` or a row of its table's columns, and the id
    of the invoice that billed it (see `BilledUsageRow`)."""
    return UsageEntry(
        id=row.id,
        contract_id=row.contract_id,
        component_id=row.component_id,
        quantity=row.quantity,
        due_date=row.due_date,
        transferred_at=row.transferred_at,
        key=row.key,
        memo=row.memo,
        override=product_override(row.override_price, row.override_name, row.override_description),
        invoice_id=invoice_id,
        task_id=row.submission_id,
    )


_INSTANT_PROCESSORS: dict[str, Callable[[Any], datetime | None]] = {}


def _instant_from_driver(dialect: Dialect) -> Callable[[Any], datetime | None]:
    """What the driver returns for an instant column, made into an aware UTC datetime:
    the column type's own result processing, for driver-level queries."""
    processor = _INSTANT_PROCESSORS.get(dialect.name)
    if processor is None:
        processor = _CONTRACTS.c.start_date.type.dialect_impl(dialect).result_processor(
            dialect, None
        )
        if processor is None:  # pragma: no cover (UTCDateTime always processes)
            raise RuntimeError(f"no result processing for instants on {dialect.name}")
        _INSTANT_PROCESSORS[dialect.name] = processor
    return processor
