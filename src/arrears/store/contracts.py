"""Contracts in storage."""

from __future__ import annotations

from sqlalchemy import Select, select

from arrears.domain.contracts import Contract
from arrears.domain.paging import Page, PageRequest
from arrears.domain.periods import BillingPeriod, PeriodUnit
from arrears.store.tables import ContractRow, PlanVariantRow
from arrears.store.tenancy import TenantRepository

__all__ = ["ContractRepository"]


class ContractRepository(TenantRepository):
    def add(self, contract: Contract) -> None:
        self._session.add(
            ContractRow(
                id=contract.id,
                seller_id=self.seller_id,
                created_at=contract.created_at,
                customer_id=contract.customer_id,
                plan_variant_id=contract.plan_variant_id,
                start_date=contract.start_date,
                end_date=contract.end_date,
                billed_periods=contract.billed_periods,
                last_billing_date=contract.last_billing_date,
                next_billing_date=contract.next_billing_date,
            )
        )
        self._session.flush()

    def get(self, contract_id: str, *, for_update: bool = False) -> Contract:
        """The contract; `for_update` locks its row until the transaction ends."""
        row = self._row(ContractRow, contract_id, "contract", for_update=for_update)
        return self._contracts([row])[0]

    def page(self, page: PageRequest, *, customer_id: str | None = None) -> Page[Contract]:
        query: Select[tuple[ContractRow]] = self._scoped(ContractRow)
        if customer_id is not None:
            query = query.where(ContractRow.customer_id == customer_id)
        rows = self._page(query, ContractRow, page, lambda row: row)
        return Page(items=self._contracts(rows.items), total=rows.total)

    def matching(
        self, *, customer_id: str | None, contract_ids: list[str] | None
    ) -> list[Contract]:
        """All of the seller's contracts, of one customer and/or among the given ids,
        oldest first."""
        query: Select[tuple[ContractRow]] = self._scoped(ContractRow)
        if customer_id is not None:
            query = query.where(ContractRow.customer_id == customer_id)
        if contract_ids is not None:
            query = query.where(ContractRow.id.in_(contract_ids))
        rows = list(
            self._session.execute(query.order_by(ContractRow.created_at, ContractRow.id)).scalars()
        )
        return self._contracts(rows)

    def save_end(self, contract: Contract) -> None:
        row = self._row(ContractRow, contract.id, "contract")
        row.end_date = contract.end_date
        self._session.flush()

    def save_billing_state(self, contract: Contract) -> None:
        """Store the contract's billed periods (and the dates they imply) and its final
        invoice, in the billing transaction."""
        row = self._row(ContractRow, contract.id, "contract")
        row.billed_periods = contract.billed_periods
        row.last_billing_date = contract.last_billing_date
        row.next_billing_date = contract.next_billing_date
        row.final_invoice_id = contract.final_invoice_id
        self._session.flush()

    def _contracts(self, rows: list[ContractRow]) -> list[Contract]:
        periods = self._billing_periods({row.plan_variant_id for row in rows})
        return [
            Contract(
                id=row.id,
                created_at=row.created_at,
                customer_id=row.customer_id,
                plan_variant_id=row.plan_variant_id,
                billing_period=periods[row.plan_variant_id],
                start_date=row.start_date,
                end_date=row.end_date,
                billed_periods=row.billed_periods,
                final_invoice_id=row.final_invoice_id,
                sold_terms=row.sold_terms,
            )
            for row in rows
        ]

    def _billing_periods(self, variant_ids: set[str]) -> dict[str, BillingPeriod]:
        if not variant_ids:
            return {}
        query = select(
            PlanVariantRow.id, PlanVariantRow.period_unit, PlanVariantRow.period_quantity
        ).where(PlanVariantRow.seller_id == self.seller_id, PlanVariantRow.id.in_(variant_ids))
        return {
            id_: BillingPeriod(PeriodUnit(unit), quantity)
            for id_, unit, quantity in self._session.execute(query)
        }
