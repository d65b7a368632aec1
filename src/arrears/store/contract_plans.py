"""What a contract was sold beyond its first plan variant (SPEC §11): its plan phases
and the quantities of quantity components it holds.

Both tables hang off `contracts` and carry no seller of their own; every statement
joins the contract and filters by its seller. Billing reads them for a whole batch of
contracts at once (one query each per 2,000 contracts), never per invoice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from arrears.domain.contracts import Contract
from arrears.domain.quantities import ComponentSubscription
from arrears.store.tables import (
    BilledUsageRow,
    ComponentSubscriptionRow,
    ContractPhaseRow,
    ContractRow,
    UsageEntryRow,
)
from arrears.store.tenancy import TenantRepository, batched, next_position

__all__ = ["ContractPlanRepository", "StoredPhase"]

_CHUNK = 2_000


@dataclass(frozen=True, slots=True)
class StoredPhase:
    """The contract is on `plan_variant_id` from `starts` (its `From`)."""

    plan_variant_id: str
    starts: datetime


class ContractPlanRepository(TenantRepository):
    # -- plan phases -------------------------------------------------------------------

    def phases(self, contracts: Iterable[Contract]) -> dict[str, list[StoredPhase]]:
        """Each contract's phases, ascending: the stored ones of a contract that changed
        plans, else its one phase (its plan variant from its `StartDate`)."""
        by_id = {contract.id: contract for contract in contracts}
        stored: dict[str, list[StoredPhase]] = {}
        # Only an order that sold terms writes phases: the others are not looked up.
        sold = [id_ for id_, contract in by_id.items() if contract.sold_terms]
        for chunk in batched(sold, _CHUNK):
            query = (
                select(ContractPhaseRow)
                .join(ContractRow, ContractRow.id == ContractPhaseRow.contract_id)
                .where(ContractRow.seller_id == self.seller_id, ContractRow.id.in_(chunk))
                .order_by(ContractPhaseRow.contract_id, ContractPhaseRow.starts)
            )
            for row in self._session.execute(query).scalars():
                phase = StoredPhase(row.plan_variant_id, row.starts)
                stored.setdefault(row.contract_id, []).append(phase)
        return {
            id_: stored.get(id_) or [StoredPhase(contract.plan_variant_id, contract.start_date)]
            for id_, contract in by_id.items()
        }

    def change_plan(self, contract: Contract, plan_variant_id: str, starts: datetime) -> None:
        """Move `contract` (whose row the caller holds locked) to `plan_variant_id` from
        `starts` on: phases from `starts` on are replaced (a later order decides again),
        and `contracts.plan_variant_id` names the last phase's variant."""
        phases = [p for p in self.phases([contract])[contract.id] if p.starts < starts]
        phases.append(StoredPhase(plan_variant_id, starts))
        self._session.execute(
            delete(ContractPhaseRow).where(ContractPhaseRow.contract_id == contract.id)
        )
        self._session.add_all(
            ContractPhaseRow(
                contract_id=contract.id, starts=phase.starts, plan_variant_id=phase.plan_variant_id
            )
            for phase in phases
        )
        row = self._row(ContractRow, contract.id, "contract")
        row.plan_variant_id = plan_variant_id
        self._session.flush()

    def unbilled_components_from(self, contract_id: str, instant: datetime) -> set[str]:
        """The components of the contract's unbilled usage due at or after `instant`."""
        query = (
            select(UsageEntryRow.component_id)
            .distinct()
            .outerjoin(BilledUsageRow, BilledUsageRow.usage_id == UsageEntryRow.id)
            .where(
                UsageEntryRow.seller_id == self.seller_id,
                UsageEntryRow.contract_id == contract_id,
                UsageEntryRow.due_date >= instant,
                BilledUsageRow.usage_id.is_(None),
            )
        )
        return set(self._session.execute(query).scalars())

    def mark_sold(self, contract_id: str) -> None:
        """Note that an order sold the contract terms beyond usage (`sold_terms`). Set on
        the session's row, so that an interim invoice of the same order reads it."""
        self._row(ContractRow, contract_id, "contract").sold_terms = True

    # -- quantities held ---------------------------------------------------------------

    def add_component_subscriptions(
        self,
        contract_id: str,
        subscriptions: Sequence[ComponentSubscription],
        created_at: datetime,
    ) -> None:
        """Store the quantities an order sets, after the contract's earlier ones (the
        caller holds the contract's row lock, so positions are not raced)."""
        if not subscriptions:
            return
        first = next_position(
            self._session,
            ComponentSubscriptionRow.position,
            ComponentSubscriptionRow.contract_id,
            contract_id,
        )
        self._session.add_all(
            ComponentSubscriptionRow(
                contract_id=contract_id,
                position=first + offset,
                component_id=one.component_id,
                quantity=one.quantity,
                starts=one.starts,
                created_at=created_at,
            )
            for offset, one in enumerate(subscriptions)
        )
        self._session.flush()

    def component_subscriptions(
        self, contract_ids: Iterable[str]
    ) -> dict[str, list[ComponentSubscription]]:
        """The quantities each of these contracts holds (those that hold any), in the
        order they were set."""
        found: dict[str, list[ComponentSubscription]] = {}
        for chunk in batched(set(contract_ids), _CHUNK):
            query = (
                select(ComponentSubscriptionRow)
                .join(ContractRow, ContractRow.id == ComponentSubscriptionRow.contract_id)
                .where(ContractRow.seller_id == self.seller_id, ContractRow.id.in_(chunk))
                .order_by(ComponentSubscriptionRow.contract_id, ComponentSubscriptionRow.position)
            )
            for row in self._session.execute(query).scalars():
                held = ComponentSubscription(row.component_id, row.quantity, row.starts)
                found.setdefault(row.contract_id, []).append(held)
        return found
