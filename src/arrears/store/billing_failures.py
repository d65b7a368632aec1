"""Contracts that cannot be billed, in storage: one row per failing contract, written in
a transaction of its own (the billing transaction that failed has rolled back) and
deleted once an attempt bills the contract."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from arrears.domain.billing_failures import BillingFailure, FailureCode, FailureReason
from arrears.domain.paging import Page, PageRequest
from arrears.store.tables import BillingFailureRow, ContractRow, SellerRow
from arrears.store.tenancy import TenantRepository, batched

__all__ = ["BillingFailureLog", "BillingFailures", "ListedFailure"]

_CHUNK = 2_000


class BillingFailures(TenantRepository):
    """The seller's failing contracts."""

    def record(
        self, contract_id: str, reason: FailureReason, now: datetime
    ) -> BillingFailure | None:
        """Record a failed attempt: the first one of the contract since it was last billed
        inserts its row, a later one counts itself and replaces the reason. None when the
        seller has no such contract (nothing to record)."""
        owned = select(ContractRow.id).where(
            ContractRow.seller_id == self.seller_id, ContractRow.id == contract_id
        )
        if self._session.execute(owned).scalar_one_or_none() is None:
            return None
        values = {
            "code": reason.code.value,
            "message": reason.message,
            "error": reason.error[:200],
            "failed_at": now,
        }
        # One statement whatever came first: two processes failing the same contract at
        # once count two attempts, and neither breaks the primary key.
        statement = self._dialect.insert(BillingFailureRow).values(
            contract_id=contract_id,
            seller_id=self.seller_id,
            first_failed_at=now,
            attempts=1,
            **values,
        )
        self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["contract_id"],
                set_={**values, "attempts": BillingFailureRow.attempts + 1},
            )
        )
        return self.of([contract_id]).get(contract_id)

    def of(self, contract_ids: Collection[str]) -> dict[str, BillingFailure]:
        """The recorded failures of those of the contracts that have one."""
        found: dict[str, BillingFailure] = {}
        for chunk in batched(list(contract_ids), _CHUNK):
            query = select(BillingFailureRow).where(
                BillingFailureRow.seller_id == self.seller_id,
                BillingFailureRow.contract_id.in_(chunk),
            )
            for row in self._session.execute(query).scalars():
                found[row.contract_id] = _failure(row)
        return found

    def clear(self, contract_ids: Collection[str]) -> None:
        """Forget the failures of the contracts (billed now)."""
        for chunk in batched(list(contract_ids), _CHUNK):
            self._session.execute(
                delete(BillingFailureRow).where(
                    BillingFailureRow.seller_id == self.seller_id,
                    BillingFailureRow.contract_id.in_(chunk),
                )
            )


@dataclass(frozen=True, slots=True)
class ListedFailure:
    """A failure with its seller's name, for operators."""

    failure: BillingFailure
    seller_name: str


class BillingFailureLog:
    """Failing contracts across sellers: the operator's view (`/admin`), and the count
    the metrics report."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def page(self, page: PageRequest) -> Page[ListedFailure]:
        """Most recently failed first."""
        query: Select[tuple[BillingFailureRow, str]] = select(
            BillingFailureRow, SellerRow.name
        ).join(SellerRow, SellerRow.id == BillingFailureRow.seller_id)
        rows = self._session.execute(
            query.order_by(BillingFailureRow.failed_at.desc(), BillingFailureRow.contract_id)
            .offset(page.skip)
            .limit(page.take)
        )
        items = [ListedFailure(_failure(row), name) for row, name in rows]
        return Page(items=items, total=self.count())

    def count(self) -> int:
        query = select(func.count()).select_from(BillingFailureRow)
        return int(self._session.execute(query).scalar_one())


def _failure(row: BillingFailureRow) -> BillingFailure:
    return BillingFailure(
        seller_id=row.seller_id,
        contract_id=row.contract_id,
        reason=FailureReason(FailureCode(row.code), row.message, row.error),
        first_failed_at=row.first_failed_at,
        failed_at=row.failed_at,
        attempts=row.attempts,
    )
