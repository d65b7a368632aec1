"""Usage entries in storage: set-based lookups and bulk inserts for ingestion."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from arrears.domain.errors import Conflict, NotFound
from arrears.domain.paging import Page, PageRequest
from arrears.domain.usage import ContractTerms, ProductOverride, UsageCandidate, UsageEntry
from arrears.store.tables import (
    ComponentRow,
    ContractRow,
    MeteredComponentRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository

__all__ = ["UsageFilter", "UsageRepository"]

# Bound parameters per lookup statement: far below SQLite's and PostgreSQL's limits.
_LOOKUP_CHUNK = 2_000

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
    # -- references, resolved set-based --------------------------------------------------

    def contract_terms(self, contract_ids: Iterable[str]) -> dict[str, ContractTerms]:
        """The terms of those of `contract_ids` that are this seller's (two queries)."""
        wanted = set(contract_ids)
        contracts: list[Any] = []
        for chunk in batched(wanted, _LOOKUP_CHUNK):
            contracts.extend(
                self._session.execute(
                    select(
                        ContractRow.id,
                        ContractRow.plan_variant_id,
                        ContractRow.start_date,
                        ContractRow.end_date,
                    ).where(ContractRow.seller_id == self.seller_id, ContractRow.id.in_(chunk))
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
            )
            for row in contracts
        }

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
        """The stored entries with these (contract id, key) pairs."""
        by_contract: dict[str, set[str]] = defaultdict(set)
        for contract_id, key in keys:
            by_contract[contract_id].add(key)
        found: dict[tuple[str, str], UsageEntry] = {}
        for contract_id, contract_keys in by_contract.items():
            for chunk in batched(contract_keys, _LOOKUP_CHUNK):
                query = self._scoped_usage().where(
                    UsageEntryRow.contract_id == contract_id, UsageEntryRow.key.in_(chunk)
                )
                for row in self._session.execute(query).scalars():
                    found[(row.contract_id, row.key or "")] = _entry(row)
        return found

    # -- writes -------------------------------------------------------------------------

    def insert_new(
        self,
        candidates: Sequence[UsageCandidate],
        *,
        submission_id: str,
        transferred_at: datetime,
    ) -> int:
        """Insert the candidates in one statement per batch; a (contract, key) that is
        already stored is skipped, not overwritten. Returns how many rows were inserted."""
        if not candidates:
            return 0
        rows = [
            {
                "seller_id": self.seller_id,
                "contract_id": c.contract_id,
                "component_id": c.component_id,
                "quantity": c.quantity,
                "due_date": c.due_date,
                "transferred_at": transferred_at,
                "key": c.key,
                "memo": c.memo,
                "override_price": c.override.price_per_unit if c.override else None,
                "override_name": c.override.name if c.override else None,
                "override_description": c.override.description if c.override else None,
                "submission_id": submission_id,
            }
            for c in candidates
        ]
        dialect = self._session.get_bind().dialect.name
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(UsageEntryRow)
        self._session.execute(
            statement.on_conflict_do_nothing(index_elements=["contract_id", "key"]), rows
        )
        return self.count_of_submission(submission_id)

    def entries_of_submission(self, submission_id: str) -> list[UsageEntry]:
        query = self._scoped_usage().where(UsageEntryRow.submission_id == submission_id)
        return [
            _entry(row) for row in self._session.execute(query.order_by(UsageEntryRow.id)).scalars()
        ]

    def count_of_submission(self, submission_id: str) -> int:
        query = select(func.count()).where(
            UsageEntryRow.seller_id == self.seller_id,
            UsageEntryRow.submission_id == submission_id,
        )
        return int(self._session.execute(query).scalar_one())

    def delete_unbilled(self, contract_id: str, entry_id: int) -> None:
        entry = self.entry(contract_id, entry_id)
        if entry.invoice_id is not None:
            raise Conflict(f"Usage entry {entry_id} is billed on invoice {entry.invoice_id}.")
        self._session.execute(
            delete(UsageEntryRow).where(
                UsageEntryRow.seller_id == self.seller_id,
                UsageEntryRow.id == entry_id,
                UsageEntryRow.invoice_id.is_(None),
            )
        )

    # -- reads --------------------------------------------------------------------------

    def entry(self, contract_id: str, entry_id: int) -> UsageEntry:
        query = self._scoped_usage().where(
            UsageEntryRow.contract_id == contract_id, UsageEntryRow.id == entry_id
        )
        row = self._session.execute(query).scalar_one_or_none()
        if row is None:
            raise NotFound(f"Contract {contract_id} has no usage entry {entry_id}.")
        return _entry(row)

    def entries(
        self, contract_id: str, usage_filter: UsageFilter, page: PageRequest
    ) -> Page[UsageEntry]:
        query = self._scoped_usage().where(UsageEntryRow.contract_id == contract_id)
        if usage_filter.due_from is not None:
            query = query.where(UsageEntryRow.due_date >= usage_filter.due_from)
        if usage_filter.due_to is not None:
            query = query.where(UsageEntryRow.due_date < usage_filter.due_to)
        if usage_filter.billed is not None:
            billed = UsageEntryRow.invoice_id.is_not(None)
            query = query.where(billed if usage_filter.billed else ~billed)
        total = self._session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
        rows = self._session.execute(
            query.order_by(UsageEntryRow.due_date.desc(), UsageEntryRow.id.desc())
            .offset(page.skip)
            .limit(page.take)
        ).scalars()
        return Page(items=[_entry(row) for row in rows], total=total)

    def quantities(
        self, contract_ids: Sequence[str], *, due_from: datetime | None, due_to: datetime | None
    ) -> list[tuple[str, str, bool, Any]]:
        """(contract, component, billed, total quantity) per group, for consumption reports."""
        if not contract_ids:
            return []
        billed = UsageEntryRow.invoice_id.is_not(None)
        total = func.sum(UsageEntryRow.quantity).label("total")
        query = (
            select(UsageEntryRow.contract_id, UsageEntryRow.component_id, billed, total)
            .where(UsageEntryRow.seller_id == self.seller_id)
            .group_by(UsageEntryRow.contract_id, UsageEntryRow.component_id, billed)
        )
        if due_from is not None:
            query = query.where(UsageEntryRow.due_date >= due_from)
        if due_to is not None:
            query = query.where(UsageEntryRow.due_date < due_to)
        out: list[tuple[str, str, bool, Any]] = []
        for chunk in batched(contract_ids, _LOOKUP_CHUNK):
            out.extend(
                tuple(row)  # type: ignore[misc]
                for row in self._session.execute(query.where(UsageEntryRow.contract_id.in_(chunk)))
            )
        return out

    def _scoped_usage(self) -> Select[tuple[UsageEntryRow]]:
        return select(UsageEntryRow).where(UsageEntryRow.seller_id == self.seller_id)


def _entry(row: UsageEntryRow) -> UsageEntry:
    override = None
    if row.override_price is not None or row.override_name or row.override_description:
        override = ProductOverride(
            price_per_unit=row.override_price,
            name=row.override_name,
            description=row.override_description,
        )
    return UsageEntry(
        id=row.id,
        contract_id=row.contract_id,
        component_id=row.component_id,
        quantity=row.quantity,
        due_date=row.due_date,
        transferred_at=row.transferred_at,
        key=row.key,
        memo=row.memo,
        override=override,
        invoice_id=row.invoice_id,
        task_id=row.submission_id,
    )
