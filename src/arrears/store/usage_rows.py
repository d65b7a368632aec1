"""Usage entries on their way to the driver: the columns an insert writes, the rows it
binds (built once per value with the column types' own conversions), and the
driver-level statements of ingestion, which each database's module
(`store/sqlite.py`, `store/postgresql.py`) builds once in its own placeholder style."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from arrears.domain.ids import UsageIds
from arrears.domain.usage import UsageCandidate
from arrears.store.tables import UsageEntryRow

__all__ = [
    "BULK_ROWS",
    "INSERTED",
    "KeyStored",
    "Submission",
    "UsageStatements",
    "UsageWriter",
    "usage_statements",
]

USAGE = UsageEntryRow.__table__
# The columns an insert writes, in the order of the rows `Submission.rows` builds: those
# that every entry of a submission shares, then each entry's own (its id first, drawn by
# `UsageIds`: the database numbers nothing, see docs/api-conventions.md, "Ids"). A batch without
# override prices leaves out the last three (NULL by default): binding a None costs the
# sqlite3 module more than binding a value.
SHARED = ("seller_id", "transferred_at", "submission_id")
_OWN = ("id", "contract_id", "component_id", "quantity", "due_date", "key", "memo")
_OVERRIDES = ("override_price", "override_name", "override_description")
INSERTED = (*SHARED, *_OWN, *_OVERRIDES)
PLAIN = len(INSERTED) - len(_OVERRIDES)
# From this many rows on, an insert is a bulk insert: COPY on PostgreSQL, a larger page
# cache on SQLite. Below it, a plain INSERT answers sooner (COPY costs a few round trips).
BULK_ROWS = 100


@dataclass(frozen=True, slots=True)
class UsageStatements:
    """Ingestion's driver-level statements on one database. They name only the
    constants above: nothing of a request is formatted in."""

    # By whether the rows hold the override columns. `ON CONFLICT` names no constraint:
    # a stored key is skipped, and so is an id that another submission's run of random
    # ids holds already (rare: the caller sees the shortfall, as for a stored key, and
    # tries again with new ids).
    skipping_stored: dict[bool, str]
    # One post of the contract usage API, the hot path of single writes. Driver-level
    # SQL: SQLAlchemy's statement machinery costs several times what SQLite takes to
    # run these. The new row's id comes back only if it was inserted.
    insert_one: str
    # One contract's terms, locked as `UsageRepository.contract_terms` locks them.
    terms_of_one: str


def usage_statements(placeholder: str, contract_lock: str) -> UsageStatements:
    """The statements with `placeholder` for each bound value, `contract_lock` ending
    the terms query."""
    skipping_stored = {
        overrides: f"INSERT INTO {USAGE.name} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(placeholder for _ in columns)}) "
        "ON CONFLICT DO NOTHING"
        for overrides, columns in ((True, INSERTED), (False, INSERTED[:PLAIN]))
    }
    return UsageStatements(
        skipping_stored=skipping_stored,
        insert_one=f"{skipping_stored[True]} RETURNING id",
        terms_of_one="SELECT c.start_date, c.end_date, c.final_invoice_id, "  # noqa: S608
        "m.component_id FROM contracts AS c LEFT JOIN metered_components AS m "
        "ON m.plan_variant_id = c.plan_variant_id "
        f"WHERE c.seller_id = {placeholder} AND c.id = {placeholder}{contract_lock}",
    )


@dataclass(slots=True)
class Submission:
    """One submission's entries, made into rows the driver takes and inserted in the
    session's transaction: what the dialects' inserts and writers work on."""

    session: Session
    statements: UsageStatements
    dialect_name: str
    # The `SHARED` columns, in the forms the driver takes.
    shared: tuple[Any, ...]
    ids: UsageIds = field(default_factory=UsageIds)

    @classmethod
    def of(
        cls,
        session: Session,
        statements: UsageStatements,
        dialect_name: str,
        *,
        seller_id: str,
        submission_id: str,
        transferred_at: datetime,
    ) -> Submission:
        transferred = USAGE.c.transferred_at.type.to_driver(transferred_at, dialect_name)
        return cls(session, statements, dialect_name, (seller_id, transferred, submission_id))

    def rows(
        self, candidates: Sequence[UsageCandidate], *, overrides: bool
    ) -> list[tuple[Any, ...]]:
        """Rows in `INSERTED` order; without the override columns unless `overrides`."""
        shared = self.shared
        return [shared + own for own in self.own_rows(candidates, overrides=overrides)]

    def own_rows(
        self, candidates: Sequence[UsageCandidate], *, overrides: bool
    ) -> list[tuple[Any, ...]]:
        """Each entry's own columns (`_OWN`, then `_OVERRIDES` if `overrides`) in the
        forms the driver takes. Converting here once per value, with the column types'
        own conversions, costs a fraction of SQLAlchemy's per-row bind processing, which
        took longer than the insert itself."""
        dialect = self.dialect_name
        quantity, price = USAGE.c.quantity.type.to_driver, USAGE.c.override_price.type.to_driver
        instant = USAGE.c.due_date.type.to_driver
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
            for id_, c in zip(self.ids.take(len(candidates)), candidates, strict=True)
        ]
        if not overrides:
            return rows
        return [
            (*row, None, None, None)
            if (o := c.override) is None
            else (*row, price(o.price_per_unit, dialect), o.name, o.description)
            for row, c in zip(rows, candidates, strict=True)
        ]

    def insert_skipping_stored(self, candidates: Sequence[UsageCandidate]) -> int:
        """One `executemany` of `INSERT ... ON CONFLICT DO NOTHING`; how many were inserted."""
        overrides = any(c.override is not None for c in candidates)
        return self.execute_skipping_stored(self.rows(candidates, overrides=overrides), overrides)

    def execute_skipping_stored(self, rows: list[tuple[Any, ...]], overrides: bool) -> int:
        statement = self.statements.skipping_stored[overrides]
        return int(self.session.connection().exec_driver_sql(statement, rows).rowcount)

    def insert_all_new(self, candidates: Sequence[UsageCandidate]) -> int:
        """Insert the candidates, every one of them new, or raise `KeyStored`."""
        inserted = self.insert_skipping_stored(candidates)
        if inserted != len(candidates):
            raise KeyStored
        return inserted


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
