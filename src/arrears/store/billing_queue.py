"""The billing queue: which contracts have billing due, and, for a batch of one
seller's due contracts, their rows locked for billing and their billing dates moved on
in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from arrears.store.tables import ContractRow, PlanVariantRow
from arrears.store.tenancy import TenantRepository

__all__ = ["BillingQueue", "DueContracts", "LockedContract"]

_CONTRACTS = ContractRow.__table__


class BillingQueue:
    """The scheduler's view across sellers: which contracts have billing due."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def due(self, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(seller id, contract id) of contracts whose period has ended, or that ended
        and await their final invoice, oldest due first."""
        query = (
            select(ContractRow.seller_id, ContractRow.id)
            .where(
                ContractRow.final_invoice_id.is_(None),
                (ContractRow.next_billing_date <= now)
                | (ContractRow.end_date.is_not(None) & (ContractRow.end_date <= now)),
            )
            .order_by(ContractRow.next_billing_date, ContractRow.id)
            .limit(limit)
        )
        return [(seller, contract) for seller, contract in self._session.execute(query)]

    def count_due(self, now: datetime) -> int:
        query = select(func.count()).where(
            ContractRow.final_invoice_id.is_(None),
            (ContractRow.next_billing_date <= now)
            | (ContractRow.end_date.is_not(None) & (ContractRow.end_date <= now)),
        )
        return int(self._session.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class LockedContract:
    """A contract of a batch, locked for billing, with the row facts rating needs."""

    id: str
    customer_id: str
    plan_variant_id: str
    start_date: datetime
    end_date: datetime | None
    billed_periods: int
    final_invoice_id: str | None
    period_unit: str
    period_quantity: int
    created_at: datetime
    sold_terms: bool


class DueContracts(TenantRepository):
    """A batch of one seller's due contracts: locked with one query, their billing
    dates saved with one statement."""

    def lock(self, contract_ids: Sequence[str]) -> dict[str, LockedContract]:
        """The contracts of `contract_ids` this transaction could lock, by id.

        On PostgreSQL rows another transaction holds are skipped (`SKIP LOCKED`), so
        concurrent workers take different contracts instead of queueing; the caller
        bills a skipped contract on its own. SQLite's write lock, taken when the
        transaction began, already excludes every other writer."""
        query = (
            select(
                ContractRow.id,
                ContractRow.customer_id,
                ContractRow.plan_variant_id,
                ContractRow.start_date,
                ContractRow.end_date,
                ContractRow.billed_periods,
                ContractRow.final_invoice_id,
                PlanVariantRow.period_unit,
                PlanVariantRow.period_quantity,
                ContractRow.created_at,
                ContractRow.sold_terms,
            )
            .join(PlanVariantRow, PlanVariantRow.id == ContractRow.plan_variant_id)
            .where(ContractRow.seller_id == self.seller_id, ContractRow.id.in_(contract_ids))
        )
        query = self._dialect.skip_locked(query, of=ContractRow)
        return {row.id: LockedContract(*row) for row in self._session.execute(query)}

    def save_billed_periods(self, contracts: Sequence[tuple[str, int, datetime, datetime]]) -> None:
        """Store (contract id, billed periods, last and next billing date) for each."""
        if not contracts:
            return
        self._dialect.save_billed_periods(self._session.connection(), self.seller_id, contracts)
