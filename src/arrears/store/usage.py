"""Usage entries in storage: set-based lookups and bulk inserts for ingestion.

Where SQLite and PostgreSQL part ways (how keys are looked up, how entries are
inserted in bulk, how quantities are summed) the repository asks the session's
dialect (`store/dialect.py`), once per call; the rows it inserts are built in
`store/usage_rows.py`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Dialect, Select, delete, func, select

from arrears.domain.errors import Conflict, NotFound
from arrears.domain.paging import Page, PageRequest
from arrears.domain.usage import (
    ContractTerms,
    UsageCandidate,
    UsageEntry,
    product_override,
)
from arrears.store import usage_posts
from arrears.store.dialect import StoreDialect
from arrears.store.tables import (
    BilledUsageRow,
    ComponentRow,
    ContractRow,
    MeteredComponentRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository, batched
from arrears.store.usage_days import (
    CountingWriter,
    DayTotals,
    RecordingIds,
    add_run,
    insert_counted,
    remove_entry,
)
from arrears.store.usage_rows import KeyStored, Submission, UsageWriter

__all__ = [
    "KeyStored",
    "UsageFilter",
    "UsageRepository",
    "UsageWriter",
    "batched",
    "usage_entry",
]

# Bound parameters per lookup statement: far below SQLite's and PostgreSQL's limits.
_LOOKUP_CHUNK = 2_000

_USAGE = UsageEntryRow.__table__
_BILLED = BilledUsageRow.__table__
_CONTRACTS = ContractRow.__table__


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """`?from=&to=&billed=` of a usage listing; `to` is exclusive."""

    due_from: datetime | None = None
    due_to: datetime | None = None
    billed: bool | None = None


class UsageRepository(TenantRepository):
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
        rows = usage_posts.fetch_all(
            connection, self._dialect.usage.terms_of_one, (self.seller_id, contract_id)
        )
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
        return self._dialect.usage_ids_by_key(connection, self.seller_id, pairs)

    def _entries_by_id(self, ids: list[int]) -> Iterator[Any]:
        """Rows of this seller's entries with these ids (each once), in one query: the
        ids travel as one array (PostgreSQL) or one JSON array of integers (SQLite)."""
        among = self._dialect.among_ids(_USAGE.c.id, ids)
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
        dialect = self._dialect
        submission = self._submission(dialect, submission_id, transferred_at)
        (row,) = submission.rows([candidate], overrides=True)
        connection = self._session.connection()
        insert_one = dialect.usage.insert_one
        entry_id = insert_counted(connection, dialect.rollup, insert_one, row, candidate)
        if entry_id is None:
            return None
        override = candidate.override
        # The stored values are these: the column types store decimals and instants
        # exactly (`Submission.rows` refuses anything they would have to round).
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
        dialect = self._dialect
        submission = self._submission(dialect, submission_id, transferred_at)
        inserted = dialect.insert_usage(submission, candidates)
        self._add_to_rollup(submission, candidates, inserted)
        return inserted

    @contextmanager
    def writer(self, *, submission_id: str, transferred_at: datetime) -> Iterator[UsageWriter]:
        """A `UsageWriter` for one submission, in this transaction. Leaving the block
        without an exception writes what is still held back, and may raise `KeyStored`."""
        dialect = self._dialect
        submission = self._submission(dialect, submission_id, transferred_at)
        with dialect.usage_writer(submission) as writer:
            counting = CountingWriter(writer)
            yield counting
        self._add_to_rollup(submission, counting.totals, counting.written)

    def _add_to_rollup(
        self,
        submission: Submission,
        written: Sequence[UsageCandidate] | DayTotals,
        stored: int,
    ) -> None:
        """The daily rollup gets what the submission stored, in this transaction: the
        sums of what was written if all of it was stored, else what was, read back."""
        totals = written if isinstance(written, DayTotals) else DayTotals.of(written)
        connection = self._session.connection()
        if stored == totals.entries:
            totals.save(connection, self._dialect.rollup, self.seller_id)
        elif stored:
            ids = cast(RecordingIds, submission.ids)  # as `_submission` made them
            add_run(connection, self._dialect.rollup, self.seller_id, submission.shared[2], ids)

    def _submission(
        self, dialect: StoreDialect, submission_id: str, transferred_at: datetime
    ) -> Submission:
        submission = Submission.of(
            self._session,
            dialect.usage,
            dialect.name,
            seller_id=self.seller_id,
            submission_id=submission_id,
            transferred_at=transferred_at,
        )
        submission.ids = RecordingIds()  # the run `_add_to_rollup` reads back
        return submission

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
        connection = self._session.connection()
        remove_entry(
            connection,
            self._dialect.rollup,
            self.seller_id,
            component_id=entry.component_id,
            due_date=entry.due_date,
            quantity=entry.quantity,
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
        dialect = self._dialect
        summed = dialect.quantity_sums(UsageEntryRow.quantity)
        query = (
            select(UsageEntryRow.contract_id, UsageEntryRow.component_id, billed, *summed)
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
                total = dialect.quantity_total(sums)
                out.append((contract_id, component_id, bool(is_billed), total))
        return out

    def _scoped_usage(self) -> Select[tuple[UsageEntryRow, str | None]]:
        """This seller's entries, each with the id of the invoice that billed it."""
        return (
            select(UsageEntryRow, BilledUsageRow.invoice_id)
            .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .where(UsageEntryRow.seller_id == self.seller_id)
        )


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
