"""The daily usage rollup (`UsageDayRow`): kept exact by every write of usage entries, in
its transaction, and read by the console's overview instead of every entry.

Each write adds to it once, set-based, as one upsert of a row per (day, component) it
touched: a batch whose entries were all stored adds the sums of its candidates, grouped
in Python as they go by (about 0.4 µs an entry, and no second read of what was just
written); a batch that skipped some as already stored (or whose random ids met
another's) adds, by one `INSERT ... SELECT ... GROUP BY`, the entries it did store, read
back by its ids (a submission's ids are one ascending run, `domain.ids.UsageIds`, so its
first and last id bound a primary-key range scan). A rolled-back write takes its
additions with it; a deleted entry is taken away by the same upsert, negated."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from arrears.domain.ids import UsageIds
from arrears.domain.usage import UsageCandidate
from arrears.store import usage_posts
from arrears.store.tables import UsageDayRow, UsageEntryRow
from arrears.store.usage_rows import UsageWriter

__all__ = [
    "QUANTITY_PLACES",
    "SHARDS",
    "CountingWriter",
    "DayTotals",
    "RecordingIds",
    "RollupStatements",
    "add_run",
    "day_sums",
    "insert_counted",
    "rebuild",
    "remove_entry",
    "rollup_statements",
]

_DAYS = UsageDayRow.__tablename__
_USAGE = UsageEntryRow.__tablename__
# A scaled quantity (below 2**63) cut into three 21-bit parts: a sum of any part over
# fewer than 2**42 entries fits 64 bits (the argument of `ExactDecimal.sqlite_sum`).
_PART_BITS = 21
_PART_MASK = 2**_PART_BITS - 1
QUANTITY_PLACES = 6  # the places of `UsageEntryRow.quantity`
# PostgreSQL: each connection adds to one of this many rows per day and component, so
# writers on other connections rarely wait for its row locks (see `UsageDayRow`).
SHARDS = 16
_COLUMNS = (
    "seller_id, day, component_id, shard, entries, quantity_high, quantity_middle, quantity_low"
)
_ADD = (
    f" ON CONFLICT (seller_id, day, component_id, shard) DO UPDATE SET "
    f"entries = {_DAYS}.entries + excluded.entries, "
    f"quantity_high = {_DAYS}.quantity_high + excluded.quantity_high, "
    f"quantity_middle = {_DAYS}.quantity_middle + excluded.quantity_middle, "
    f"quantity_low = {_DAYS}.quantity_low + excluded.quantity_low"
)


@dataclass(frozen=True, slots=True)
class RollupStatements:
    """The rollup's driver-level statements on one database."""

    # One entry's values (or their negation): seller, day, component, count, 3 parts.
    add_values: str
    # The entries of one submission with ids in [first, last]: seller, submission,
    # first, last.
    add_run: str
    # A day whose entries are all deleted leaves no row behind.
    drop_empty: str
    # A seller's days in [first, end), summed over their shards: seller, first, end.
    day_sums: str
    # Every entry of every seller, summed afresh into an empty rollup (shard 0).
    fill: str
    # `UsageStatements.insert_one` that also adds its entry (if inserted) to the rollup,
    # binding the insert's row, then `add_values`' (PostgreSQL: a writing `WITH`); None
    # where the upsert runs as a second statement (SQLite, in process: a few µs).
    insert_one_counted: str | None = None


def rollup_statements(
    placeholder: str, *, day: str, units: str, shard: str, insert_one: str | None = None
) -> RollupStatements:
    """The statements in one driver's placeholder style, given its SQL for an entry's UTC
    day as `YYYY-MM-DD` (`day`), its quantity as a scaled integer (`units`) and the
    shard a connection adds to (`shard`); each dialect module makes its own. Given
    `insert_one` (ending `RETURNING id`), a single post's insert and its upsert become
    one statement (`insert_one_counted`)."""
    p = placeholder
    high = f"{units} >> {2 * _PART_BITS}"
    middle = f"({units} >> {_PART_BITS}) & {_PART_MASK}"
    low = f"{units} & {_PART_MASK}"
    return RollupStatements(
        add_values=f"INSERT INTO {_DAYS} ({_COLUMNS}) "  # noqa: S608 (constants only)
        f"VALUES ({p}, {p}, {p}, {shard}, {p}, {p}, {p}, {p}){_ADD}",
        add_run=f"INSERT INTO {_DAYS} ({_COLUMNS}) "  # noqa: S608
        f"SELECT {p}, {day} AS d, component_id, {shard}, COUNT(*), "
        f"SUM({high}), SUM({middle}), SUM({low}) FROM {_USAGE} "
        f"WHERE seller_id = {p} AND submission_id = {p} AND id BETWEEN {p} AND {p} "
        # One order of row locks for every writer: fewer deadlocks on PostgreSQL.
        f"GROUP BY d, component_id ORDER BY d, component_id{_ADD}",
        drop_empty=f"DELETE FROM {_DAYS} WHERE seller_id = {p} AND day = {p} "  # noqa: S608
        f"AND component_id = {p} AND shard = {shard} AND entries = 0",
        day_sums="SELECT component_id, day, SUM(quantity_high), "  # noqa: S608
        f"SUM(quantity_middle), SUM(quantity_low) FROM {_DAYS} WHERE seller_id = {p} "
        f"AND day >= {p} AND day < {p} GROUP BY component_id, day HAVING SUM(entries) > 0",
        fill=f"INSERT INTO {_DAYS} ({_COLUMNS}) "  # noqa: S608
        f"SELECT seller_id, {day} AS d, component_id, 0, COUNT(*), "
        f"SUM({high}), SUM({middle}), SUM({low}) FROM {_USAGE} "
        "GROUP BY seller_id, d, component_id",
        insert_one_counted=None
        if insert_one is None
        else f"WITH inserted AS ({insert_one}), counted AS ("  # noqa: S608
        f"INSERT INTO {_DAYS} ({_COLUMNS}) SELECT {p}, {p}, {p}, {shard}, {p}, {p}, {p}, {p} "
        f"FROM inserted{_ADD}) SELECT id FROM inserted",
    )


class RecordingIds(UsageIds):
    """`UsageIds` that remember the first and last id they gave: the run a batch's
    entries were inserted with."""

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        super().__init__()
        self.first: int | None = None
        self.last: int | None = None

    def take(self, n: int) -> list[int]:
        ids = super().take(n)
        if ids:
            if self.first is None:
                self.first = ids[0]
            self.last = ids[-1]
        return ids


def rebuild(connection: Connection, statements: RollupStatements) -> None:
    """Sum the rollup afresh from every stored entry: for data written around the
    repository (benchmarks' bulk loads), or to check it (migration 0017 fills it so)."""
    connection.exec_driver_sql(f"DELETE FROM {_DAYS}")  # noqa: S608
    connection.exec_driver_sql(statements.fill)


def insert_counted(
    connection: Connection,
    statements: RollupStatements,
    insert_one: str,
    row: tuple[Any, ...],
    candidate: UsageCandidate,
) -> int | None:
    """Run `insert_one` (`UsageStatements.insert_one`, binding `row`) and add the entry
    to the rollup if it was inserted; its id, or None. Where the dialect has
    `insert_one_counted`, one statement does both: a single post costs no second round
    trip to PostgreSQL."""
    seller_id = row[0]  # `INSERTED` begins with `SHARED`, the seller first
    (added,) = DayTotals.of([candidate]).rows(seller_id, 1)
    # At the DB-API cursor, as the post's other statements (`store/usage_posts.py`).
    counted = statements.insert_one_counted
    if counted is None:
        entry_id: int | None = usage_posts.fetch_scalar(connection, insert_one, row)
        if entry_id is not None:
            usage_posts.execute(connection, statements.add_values, added)
        return entry_id
    found: int | None = usage_posts.fetch_scalar(connection, counted, (*row, *added))
    return found


def add_run(
    connection: Connection,
    statements: RollupStatements,
    seller_id: str,
    submission_id: str,
    ids: RecordingIds,
) -> None:
    """Add the entries stored under `ids`' run for this submission (one statement)."""
    if ids.first is None or ids.last is None:
        return
    statement = statements.add_run
    parameters = (seller_id, seller_id, submission_id, ids.first, ids.last)
    connection.exec_driver_sql(statement, parameters)


class DayTotals:
    """The entries of one batch summed per (component, UTC day), to be added at once."""

    __slots__ = ("_counts", "_sums", "entries")

    def __init__(self) -> None:
        self._counts: defaultdict[tuple[str, date], int] = defaultdict(int)
        self._sums: defaultdict[tuple[str, date], Decimal] = defaultdict(Decimal)
        self.entries = 0

    @classmethod
    def of(cls, candidates: Iterable[UsageCandidate]) -> DayTotals:
        totals = cls()
        totals.add(candidates)
        return totals

    def add(self, candidates: Iterable[UsageCandidate]) -> None:
        counts, sums = self._counts, self._sums
        for c in candidates:
            due = c.due_date
            if due.tzinfo is not UTC:  # the clock's instants are UTC already
                due = due.astimezone(UTC)
            key = (c.component_id, due.date())
            counts[key] += 1
            sums[key] += c.quantity
        self.entries = sum(counts.values())

    def save(
        self, connection: Connection, statements: RollupStatements, seller_id: str, *, sign: int = 1
    ) -> None:
        """Add the totals to the rollup (one statement); `sign` -1 takes them away."""
        if not self._counts:
            return
        connection.exec_driver_sql(statements.add_values, self.rows(seller_id, sign))

    def rows(self, seller_id: str, sign: int) -> list[tuple[str | int, ...]]:
        """The parameters of `add_values`, a row per (day, component), in key order."""
        rows: list[tuple[str | int, ...]] = []
        # One order of row locks for every writer: fewer deadlocks on PostgreSQL.
        for key in sorted(self._counts):
            component_id, day = key
            units = int(self._sums[key].scaleb(QUANTITY_PLACES))  # exact: at most 6 places
            high, middle, low = _parts(units)
            count, day_text = self._counts[key], day.isoformat()
            signed = (sign * count, sign * high, sign * middle, sign * low)
            rows.append((seller_id, day_text, component_id, *signed))
        return rows


def _parts(units: int) -> tuple[int, int, int]:
    """`units` as the high, middle and low parts the rollup sums."""
    return units >> 2 * _PART_BITS, (units >> _PART_BITS) & _PART_MASK, units & _PART_MASK


class CountingWriter:
    """A `UsageWriter` that also sums what it writes (`DayTotals`): every entry a writer
    writes is new, or the transaction is rolled back (`KeyStored`)."""

    __slots__ = ("_writer", "totals")

    def __init__(self, writer: UsageWriter) -> None:
        self._writer = writer
        self.totals = DayTotals()

    @property
    def written(self) -> int:
        return self._writer.written

    def write(self, candidates: Sequence[UsageCandidate]) -> None:
        self._writer.write(candidates)
        self.totals.add(candidates)


def remove_entry(
    connection: Connection,
    statements: RollupStatements,
    seller_id: str,
    *,
    component_id: str,
    due_date: datetime,
    quantity: Decimal,
) -> None:
    """Take one deleted entry away; a day and component left without entries, gone."""
    gone = UsageCandidate(
        contract_id="", component_id=component_id, quantity=quantity, due_date=due_date
    )
    DayTotals.of([gone]).save(connection, statements, seller_id, sign=-1)
    day = due_date.astimezone(UTC).date().isoformat()
    connection.exec_driver_sql(statements.drop_empty, (seller_id, day, component_id))


def day_sums(
    connection: Connection,
    statements: RollupStatements,
    seller_id: str,
    first_day: str,
    end_day: str,
) -> Iterator[tuple[str, str, Decimal]]:
    """(component id, day, quantity) of this seller's days in [first_day, end_day),
    each `YYYY-MM-DD`, summed over their shards; days whose entries were all deleted
    are left out."""
    for component_id, day, high, middle, low in connection.exec_driver_sql(
        statements.day_sums, (seller_id, first_day, end_day)
    ):
        units = (int(high) << 2 * _PART_BITS) + (int(middle) << _PART_BITS) + int(low)
        yield component_id, day, Decimal(units).scaleb(-QUANTITY_PLACES)
